"""Every torchvision classification model (and a dozen timm CNNs) through the whole chain.

    python -m benchmarks zoo --config benchmarks/configs/zoo.toml           # all: ~30 min on 2 cores
    python -m benchmarks.zoo --only resnet18 timm:resnet18 --out /tmp/zoo   # a few
    python -m benchmarks.zoo --render --out DIR                             # tables from DIR/zoo.json

Each model runs in turn in one process (`--isolate`: each in its own), with random weights on fake data
(`fake:4`, 16 training and 8 test images) at a small size (32 px, or the model's smallest input):
`finetune` (schedule head,gates, one epoch each) -> `prune --keep 0.6 --gate-score value --fade-steps 2` (gate
importance, a brief fade, no recovery) -> `export`
(ONNX, checked against PyTorch by onnxruntime at batch 1 and 8), the same library calls the CLI
makes, run directory and all. Models over 100 M parameters take the object path instead (gates
inserted and drawn at random, `prune_model`, `export_onnx`, `check_parity`): no multi-GB run files.
Models without BatchNorm2d are gated after their LayerNorms over channels or in their convs
(fa_compress/gates/sites.py); refused models (vision transformers, blocks torch-pruning cannot group;
see fa_compress/models/torchvision_models.py and keep_whole.py) are listed as refused with the reason,
as `facompress finetune --model NAME` says it. Prune time is wall time of the
prune step alone (torch-pruning's graph, step, fold, a check run), on a loaded shared machine.

Writes zoo.json and zoo.md (through `python -m benchmarks`: results/zoo.<cpu-kind>.{json,md}).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ._common import RESULTS  # the suite runner points it elsewhere

HERE = Path(__file__).resolve().parent
KEEP = 0.6
# Channels ranked by gate value: the chain's coverage does not depend on which channels go, and the
# value needs no scoring pass (the Taylor gate score, the CLI's default, adds one on training images).
SETTINGS = dict(keep=KEEP, gate_score="value")
FADE_STEPS = 2  # the fade runs (its code is covered) but briefly
BIG_PARAMS = 100_000_000  # above this, the object path (no run files of several GB)
TIMEOUT_S = 1800
TIMM_MODELS = ("resnet18", "resnet50d", "seresnet50", "efficientnet_b0", "mobilenetv2_100",
               "mobilenetv3_large_100", "regnety_008", "rexnet_100", "mixnet_s", "dla34", "cspdarknet53",
               "ghostnet_100")


def _row(name: str, status: str, stage: str = "", reason: str = "", **extra) -> dict:
    return {"model": name, "status": status, "stage": stage, "reason": reason, **extra}


def _sizes(name: str) -> tuple[int, int]:
    """(parameters of the 10-class model, input px) without building it for real."""
    from fa_compress.models import get_spec
    from fa_compress.models._discover import build_on_meta

    spec = get_spec(name)
    model = build_on_meta(lambda: spec.builder(False))
    return sum(p.numel() for p in model.parameters()), max(32, spec.min_img_size)


def _chain_cli_path(name: str, img: int, workdir: Path) -> dict:
    """finetune -> prune -> export through the stage functions the CLI calls."""
    from fa_compress.export.pipeline import ExportOptions, export_run
    from fa_compress.pruning.pruner import PruneSettings
    from fa_compress.pruning.stage import PruneOptions, prune_run
    from fa_compress.train import TrainConfig, parse_schedule
    from fa_compress.train.stage import FinetuneOptions, finetune_run

    stage = "finetune"
    try:
        # A coverage check, not an accuracy one: one epoch per phase (2 steps) and a 2-step fade, not the floors
        # that keep small real datasets from training too little (phase_steps.FLOOR_STEPS, pruning.steps).
        train = TrainConfig(schedule=parse_schedule("head,gates"), batch_size=8, seed=0, min_phase_steps=0)
        run, _ = finetune_run(FinetuneOptions(model=name, weights="none", data="fake:4", img_size=img,
                                              limit_train=16, limit_test=8, device="cpu", run=workdir / "run",
                                              train=train, show_progress=False))
        stage = "prune"
        _, pr, _ = prune_run(PruneOptions(settings=PruneSettings(**SETTINGS), recover_epochs=0, fade_steps=FADE_STEPS,
                                          run=run.path, device="cpu", show_progress=False))
        stage = "export"
        ex = export_run(run.path, ExportOptions())
    except Exception as exc:  # noqa: BLE001 - the row says where and why
        return _row(name, "fail", stage, f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")
    return _row(name, "pass", path="cli", img_size=img, params_before=pr.params_before, params_after=pr.params_after,
                macs_before=pr.macs_before, macs_after=pr.macs_after, prune_s=round(pr.prune_s, 2),
                max_rel_err=ex.parity.max_rel_err, top1_agreement=ex.parity.top1_agreement)


def _chain_object_path(name: str, img: int, workdir: Path) -> dict:
    """The same chain on objects, for models too big to write run files of."""
    import torch

    from fa_compress.export import check_parity, export_onnx, onnx_metadata
    from fa_compress.gates import fold_gates, insert_gates, iter_gates
    from fa_compress.models import build_model, get_head, get_spec
    from fa_compress.models.complexity import count_macs, count_params
    from fa_compress.pruning.pruner import PruneSettings, timed_prune

    stage = "build"
    try:
        torch.manual_seed(0)
        model = insert_gates(build_model(name, 4, weights="none")).eval()
        for _, gated in iter_gates(model):
            gated.gate.data.uniform_(0, 1)
        before = count_params(fold_gates(__import__("copy").deepcopy(model))), count_macs(model, img)
        stage = "prune"
        example = torch.zeros(1, 3, img, img)
        model, prune_s = timed_prune(model, get_head(model, name), PruneSettings(**SETTINGS), example)
        stage = "export"
        spec = get_spec(name)
        meta = onnx_metadata(classes=["a", "b", "c", "d"], img_size=img, mean=spec.normalization.mean,
                             std=spec.normalization.std, source_run="benchmarks/zoo.py")
        path = workdir / "model.onnx"
        export_onnx(model, path, img_size=img, metadata=meta)
        parity = check_parity(model, path, torch.randn(8, 3, img, img))
        if not parity.passed:
            return _row(name, "fail", "parity", f"max rel err {parity.max_rel_err:.2e}")
    except Exception as exc:  # noqa: BLE001
        return _row(name, "fail", stage, f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")
    return _row(name, "pass", path="object", img_size=img, params_before=before[0], params_after=count_params(model),
                macs_before=before[1], macs_after=count_macs(model, img), prune_s=round(prune_s, 2),
                max_rel_err=parity.max_rel_err, top1_agreement=parity.top1_agreement)


def run_one(name: str) -> dict:
    """One model's row, in this process."""
    import torch

    from fa_compress.errors import UserError

    torch.set_num_threads(1)
    try:
        params, img = _sizes(name)
    except UserError as exc:
        return _row(name, "refused", "finetune --model", " ".join(str(exc).split())[:300])
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="zoo-") as tmp:
        os.environ["FACOMPRESS_RUNS"] = tmp
        chain = _chain_object_path if params > BIG_PARAMS else _chain_cli_path
        row = chain(name, img, Path(tmp))
    return {**row, "total_s": round(time.perf_counter() - t0, 1)}


def _names(with_timm: bool) -> list[str]:
    from fa_compress.models.torchvision_models import zoo_names

    names = list(zoo_names())
    if with_timm:
        from fa_compress import _deps

        if _deps.available("timm"):
            names += [f"timm:{n}" for n in TIMM_MODELS]
    return names


def _in_subprocess(name: str) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.zoo", "--one", name]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=HERE.parent)
    except subprocess.TimeoutExpired:
        return _row(name, "fail", "timeout", f"no result in {TIMEOUT_S} s")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1][:300]
        return _row(name, "fail", "crash", f"exit {done.returncode}: {tail}")
    return json.loads(lines[-1])


def _in_process(name: str) -> dict:
    import gc

    try:
        return run_one(name)
    except Exception as exc:  # noqa: BLE001 - one row, whatever happened
        return _row(name, "fail", "crash", f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")
    finally:
        gc.collect()


def _short(reason: str) -> str:
    """The reason up to its first `;`, without the 'torchvision model NAME' prefix."""
    first = reason.split(";")[0]
    words = first.split(" ")
    return " ".join(words[3:]) if first.startswith("torchvision model ") else first


def render(rows: list[dict]) -> str:
    """The Markdown table and the pass rate over BatchNorm'd torchvision models."""
    from fa_compress.models.torchvision_models import NO_BATCHNORM

    tv = [r for r in rows if not r["model"].startswith("timm:")]
    with_bn = [r for r in tv if r["model"] not in NO_BATCHNORM]
    norm_free = [r for r in tv if r["model"] in NO_BATCHNORM and r["status"] != "refused"]
    timm = [r for r in rows if r["model"].startswith("timm:")]
    passed = sum(r["status"] == "pass" for r in with_bn)
    lines = [f"- torchvision models with BatchNorm2d that pass end to end: **{passed} of {len(with_bn)}** "
             f"({passed / max(len(with_bn), 1):.0%}); the others are refused up front with the reason: "
             f"{', '.join(r['model'] for r in with_bn if r['status'] == 'refused') or 'none'}"
             f"{'; failed: ' + ', '.join(r['model'] for r in with_bn if r['status'] == 'fail') if any(r['status'] == 'fail' for r in with_bn) else ''}",
             f"- torchvision models without BatchNorm2d (gates after LayerNorms or in convs) that pass: "
             f"{sum(r['status'] == 'pass' for r in norm_free)} of {len(norm_free)}",
             f"- torchvision models without BatchNorm2d refused up front (vision transformers): "
             f"{sum(r['model'] in NO_BATCHNORM and r['status'] == 'refused' for r in tv)}",
             f"- timm CNNs that pass: {sum(r['status'] == 'pass' for r in timm)} of {len(timm)}", "",
             "| model | result | path | px | params before -> after (M) | MACs before -> after (M) | prune s | "
             "max rel err |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["status"] == "pass":
            lines.append(f"| {r['model']} | pass | {r['path']} | {r['img_size']} | {r['params_before'] / 1e6:.2f} -> "
                         f"{r['params_after'] / 1e6:.2f} | {r['macs_before'] / 1e6:.1f} -> {r['macs_after'] / 1e6:.1f} | "
                         f"{r['prune_s']:.2f} | {r['max_rel_err']:.1e} |")
        else:
            lines.append(f"| {r['model']} | {r['status']} at {r['stage']}: {_short(r['reason'])} | | | | | | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: one model, JSON row on stdout
    parser.add_argument("--only", nargs="*", help="these models only")
    parser.add_argument("--no-timm", action="store_true", help="torchvision models only")
    parser.add_argument("--render", action="store_true", help="rewrite zoo.md from zoo.json")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for zoo.json / zoo.md")
    parser.add_argument("--isolate", action="store_true",
                        help="each model in its own process (a crash costs one row; ~1 min of imports each "
                             "on a loaded machine)")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one)), flush=True)
        return
    out_json, out_md = args.out / "zoo.json", args.out / "zoo.md"
    if args.render:
        rows = json.loads(out_json.read_text())["rows"]
    else:
        from fa_compress.bench.environment import environment
        from fa_compress.export import to_record

        names = args.only or _names(with_timm=not args.no_timm)
        done = {r["model"]: r for r in json.loads(out_json.read_text())["rows"]} if out_json.is_file() and args.only else {}
        rows = []
        for i, name in enumerate(names):
            row = _in_subprocess(name) if args.isolate else _in_process(name)
            rows.append(row)
            print(f"[{i + 1}/{len(names)}] {name}: {row['status']} {row.get('stage', '')} {row.get('reason', '')[:120]}"
                  f" ({row.get('total_s', '?')} s)", flush=True)
            merged = {**done, **{r["model"]: r for r in rows}}
            args.out.mkdir(parents=True, exist_ok=True)
            out_json.write_text(json.dumps({"keep": KEEP, "environment": to_record(environment()),
                                            "command": " ".join(sys.argv),
                                            "rows": sorted(merged.values(), key=lambda r: r["model"])}, indent=1) + "\n")
        rows = sorted({**done, **{r["model"]: r for r in rows}}.values(), key=lambda r: r["model"])
    out_md.write_text("# The model zoo through finetune -> prune --keep 0.6 -> export -> parity\n\n"
                      "Written by `benchmarks/zoo.py`; random weights, fake data (`fake:4`, 16 training images), small "
                      "images, ranked by gate value. Prune times are wall times on a shared 2-core machine under "
                      "heavy load from other jobs (noisy). `cli`: the stages the CLI runs, run directory and all; "
                      "`object`: models over 100 M parameters, on objects.\n\n" + render(rows))
    print(render(rows))


if __name__ == "__main__":
    main()
