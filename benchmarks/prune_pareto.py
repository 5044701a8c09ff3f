"""Gate-guided compression against torch-pruning at equal MACs, on three tasks, over seeds.

For each task and seed: fine-tune EfficientNet-Lite0 (real ImageNet weights) once per start
(gated, and torch-pruning's sparse trainings), then for every method and MAC target prune the
fine-tuned model to that fraction of the dense MACs (bisection on the keep ratio,
`fa_compress.pruning.budget`), measure validation and test accuracy right after the cut, recover for
one epoch with facompress's default recovery, measure again, and keep the recovered model only
when the *validation* split says it is better (the test split is only reported). Accuracy is over
the full test split of the task (10,000 images for the default task) with a Wilson 95% interval;
methods are compared by mean and standard deviation over seeds.

    .venv/bin/python benchmarks/prune_pareto.py --tasks tops4,shoes3,default --seeds 0,1,2
    .venv/bin/python benchmarks/prune_pareto.py --render      # tables and plot from the stored JSON

Results: benchmarks/results/prune_pareto.{json,md,png}; the JSON is rewritten after every row, so
an interrupted run keeps what it measured and `--resume` continues it.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from dataclasses import asdict, replace
from pathlib import Path


import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from ._common import RESULTS, command_line, load_average  # noqa: E402
from ._pareto_methods import ARCH, METHODS, STARTS, fine_tune  # noqa: E402
from ._pareto_report import plot, render  # noqa: E402
from ._tasks import TASKS, load_task  # noqa: E402

WORK = Path(__file__).resolve().parent / "work" / "pareto"  # git-ignored

from fa_compress._seed import seed_everything  # noqa: E402
from fa_compress.accuracy import Accuracy  # noqa: E402
from fa_compress.errors import ConfigError  # noqa: E402
from fa_compress.bench.environment import environment  # noqa: E402
from fa_compress.models import get_head, get_spec  # noqa: E402
from fa_compress.pruning.budget import Budget  # noqa: E402
from fa_compress.pruning.chain import ChainOptions, prune_chain  # noqa: E402
from fa_compress.pruning.pruner import PruneSettings  # noqa: E402
from fa_compress.pruning.recover import recalibrate_batchnorm, recover  # noqa: E402
from fa_compress.train.config import TrainConfig  # noqa: E402
from fa_compress.train.distributed import init_context  # noqa: E402
from fa_compress.train.progress import phase_bar  # noqa: E402



@torch.inference_mode()
def correctness(model: torch.nn.Module, dataset) -> torch.Tensor:
    """(N,) bool: which items of `dataset` the model classifies right."""
    model.eval()
    out = []
    for x, y in DataLoader(dataset, batch_size=256):
        out.append(model(x).argmax(1) == y)  # (B, classes) -> (B,)
    return torch.cat(out)


def _acc(model, dataset) -> dict:
    c = correctness(model, dataset)
    return Accuracy.of(int(c.sum()), c.numel()).to_dict()


def _row(method: str, target: float, tuned, data, seed: int, img: int, args) -> dict:
    m = METHODS[method]
    settings = PruneSettings(seed=seed, **m.settings)
    example = torch.zeros(1, 3, img, img)
    options = ChainOptions(fade_epochs=m.fade_epochs, recover_epochs=0,  # the recoveries below are compared
                           fade_until=m.fade_until or ChainOptions.fade_until,
                           recover_batch_size=m.fade_batch or ChainOptions.recover_batch_size)
    work = copy.deepcopy(tuned)
    t0 = time.perf_counter()
    chain = prune_chain(work, get_head(work, ARCH), settings, example, Budget(target_macs=target), data.train,
                        TrainConfig(seed=seed), init_context("cpu"), options=options, seed=seed)
    prune_s = time.perf_counter() - t0
    pruned, budget = chain.model, chain.budget
    fade = {} if chain.fade is None else {"fade_epochs": m.fade_epochs, "fade_until": options.fade_until,
                                          "fade_batch": m.fade_batch, "fade_s": chain.fade["seconds"],
                                          "fade_cut_channels": chain.fade["channels"]}
    cut_val, cut_test = _acc(pruned, data.val), _acc(pruned, data.test)
    recoveries, models = {}, {}
    for spec in (args.recoveries.split(",") if m.recover else []):
        models[spec] = model = copy.deepcopy(pruned)
        t0 = time.perf_counter()
        _recover(model, spec, data, seed, m.recover_epochs or args.recover_epochs)
        recoveries[spec] = {"val": _acc(model, data.val), "test": _acc(model, data.test),
                            "seconds": time.perf_counter() - t0}
    if m.recover:
        reported = args.recoveries.split(",")[0]
        rec_val, rec_test, recover_s = (recoveries[reported][k] for k in ("val", "test", "seconds"))
        kept = "recovered" if rec_val["value"] >= cut_val["value"] else "pruned"  # chosen on validation only
    else:  # the fade epoch took the recovery's place: nothing to choose
        reported, models[reported] = "none", pruned
        rec_val, rec_test, recover_s, kept = cut_val, cut_test, 0.0, "pruned"
    final = rec_test if kept == "recovered" else cut_test
    return {"method": method, "target_macs": target, "seed": seed, "keep": budget.keep,
            "settings": {k: v for k, v in asdict(settings).items() if k != "ignore"},
            "macs_fraction": budget.macs_fraction, "params_fraction": budget.params_fraction,
            "search_steps": len(budget.steps), "prune_s": prune_s, "recover_s": recover_s, **fade,
            "recover_epochs": (m.recover_epochs or args.recover_epochs) if m.recover else 0,
            "cut_val": cut_val, "cut_test": cut_test, "rec_val": rec_val, "rec_test": rec_test,
            "kept": kept, "final_test": final, "recoveries": recoveries,
            "_model": models[reported] if kept == "recovered" else pruned}


def _keep_model(row: dict, tuned, final_model, task: str, method: str, target: float, data) -> None:
    """Save the dense and the final pruned model of the first seed (for the latency table)."""
    from fa_compress.gates import fold_gates
    from fa_compress.models.saved import model_meta, save_model

    WORK.mkdir(parents=True, exist_ok=True)
    norm = get_spec(ARCH).normalization
    norm = {"mean": list(norm.mean), "std": list(norm.std)}

    def meta(model):
        return model_meta(model, arch=ARCH, classes=data.classes, img_size=TASKS[task].img_size, normalization=norm)

    dense_path = WORK / f"{task}-dense-{row['start']}.safetensors"
    if not dense_path.exists():
        dense = fold_gates(copy.deepcopy(tuned))
        save_model(dense_path, dense, meta(dense))
    save_model(WORK / f"{task}-{method}-{target}.safetensors", final_model, meta(final_model))


def _recover(model, spec: str, data, seed: int, epochs: int) -> None:
    """One recovery, as `spec` says: `PHASE[:LR][/BATCH]` (fa_compress.pruning.recover; LR is the rate of
    what the phase trains: the backbone in `all`, the gates in `gates`, BatchNorm in `bn`), `recal`
    (BatchNorm statistics only) or `default` (the library's defaults; `default/BATCH` changes the batch).
    `results/calib_recbatch.*` ran when the library's batch was still the fine-tuning's 32."""
    ctx = init_context("cpu")
    seed_everything(seed, "recovery")  # as `facompress prune` does: the row repeats whatever ran before it
    if spec == "recal":
        recalibrate_batchnorm(model, data.train, ctx)
        return
    spec, _, batch = spec.partition("/")
    phase, _, lr = spec.partition(":")
    cfg = TrainConfig(seed=seed)
    kwargs = {} if phase == "default" else {"phase": phase}
    if batch:  # else the library's recovery batch (fa_compress.pruning.recover.DEFAULT_RECOVER_BATCH)
        kwargs["batch_size"] = int(batch)
    if lr and phase == "all":
        kwargs["lr"] = float(lr)
    elif lr:
        cfg = replace(cfg, **{f"lr_{phase}": float(lr)})
    with phase_bar(False) as bar:
        recover(model, get_head(model, ARCH), data.train, DataLoader(data.val, batch_size=128), epochs,
                cfg, ctx, bar, **kwargs)


def run_task(task_name: str, seeds: list[int], methods: list[str], targets: list[float], args, rows: list,
             save) -> None:
    task = TASKS[task_name]
    norm = get_spec(ARCH).normalization
    for seed in seeds:
        data = load_task(task, norm, seed=seed)
        starts = list(dict.fromkeys(METHODS[m].start for m in methods))  # in the order the methods are given
        for start_name in starts:
            done = [r for r in rows if r["task"] == task_name and r["seed"] == seed and r.get("start") == start_name]
            todo = [(m, t) for t in targets for m in methods if METHODS[m].start == start_name
                    if not any(r["method"] == m and r["target_macs"] == t for r in done)]
            if not todo:
                continue
            tuned, info = fine_tune(STARTS[start_name], data, seed, task.img_size)
            dense = {"val": _acc(tuned, data.val), "test": _acc(tuned, data.test)}
            print(f"[{task_name} seed {seed}] {start_name}: dense val {dense['val']['value']:.2%} "
                  f"test {Accuracy(**dense['test']).format()} ({info['seconds']:.0f}s)", flush=True)
            for method, target in todo:
                try:
                    row = _row(method, target, tuned, data, seed, task.img_size, args)
                except ConfigError as exc:  # e.g. a budget this ranking cannot reach
                    print(f"  {method:15s} target {target}: {exc}", flush=True)
                    continue
                row.update(task=task_name, start=start_name, dense=dense, finetune=info,
                           train_images=len(data.train), val_images=len(data.val), test_images=len(data.test))
                final_model = row.pop("_model")
                rows.append(row)
                save()
                if args.keep_models and seed == seeds[0]:
                    _keep_model(row, tuned, final_model, task_name, method, target, data)
                print(f"  {method:15s} macs {row['macs_fraction']:.3f} (keep {row['keep']:.3f}) "
                      f"cut {row['cut_test']['value']:.2%} -> rec {row['rec_test']['value']:.2%} "
                      f"[{row['kept']}] final {row['final_test']['value']:.2%}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", default="tops4,shoes3,default")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--methods", default="gate,taylor,bn,l1,random,bnscale-sparse,group-sparse")
    p.add_argument("--targets", default="0.75,0.5,0.35")
    p.add_argument("--recover-epochs", type=int, default=1,
                   help="recovery epochs after the cut (a method may fix its own, e.g. gate-fade-rec: 1)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (two runs side by side: 1 each)")
    p.add_argument("--recoveries", default="default",
                   help="comma-separated recoveries tried on each cut, PHASE[:LR][/BATCH] | recal | default[/BATCH]; the first "
                        "one is the one reported (and kept or undone on the validation split)")
    p.add_argument("--name", default="prune_pareto", help="results/<name>.{json,md,png}")
    p.add_argument("--resume", action="store_true", help="keep the rows already in the JSON")
    p.add_argument("--keep-models", action="store_true",
                   help=f"save the first seed's dense and final models under {WORK} (for pareto_latency.py)")
    p.add_argument("--render", action="store_true", help="only rebuild the Markdown and plot (of every --name)")
    p.add_argument("--render-to", default="prune_pareto", help="with --render of several names: results/<this>.*")
    p.add_argument("--relabel", action="append", default=[],
                   help="with --render: NAME:OLD=NEW renames method OLD in results/NAME.json to NEW (rows "
                        "measured under an earlier default), recorded in each row as `measured_as`")
    args = p.parse_args()
    out = RESULTS / args.name.split(",")[0]
    if args.render:  # several names: their rows together, written to results/<--render-to>.*
        names = args.name.split(",")
        docs = [json.loads((RESULTS / f"{n}.json").read_text()) for n in names]
        for spec in args.relabel:  # NAME:OLD=NEW, for rows measured before a default changed
            name, _, change = spec.partition(":")
            old, _, new = change.partition("=")
            for r in docs[names.index(name)]["rows"]:
                if r["method"] == old:
                    r["method"], r["measured_as"] = new, old
        doc = {**docs[0], "rows": [r for d in docs for r in d["rows"]],
               "command": " ; ".join(d["command"] for d in docs), "relabel": args.relabel}
        out = RESULTS / (names[0] if len(names) == 1 else args.render_to)
        if len(names) > 1:
            out.with_suffix(".json").write_text(json.dumps(doc, indent=1, default=str))
        out.with_suffix(".md").write_text(render(doc))
        plot(doc, out.with_suffix(".png"))
        print(render(doc))
        return
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        p.error(f"--seeds must be whole numbers separated by commas (got {args.seeds!r})")
    if not seeds:
        p.error("--seeds is empty")
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        p.error(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
    torch.set_num_threads(args.threads)
    earlier = json.loads(out.with_suffix(".json").read_text()) if args.resume and out.with_suffix(".json").exists() else {}
    rows = earlier.get("rows", [])
    command = " ; ".join(c for c in (earlier.get("command"), command_line()) if c)  # a resumed run keeps both
    doc = {"command": command, "environment": environment(), "load_before": load_average(), "rows": rows,
           "recovery": f"{args.recover_epochs} epoch of {args.recoveries.split(',')[0]}"}

    def save() -> None:
        doc["load_after"] = load_average()
        out.with_suffix(".json").write_text(json.dumps(doc, indent=1, default=str))

    for task in args.tasks.split(","):
        run_task(task, seeds, methods, [float(t) for t in args.targets.split(",")], args, rows, save)
    save()
    out.with_suffix(".md").write_text(render(doc))
    plot(doc, out.with_suffix(".png"))
    print(render(doc))


if __name__ == "__main__":
    main()
