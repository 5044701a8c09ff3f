"""Gate-guided compression against torch-pruning at equal MACs, on the task zoo, over seeds.

Tasks come from the zoo (benchmarks/_tasks.py, `python -m benchmarks tasks`): each brings its classes,
images, size and model, and says whether the defaults were chosen on it (`choose`) or not (`held_out`).
For each task and seed: fine-tune the task's EfficientNet-Lite (real ImageNet weights) once per start
(gated, and torch-pruning's sparse trainings), then for every method and MAC target prune the
fine-tuned model to that fraction of the dense MACs (bisection on the keep ratio,
`fa_compress.pruning.budget`), measure validation and test accuracy right after the cut, recover for
one epoch with facompress's default recovery, measure again, and keep the recovered model only
when the *validation* split says it is better (the test split is only reported). Accuracy is over
the full test split of the task (10,000 images for the default task) with a Wilson 95% interval;
methods are compared by mean and standard deviation over seeds.

    .venv/bin/python -m benchmarks.prune_pareto --tasks tops4,shoes3,default --seeds 0,1,2
    .venv/bin/python -m benchmarks.prune_pareto --tasks zoo --seeds 0 --task-seeds default=0,1,2 --jobs 2
    .venv/bin/python -m benchmarks.prune_pareto --render      # tables and plot from the stored JSON

`--jobs N` runs the (task, seed) units as N single-thread processes side by side (benchmarks/_pareto_jobs.py).

Results: benchmarks/results/prune_pareto.{json,md,png}; the JSON is rewritten after every row, so
an interrupted run keeps what it measured and `--resume` continues it.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path


import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from ._common import RESULTS, command_line, load_average, revision  # noqa: E402
from ._pareto_jobs import Unit, run_units  # noqa: E402
from ._pareto_methods import METHODS, STARTS, Method, fine_tune  # noqa: E402
from ._pareto_report import plot, render  # noqa: E402
from ._tasks import CHOOSE, TASKS, ZOO, Task, load_task, resolve  # noqa: E402

WORK = Path(__file__).resolve().parent / "work" / "pareto"  # git-ignored

from fa_compress._seed import seed_everything  # noqa: E402
from fa_compress.accuracy import Accuracy  # noqa: E402
from fa_compress.errors import ConfigError  # noqa: E402
from fa_compress.bench.environment import environment  # noqa: E402
from fa_compress.models import get_head, get_spec  # noqa: E402
from fa_compress.gates import fold_gates  # noqa: E402
from fa_compress.models.complexity import count_macs, count_params  # noqa: E402
from fa_compress.pruning.budget import Budget, BudgetResult, prune_to_budget  # noqa: E402
from fa_compress.pruning.chain import ChainOptions, chain_scorers, prune_chain  # noqa: E402
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


def training_steps(args, data, target: float) -> int:
    """The optimizer steps every method trains after fine-tuning (a fade or a recovery) for a cut to `target`
    of the dense MACs: --steps, else the library's default budget on this task (one epoch at the recovery
    batch, at least its floor, grown for a deep cut as the library grows it)."""
    return ChainOptions(fade_steps=args.steps).fade_budget(len(data.train), init_context("cpu"), target).steps


def chain_options(m: Method, steps: int) -> ChainOptions:
    """The chain's options for method `m` fading for `steps`: the one place a new library option of the fade
    or the recovery (a fade schedule, distillation) is passed, so every method gets it alike."""
    fade = {"fade_steps": steps * m.fade_epochs} if m.fade_epochs else {"fade_epochs": 0}
    return ChainOptions(**fade, recover_epochs=0,  # the recoveries in _row are compared
                        fade_until=m.fade_until or ChainOptions.fade_until,
                        recover_batch_size=m.fade_batch or ChainOptions.recover_batch_size)


def _row(method: str, target: float, tuned, data, seed: int, task: Task, args) -> dict:
    m = METHODS[method]
    settings = PruneSettings(seed=seed, **m.settings)
    example = torch.zeros(1, 3, task.img_size, task.img_size)
    steps = training_steps(args, data, target)
    options = chain_options(m, steps)
    work = copy.deepcopy(tuned)
    rec_steps, between = steps * (m.recover_epochs or 1), 0
    t0 = time.perf_counter()
    if m.iterative > 1:
        pruned, budget, shares = _iterative_cut(work, settings, example, target, data, seed, steps, task, m.iterative)
        rec_steps, between = shares[-1], sum(shares[:-1])
        fade = {"iterative_cuts": m.iterative, "steps_between_cuts": between}
    else:
        chain = prune_chain(work, get_head(work, task.model), settings, example, Budget(target_macs=target),
                            data.train, TrainConfig(seed=seed), init_context("cpu"), options=options, seed=seed)
        pruned, budget = chain.model, chain.budget
        fade = {} if chain.fade is None else {"fade_steps": options.fade_steps, "fade_until": options.fade_until,
                                              "fade_batch": m.fade_batch, "fade_s": chain.fade["seconds"],
                                              "fade_cut_channels": chain.fade["channels"]}
    prune_s = time.perf_counter() - t0
    cut_val, cut_test = _acc(pruned, data.val), _acc(pruned, data.test)
    recoveries, models = {}, {}
    for spec in (args.recoveries.split(",") if m.recover else []):
        models[spec] = model = copy.deepcopy(pruned)
        t0 = time.perf_counter()
        _recover(model, spec, data, seed, rec_steps, task.model)
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
            "recover_steps": rec_steps if m.recover else 0,
            "train_steps": (options.fade_steps or 0) + between + (rec_steps if m.recover else 0),
            "cut_val": cut_val, "cut_test": cut_test, "rec_val": rec_val, "rec_test": rec_test,
            "kept": kept, "final_test": final, "recoveries": recoveries,
            "_model": models[reported] if kept == "recovered" else pruned}


def _iterative_cut(model, settings: PruneSettings, example, target: float, data, seed: int, steps: int, task: Task,
                   cuts: int) -> tuple[torch.nn.Module, BudgetResult, list[int]]:
    """torch-pruning's iterative pruning to `target` of the dense MACs: `cuts` cuts, the i-th to
    1 - i (1 - target) / cuts of them (its iterative_steps schedule, linear, here in MACs so the end is the
    same compute as a one-shot cut), each scored afresh on the model the one before left; every cut but the
    last is followed by its share of `steps` of the default recovery. Returns the model after the last cut,
    what it reached against the dense model, and the shares (the last one is the caller's recovery)."""
    shares = [steps // cuts + (1 if i < steps % cuts else 0) for i in range(cuts)]
    dense_macs = count_macs(fold_gates(copy.deepcopy(model)), task.img_size)
    dense_params = count_params(fold_gates(copy.deepcopy(model)))
    scorers = chain_scorers(settings, data.train, "cpu")
    keep, trials = 1.0, []
    for i in range(1, cuts + 1):
        goal = 1 - i * (1 - target) / cuts
        relative = goal * dense_macs / count_macs(fold_gates(copy.deepcopy(model)), task.img_size)
        seed_everything(seed, "prune scores")
        model, found = prune_to_budget(model, get_head(model, task.model), settings, example,
                                       Budget(target_macs=min(relative, 0.999)), *scorers)
        keep *= found.keep
        trials += found.steps
        if i < cuts:
            _recover(model, "default", data, seed, shares[i - 1], task.model)
    result = BudgetResult("macs", keep, target, dense_macs, count_macs(model, task.img_size), dense_params,
                          count_params(model), Budget().tolerance, tuple(trials))
    return model, result, shares


def _keep_model(row: dict, tuned, final_model, task: Task, method: str, target: float, data) -> None:
    """Save the dense and the final pruned model of the first seed (for the latency table)."""
    from fa_compress.models.saved import model_meta, save_model

    WORK.mkdir(parents=True, exist_ok=True)
    norm = get_spec(task.model).normalization
    norm = {"mean": list(norm.mean), "std": list(norm.std)}

    def meta(model):
        return model_meta(model, arch=task.model, classes=data.classes, img_size=task.img_size, normalization=norm)

    dense_path = WORK / f"{task.name}-dense-{row['start']}.safetensors"
    if not dense_path.exists():
        dense = fold_gates(copy.deepcopy(tuned))
        save_model(dense_path, dense, meta(dense))
    save_model(WORK / f"{task.name}-{method}-{target}.safetensors", final_model, meta(final_model))


def _recover(model, spec: str, data, seed: int, steps: int, arch: str) -> None:
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
        recover(model, get_head(model, arch), data.train, DataLoader(data.val, batch_size=128), None,
                cfg, ctx, bar, steps=steps, **kwargs)


def run_task(task: Task, seeds: list[int], methods: list[str], targets: list[float], args, rows: list,
             save) -> None:
    """Every row of `task` for `seeds` that `rows` lacks; --keep-models saves the models of `seeds[0]`."""
    norm = get_spec(task.model).normalization
    code = revision()
    for seed in seeds:
        starts = list(dict.fromkeys(METHODS[m].start for m in methods))  # in the order the methods are given
        data = None
        for start_name in starts:
            done = [r for r in rows if r["task"] == task.name and r["seed"] == seed and r.get("start") == start_name]
            todo = [(m, t) for t in targets for m in methods if METHODS[m].start == start_name
                    if METHODS[m].targets is None or t in METHODS[m].targets
                    if not any(r["method"] == m and r["target_macs"] == t for r in done)]
            if not todo:
                continue
            data = data or load_task(task, norm, seed=seed, test_per_class=args.test_per_class)
            tuned, info = fine_tune(STARTS[start_name], data, seed, task.img_size, task.model,
                                    min_phase_steps=args.finetune_steps)
            dense = {"val": _acc(tuned, data.val), "test": _acc(tuned, data.test)}
            print(f"[{task.name} seed {seed}] {start_name}: dense val {dense['val']['value']:.2%} "
                  f"test {Accuracy(**dense['test']).format()} ({info['seconds']:.0f}s)", flush=True)
            for method, target in todo:
                try:
                    row = _row(method, target, tuned, data, seed, task, args)
                except ConfigError as exc:  # e.g. a budget this ranking cannot reach
                    print(f"  {method:15s} target {target}: {exc}", flush=True)
                    continue
                row.update(task=task.name, role=task.role, model=task.model, img_size=task.img_size,
                           start=start_name, dense=dense, finetune=info, train_images=len(data.train),
                           val_images=len(data.val), test_images=len(data.test), test_per_class=args.test_per_class,
                           revision=code["revision"], dirty=code["dirty"])
                final_model = row.pop("_model")
                rows.append(row)
                save()
                if args.keep_models and seed == seeds[0]:
                    _keep_model(row, tuned, final_model, task, method, target, data)
                print(f"  {method:15s} macs {row['macs_fraction']:.3f} (keep {row['keep']:.3f}) "
                      f"cut {row['cut_test']['value']:.2%} -> rec {row['rec_test']['value']:.2%} "
                      f"[{row['kept']}] final {row['final_test']['value']:.2%}", flush=True)


def _options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", default="tops4,shoes3,default",
                   help="zoo tasks by name, comma-separated (`python -m benchmarks tasks`); `zoo`, `choose` and "
                        "`held_out` stand for those groups")
    p.add_argument("--seeds", default="0,1,2", help="the seeds of every task --task-seeds does not name")
    p.add_argument("--task-seeds", nargs="*", default=[], metavar="TASK=SEEDS",
                   help="other seeds for some tasks, e.g. default=0,1,2 tops4=0,1,2")
    p.add_argument("--methods", default="gate,taylor,bn,l1,random,bnscale-sparse,group-sparse")
    p.add_argument("--targets", default="0.75,0.5,0.35")
    p.add_argument("--steps", type=int, default=None,
                   help="optimizer steps every method trains after fine-tuning, as its fade or its recovery (default: "
                        "the library's budget, one epoch but at least its floor; gate-fade-rec trains twice this)")
    p.add_argument("--finetune-steps", type=int, default=None,
                   help="fewest optimizer steps per fine-tuning phase (default: the library's floor; 0: one epoch)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (two runs side by side: 1 each)")
    p.add_argument("--jobs", type=int, default=1,
                   help="run the (task, seed) units as this many processes side by side, each with --threads 1")
    p.add_argument("--deadline-min", type=float, default=None,
                   help="with --jobs: start no unit after this many minutes and stop the running ones, keeping "
                        "their finished rows (the results name the unfinished units)")
    p.add_argument("--test-per-class", type=int, default=None,
                   help="cap the test split at this many images of each class (smoke runs; default: all of it)")
    p.add_argument("--recoveries", default="default",
                   help="comma-separated recoveries tried on each cut, PHASE[:LR][/BATCH] | recal | default[/BATCH]; the first "
                        "one is the one reported (and kept or undone on the validation split)")
    p.add_argument("--name", default="prune_pareto", help="results/<name>.{json,md,png}")
    p.add_argument("--resume", action="store_true", help="keep the rows already in the JSON")
    p.add_argument("--keep-models", action="store_true",
                   help=f"save the first seed's dense and final models under {WORK} (for pareto_latency.py)")
    p.add_argument("--rows-to", type=Path, default=None,
                   help="write only the rows, to this JSON file (what --jobs hands each process)")
    p.add_argument("--render", action="store_true", help="only rebuild the Markdown and plot (of every --name)")
    p.add_argument("--render-to", default="prune_pareto", help="with --render of several names: results/<this>.*")
    p.add_argument("--relabel", action="append", default=[],
                   help="with --render: NAME:OLD=NEW renames method OLD in results/NAME.json to NEW (rows "
                        "measured under an earlier default), recorded in each row as `measured_as`")
    return p


def _render_only(args) -> None:
    """--render: the Markdown and plot of stored results (several names: their rows together)."""
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


def _seeds(text: str, p: argparse.ArgumentParser, option: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        p.error(f"{option} must be whole numbers separated by commas (got {text!r})")
    if not seeds:
        p.error(f"{option} is empty")
    return seeds


def plan(args, p: argparse.ArgumentParser) -> list[Unit]:
    """The (task, seeds) units the options ask for, in order."""
    try:
        tasks = resolve(args.tasks)
    except ConfigError as exc:
        p.error(f"--tasks: {exc}")
    default = _seeds(args.seeds, p, "--seeds")
    per_task = {}
    for spec in args.task_seeds:
        name, sep, text = spec.partition("=")
        if not sep or name not in TASKS:
            p.error(f"--task-seeds takes TASK=SEEDS with a zoo task (got {spec!r}); known: {', '.join(TASKS)}")
        per_task[name] = _seeds(text, p, f"--task-seeds {name}")
    missing = sorted(set(per_task) - {t.name for t in tasks})
    if missing:
        p.error(f"--task-seeds names {', '.join(missing)}, which --tasks does not run")
    return [Unit(t.name, per_task.get(t.name, default)) for t in tasks]


def main() -> None:
    p = _options()
    args = p.parse_args()
    if args.render:
        _render_only(args)
        return
    units = plan(args, p)
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        p.error(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
    targets = [float(t) for t in args.targets.split(",")]
    torch.set_num_threads(1 if args.jobs > 1 else args.threads)
    out = args.rows_to or (RESULTS / args.name.split(",")[0]).with_suffix(".json")
    earlier = json.loads(out.read_text()) if (args.resume or args.rows_to) and out.exists() else {}
    rows = earlier.get("rows", [])
    command = " ; ".join(c for c in (earlier.get("command"), command_line()) if c)  # a resumed run keeps both
    doc = {"command": command, "environment": environment(), "load_before": load_average(), "rows": rows,
           "recovery": f"{args.steps or 'the default'} steps of {args.recoveries.split(',')[0]}",
           "tasks": {u.task: {**asdict(TASKS[u.task]), "seeds": u.seeds} for u in units},
           "chose_defaults": [t.name for t in ZOO if t.role == CHOOSE],
           "jobs": args.jobs, "threads": 1 if args.jobs > 1 else args.threads}

    def save() -> None:
        doc["load_after"] = load_average()
        out.write_text(json.dumps(doc, indent=1, default=str))

    failed: list[str] = []
    if args.jobs > 1:
        failed, unfinished = run_units(units, args, rows, save)
        if unfinished:
            doc["unfinished"] = unfinished
    else:
        for unit in units:
            run_task(TASKS[unit.task], unit.seeds, methods, targets, args, rows, save)
    save()
    if args.rows_to:
        return
    out.with_suffix(".md").write_text(render(doc))
    plot(doc, out.with_suffix(".png"))
    print(render(doc))
    if failed:
        print(f"failed units: {', '.join(failed)}; rerun with --resume", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
