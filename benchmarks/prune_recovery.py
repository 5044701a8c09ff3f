"""How to spend ONE recovery epoch after pruning at keep 0.6.

    .venv/bin/python benchmarks/prune_recovery.py --run RUN            # a fine-tuned (default) run
    .venv/bin/python benchmarks/prune_recovery.py --run RUN --methods abrupt,fade --keep 0.5
    .venv/bin/python benchmarks/prune_recovery.py --run RUN --seeds 0,1,2   # mean ± sd over three seeds

Every method starts from the run's fine-tuned gated model, removes the same channels (gate
ranking, global scope, round_to 8) and trains for one epoch (phase `all`) over the run's training
split. A method is `KIND[:OPTION...]`:

- `abrupt`: prune, re-estimate BatchNorm statistics, one epoch of `all` (what `facompress prune`
  does).
- `fade`: the epoch runs on the *unpruned* model while the gates of the channels chosen for removal
  ramp linearly to exactly zero (by 70% of the epoch; the rest trains with them at zero); then the
  structural prune removes channels whose gates are zero, which changes no output.
- options: `lrX` the backbone's peak learning rate (default: the fine-tuning `lr_all`, 3e-4);
  `headX` the classifier's (default `lr_head_tuning`); `kd` distils from the dense fine-tuned model
  (T=4, alpha 0.7); `norecal` skips the BatchNorm re-estimation; `frozenbn` keeps BatchNorm
  statistics fixed during the epoch (eval mode; affine terms still train); `gates` trains fresh
  gates (re-inserted at 1, folded after) and the classifier instead of everything, BatchNorm frozen,
  as a `gates` fine-tuning phase does; `bn` trains BatchNorm affine terms and the classifier.

`--seeds`: every method runs once per seed from the same fine-tuned model (the seed draws the
epoch's batch order and augmentation, and torch's global generator); the table shows mean ±
standard deviation over seeds.

Results: benchmarks/results/prune_recovery_keep<KEEP>.{json,md}. Accuracy is on the run's test split.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from dataclasses import replace

from . import _common as C
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from fa_compress.gates import GatedBatchNorm2d, fold_gates, insert_gates
from fa_compress.models import get_head
from fa_compress.pruning.pruner import PruneSettings, prune_model, scorers
from fa_compress.pruning.recover import recalibrate_batchnorm
from fa_compress.run import Run
from fa_compress.data import dataset_of_run
from fa_compress.train.config import train_config_of_run
from fa_compress.train import TrainConfig, configure_phase
from fa_compress.train.distributed import Context
from fa_compress.train.loop import _make_optim, _param_groups, evaluate
from fa_compress.data import make_loader
from fa_compress.models.saved import load_run_model

METHODS = ("abrupt", "abrupt:lr1e-3", "abrupt:lr3e-3", "abrupt:lr3e-3:kd", "abrupt:lr1e-3:frozenbn:norecal",
           "abrupt:gates:norecal", "abrupt:gates", "fade:lr3e-3")


def removed_channels(model, arch: str, settings: PruneSettings, example, scoring=()) -> dict[str, torch.Tensor]:
    """Per gated BatchNorm name, a bool mask of the channels `prune_model` would remove (`scoring`: its
    gradient and score functions).

    Found by pruning a copy whose running means hold each channel's index: what survives is kept."""
    probe = copy.deepcopy(model)
    names = {}
    for name, m in probe.named_modules():
        if isinstance(m, GatedBatchNorm2d):
            m.running_mean.copy_(torch.arange(m.num_features, dtype=m.running_mean.dtype))
            names[name] = m.num_features
    prune_model(probe, get_head(probe, arch), settings, example, *scoring)
    pruned = dict(probe.named_modules())
    masks = {}
    for name, n in names.items():
        mask = torch.ones(n, dtype=torch.bool)
        mask[pruned[name].running_mean.round().long()] = False
        masks[name] = mask
    return masks


def train_epoch(model, head, dataset, cfg: TrainConfig, *, lr_all: float, lr_head: float | None = None,
                teacher=None, fade=None, frozen_bn: bool = False, phase: str = "all", alpha: float = 0.7,
                temperature: float = 4.0) -> float:
    """One epoch of `all`; `fade` = (masks, start gates) ramps the masked gates to zero. Returns s."""
    trainable = configure_phase(model, head, phase)
    if frozen_bn:  # statistics stay as fine-tuning left them; affine terms still train
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()
    loader = make_loader(dataset, cfg.batch_size, shuffle=True, seed=cfg.seed)
    steps = len(loader)
    opt, sched = _make_optim(_param_groups(model, head, trainable, phase, replace_lr(cfg, lr_all, lr_head), True),
                            steps)
    gated = {n: m for n, m in model.named_modules() if isinstance(m, GatedBatchNorm2d)}
    t0 = time.perf_counter()
    for step, (x, y) in enumerate(loader):
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        if teacher is not None:
            with torch.no_grad():
                t_logits = teacher(x)
            kd = F.kl_div(F.log_softmax(logits / temperature, 1), F.softmax(t_logits / temperature, 1),
                          reduction="batchmean") * temperature ** 2
            loss = (1 - alpha) * loss + alpha * kd
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if fade is not None:
            masks, start = fade
            scale = max(0.0, 1.0 - (step + 1) / (0.7 * steps))
            with torch.no_grad():
                for name, mask in masks.items():
                    gated[name].gate[mask] = start[name][mask] * scale
    return time.perf_counter() - t0


def replace_lr(cfg: TrainConfig, lr_all: float, lr_head: float | None) -> TrainConfig:
    return replace(cfg, lr_all=lr_all, lr_head_tuning=lr_head or cfg.lr_head_tuning, gate_l1=0.0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    C.add_options(ap, name=False)
    ap.add_argument("--run", required=True)
    ap.add_argument("--keep", type=float, default=0.6)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--tag", default=None, help="results name suffix (default: keep<KEEP>, e.g. keep0.6)")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds; every method runs once per seed (default 0)")
    args = ap.parse_args(argv)
    args.seeds = C.seeds_option(args.seeds)
    C.set_threads(args.threads)
    loads = {"at start": C.load_average()}
    run = Run.resolve(args.run)
    dense, meta = load_run_model(run, "finetuned")
    cfg = train_config_of_run(run)
    bundle = dataset_of_run(run)
    test = DataLoader(bundle.test, batch_size=256)
    ctx = Context(device=torch.device("cpu"))
    acc_dense = evaluate(dense, test, ctx)
    print(f"dense {acc_dense:.4f}", flush=True)
    teacher = copy.deepcopy(dense).eval()
    rows = []
    for seed in args.seeds:
        for method in args.methods.split(","):
            row = {"method": method, "seed": seed,
                   **run_method(method, dense, meta, teacher, replace(cfg, seed=seed), bundle, test, ctx, args.keep)}
            rows.append(row)
            print(row, flush=True)
    loads["at end"] = C.load_average()
    data = {"run": str(run.path), "arch": meta["arch"], "keep": args.keep, "dense_acc": acc_dense,
            "train_images": len(bundle.train), "test_images": len(bundle.test), "seeds": args.seeds, "rows": rows,
            "environment": C.env_record(), "load_average": loads}
    name = C.result_name(f"prune_recovery_{args.tag or f'keep{args.keep}'}")
    C.write_results(name, data, to_markdown(data, args, loads))


def run_method(method: str, dense, meta: dict, teacher, cfg: TrainConfig, bundle, test, ctx: Context,
               keep: float) -> dict:
    """One method (`KIND[:OPTION...]`) on a copy of `dense`, seeded by `cfg.seed`: accuracies and epoch time."""
    example = torch.zeros(1, 3, meta["img_size"], meta["img_size"])  # (1, 3, H, W)
    settings = PruneSettings(keep=keep, seed=cfg.seed, round_to=8)  # as its stored results were measured
    scoring = scorers(settings, bundle.train)  # the gate ranking's Taylor scores, from seeded training images
    model = copy.deepcopy(dense)
    head = get_head(model, meta["arch"])
    torch.manual_seed(cfg.seed)
    parts = method.split(":")
    lr = next((float(p[2:]) for p in parts if p.startswith("lr")), cfg.lr_all)
    kd = teacher if "kd" in parts else None
    lr_head = next((float(p[4:]) for p in parts if p.startswith("head")), None)
    if method.startswith("abrupt"):
        prune_model(model, head, settings, example, *scoring)
        acc_cut = evaluate(model, test, ctx)
        acc_before_training = None
        if "norecal" not in parts:
            recalibrate_batchnorm(model, bundle.train, ctx)
            acc_before_training = evaluate(model, test, ctx)
        phase = next((p for p in ("gates", "bn") if p in parts), "all")
        if phase == "gates":  # fresh gates (1) on the pruned model, folded again after the epoch
            insert_gates(model)
        seconds = train_epoch(model, get_head(model, meta["arch"]), bundle.train, cfg, lr_all=lr, lr_head=lr_head,
                              teacher=kd, frozen_bn="frozenbn" in parts, phase=phase)
        fold_gates(model)
        acc_trained = evaluate(model, test, ctx)
        acc_final = acc_trained
    else:
        masks = removed_channels(model, meta["arch"], settings, example, scoring)
        start = {n: m.gate.detach().clone() for n, m in model.named_modules() if isinstance(m, GatedBatchNorm2d)}
        acc_cut = acc_before_training = None
        seconds = train_epoch(model, head, bundle.train, cfg, lr_all=lr, lr_head=lr_head, teacher=kd,
                              fade=(masks, start), frozen_bn="frozenbn" in parts)
        acc_trained = evaluate(model, test, ctx)
        prune_model(model, get_head(model, meta["arch"]), settings, example, *scoring)
        acc_final = evaluate(model, test, ctx)
    return {"acc_cut": acc_cut, "acc_bn_recalibrated": acc_before_training,
            "acc_after_epoch_unpruned_or_pruned": acc_trained, "acc_final": acc_final, "train_s": seconds,
            "params": sum(p.numel() for p in model.parameters())}


def to_markdown(data: dict, args, loads) -> str:
    notes = [f"{data['arch']} fine-tuned run `{data['run']}`, keep {data['keep']} (gate ranking, global, round_to 8); "
             f"one epoch over {data['train_images']} training images per method; dense fine-tuned "
             f"{100 * data['dense_acc']:.2f}% on {data['test_images']} test images.",
             C.seeds_note(data.get("seeds", [0]))]  # results written before --seeds ran seed 0
    text = C.md_header("One recovery epoch after pruning: abrupt vs fade", data["environment"], loads, notes)
    rows = []
    for (method,), runs in C.group_rows(data["rows"], ("method",)).items():
        acc = {k: C.OverSeeds.of(r[k] for r in runs) for k in ("acc_cut", "acc_bn_recalibrated", "acc_final")}
        vs_dense = C.OverSeeds.of(r["acc_final"] - data["dense_acc"] for r in runs)
        seconds = C.OverSeeds.of(r["train_s"] for r in runs)
        rows.append([method, C.cell(acc["acc_cut"]), C.cell(acc["acc_bn_recalibrated"]), C.cell(acc["acc_final"]),
                     ("+" if vs_dense.mean >= 0 else "") + vs_dense.cell(), f"{seconds.mean:.0f}", len(runs)])
    text += "\n" + C.md_table(["method", "right after prune %", "BN re-estimated %", "after the epoch, pruned %",
                               "vs dense (points)", "epoch s", "seeds"], rows)
    return text


if __name__ == "__main__":
    sys.exit(main())
