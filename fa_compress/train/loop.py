"""The fine-tuning loop: phases of one epoch each but at least a floor of optimizer steps (`phase_steps.py`),
AdamW + one-cycle LR, evaluation after each phase."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..gates import ChannelGate, gate_l1, has_gates
from ..gates.penalties import make_gate_penalty
from ..models.keep_whole import keep_whole
from .config import FinetuneResult, PhaseResult, TrainConfig
from .distributed import Context, all_reduce_sum, rank_batch_size
from .evaluate import evaluate_detailed
from .features import head_feature_steps, train_head_on_features
from .phase_choice import first_kept, next_kept, selection_record
from .memory_format import prepare, to_format
from .phase_steps import PhaseSteps, phase_steps
from .phases import configure_phase
from .progress import PhaseBar
from ..data import make_loader
from .sampler import ResumableSampler, StepSampler

CheckpointFn = Callable[[dict[str, Any]], None]
# (logits (B, classes), images (B, 3, H, W), labels (B,)) -> the scalar loss a step minimises in place of
# the cross-entropy (e.g. `train.distill.Distillation`); None: the cross-entropy
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _autocast(ctx: Context, cfg: TrainConfig):
    if cfg.amp and ctx.device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def _to_device(x: torch.Tensor, ctx: Context, cfg: TrainConfig) -> torch.Tensor:
    """An image batch on the device, in `cfg.memory_format` (resolved by `prepare` at phase start)."""
    return to_format(x.to(ctx.device, non_blocking=True), cfg.memory_format)


@torch.inference_mode()
def evaluate(model: nn.Module, loader: DataLoader, ctx: Context, cfg: TrainConfig | None = None) -> float:
    """Top-1 accuracy of `model` over `loader` (summed over ranks when distributed)."""
    cfg = cfg or TrainConfig()
    cfg = replace(cfg, memory_format=prepare(model, cfg.memory_format, ctx.device).chosen)
    was_training = model.training
    model.eval()
    correct = total = 0
    for images, labels in loader:
        with _autocast(ctx, cfg):
            logits = model(_to_device(images, ctx, cfg))  # (B, classes)
        correct += int((logits.argmax(1).cpu() == labels).sum())
        total += labels.numel()
    model.train(was_training)
    correct, total = all_reduce_sum(ctx, correct, total)
    return correct / max(total, 1)


def _param_groups(model: nn.Module, head: nn.Module, trainable: list[nn.Parameter],
                  phase: str, cfg: TrainConfig, head_fitted: bool) -> list[dict]:
    """AdamW groups; the classifier gets `lr_head` while it is fresh, `lr_head_tuning` once fitted."""
    ids = {id(p) for p in trainable}
    gates = [m.gate for m in model.modules() if isinstance(m, ChannelGate) and id(m.gate) in ids]
    head_ids = {id(p) for p in head.parameters()}
    taken = {id(p) for p in gates} | head_ids
    rest = [p for p in trainable if id(p) not in taken]
    head_lr = cfg.lr_head_tuning if head_fitted and phase != "head" else cfg.lr_head
    groups = [{"params": [p for p in head.parameters() if id(p) in ids], "lr": head_lr,
               "weight_decay": cfg.weight_decay}]
    if gates:
        groups.append({"params": gates, "lr": cfg.lr_gates, "weight_decay": 0.0})
    if rest:
        lr = cfg.lr_bn if phase == "bn" else cfg.lr_all
        groups.append({"params": rest, "lr": lr, "weight_decay": 0.0 if phase == "bn" else cfg.weight_decay})
    return groups


def _make_optim(groups: list[dict], steps: int) -> tuple[torch.optim.Optimizer, Any]:
    opt = torch.optim.AdamW(groups)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[g["lr"] for g in groups], total_steps=max(steps, 1), pct_start=0.15,
        anneal_strategy="cos", cycle_momentum=False)
    return opt, sched


def _mean_gate(model: nn.Module) -> float | None:
    return float(gate_l1(model).detach()) if has_gates(model) else None


def run_image_phase(model: nn.Module, head: nn.Module, phase: str, index: int, train_ds: Dataset,
                    cfg: TrainConfig, ctx: Context, bar: PhaseBar, *, resume: dict | None = None,
                    on_checkpoint: CheckpointFn | None = None,
                    after_backward: Callable[[nn.Module], None] | None = None,
                    label: str | None = None, loss_fn: LossFn | None = None,
                    steps: int | None = None) -> tuple[float, float, float]:
    """One epoch of `phase` over images, or exactly `steps` optimizer steps (running on into the next
    epochs' orders, one learning-rate cycle over them all); returns (loss, accuracy, images/s) of this
    rank's share.

    `after_backward(model)` runs between backward and the optimizer step (a sparse-training
    regulariser such as torch-pruning's `pruner.regularize`, or the fade of a planned cut).
    `label` names the epoch on the progress bar (default: the phase). `loss_fn` replaces the
    cross-entropy (the gate penalty is still added)."""
    trainable = configure_phase(model, head, phase)
    # before DDP and the optimizer take the parameters; batches then follow the model's format
    cfg = replace(cfg, memory_format=prepare(model, cfg.memory_format, ctx.device).chosen)
    net = nn.parallel.DistributedDataParallel(model) if ctx.distributed else model
    start = resume["step"] if resume else 0
    per_rank = rank_batch_size(cfg.batch_size, ctx)
    if steps is None:
        sampler = ResumableSampler(len(train_ds), batch_size=per_rank, seed=cfg.seed, epoch=index,
                                   rank=ctx.rank, world=ctx.world, start_batch=start)
        steps = sampler.batches_per_epoch()
    else:
        sampler = StepSampler(len(train_ds), batch_size=per_rank, steps=steps, seed=cfg.seed, epoch=index,
                              rank=ctx.rank, world=ctx.world, start_batch=start)
    loader = make_loader(train_ds, per_rank, shuffle=False, sampler=sampler, device=ctx.device.type,
                         seed=cfg.seed)
    # Any earlier phase fitted the classifier. A fresh one at lr_head_tuning stayed unfitted: one
    # epoch of `all` from ImageNet Lite0 (2000 images) scored 57% with 3e-4 on the head, 68% with 3e-3.
    groups = _param_groups(model, head, trainable, phase, cfg, head_fitted=index > 0)
    opt, sched = _make_optim(groups, steps)
    sums = {"loss": 0.0, "correct": 0.0, "seen": 0.0}
    if resume:
        opt.load_state_dict(resume["optimizer"])
        sched.load_state_dict(resume["scheduler"])
        sums = dict(resume["sums"])
    penalise = cfg.gate_l1 > 0 and phase in ("gates", "all") and has_gates(model)
    penalty = None  # built on the first batch: the cost-weighted penalty needs the image size
    bar.start(f"{index + 1}:{label or phase}", total=steps, completed=start)
    t0, seen0 = time.perf_counter(), sums["seen"]
    for step, (images, labels) in enumerate(loader, start=start):
        images, labels = _to_device(images, ctx, cfg), labels.to(ctx.device)
        with _autocast(ctx, cfg):
            logits = net(images)  # (B, classes)
            loss = loss_fn(logits, images, labels) if loss_fn is not None else F.cross_entropy(logits.float(), labels)
            if penalise and penalty is None:
                penalty = make_gate_penalty(cfg.gate_penalty, model, images.shape[-1], keep_whole(model))
            total = loss + cfg.gate_l1 * penalty(model) if penalise else loss
        opt.zero_grad(set_to_none=True)
        total.backward()
        if after_backward is not None:
            after_backward(model)
        opt.step()
        sched.step()
        sums["loss"] += float(loss.detach()) * labels.numel()
        sums["correct"] += float((logits.argmax(1) == labels).sum())
        sums["seen"] += labels.numel()
        rate = (sums["seen"] - seen0) / max(time.perf_counter() - t0, 1e-9)
        bar.update(loss=sums["loss"] / sums["seen"], acc=sums["correct"] / sums["seen"], images_per_s=rate)
        done = step + 1
        if on_checkpoint and cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < steps:
            on_checkpoint({"phase_index": index, "step": done, "optimizer": opt.state_dict(),
                           "scheduler": sched.state_dict(), "sums": sums})
    rate = (sums["seen"] - seen0) / max(time.perf_counter() - t0, 1e-9)
    loss_sum, correct, seen = all_reduce_sum(ctx, sums["loss"], sums["correct"], sums["seen"])
    return loss_sum / max(seen, 1), correct / max(seen, 1), rate * ctx.world


def finetune(model: nn.Module, head: nn.Module, train_ds: Dataset, val_loader: DataLoader | None,
             cfg: TrainConfig, ctx: Context, bar: PhaseBar, *, test_loader: DataLoader | None = None,
             on_best: Callable[[nn.Module, PhaseResult], None] | None = None,
             on_checkpoint: CheckpointFn | None = None, resume: dict | None = None,
             after_backward: Callable[[nn.Module], None] | None = None,
             loss_fn: LossFn | None = None) -> FinetuneResult:
    """Run `cfg.schedule`; after each phase score the validation split, keep the phase chosen there
    (`on_best`; the rule: `phase_choice.next_kept`), checkpoint. `test_loader`, when given, is scored
    after each phase for the report only: nothing here reads it to choose (without `val_loader`, the
    last phase is kept).

    `resume` is a state given earlier to `on_checkpoint`; the model must already hold its weights.
    `loss_fn` replaces the cross-entropy in the image phases (`run_image_phase`).
    """
    results = [PhaseResult.from_dict(r) for r in resume["results"]] if resume else []
    best = resume["best"] if resume else first_kept()
    first = resume["phase_index"] if resume else 0
    t_start = time.perf_counter() - (resume["elapsed_s"] if resume else 0.0)
    cache: dict = {}  # cached backbone features, valid until a phase changes the backbone
    for index in range(first, len(cfg.schedule)):
        phase = cfg.schedule[index]
        mid = resume if resume and resume.get("step") and index == first else None
        t0 = time.perf_counter() - (mid["phase_elapsed_s"] if mid else 0.0)
        on_features = phase == "head" and isinstance(head, nn.Linear)  # a conv head's output is not yet the logits
        budget = phase_budget(on_features, len(train_ds), cfg, ctx)
        floored = budget.steps if budget.rule == "floor" else None  # else the unchanged one-epoch path
        if on_features:
            loss, acc, rate = train_head_on_features(model, head, train_ds, cfg, ctx, bar, index, cache,
                                                     steps=floored)
        else:
            cache.clear()
            loss, acc, rate = run_image_phase(
                model, head, phase, index, train_ds, cfg, ctx, bar, resume=mid,
                on_checkpoint=_with_context(on_checkpoint, results, best, t_start, t0),
                after_backward=after_backward, loss_fn=loss_fn, steps=floored)
        seconds = time.perf_counter() - t0
        scored = evaluate_detailed(model, val_loader, ctx, cfg) if val_loader is not None else None
        val = scored.accuracy if scored is not None else None
        test = evaluate_detailed(model, test_loader, ctx, cfg).accuracy if test_loader is not None else None
        result = PhaseResult(index, phase, loss, acc, test.value if test else None, seconds, rate,
                             _mean_gate(model), val, test, budget)
        results.append(result)
        bar.log(f"phase {index + 1}/{len(cfg.schedule)} {phase}: {budget.describe()}, "
                f"train loss {loss:.3f} acc {acc:.1%}"
                + (f", validation {val.value:.2%}" if val is not None else "")
                + (f", test {test.value:.2%}" if test is not None else "") + f" ({seconds:.0f}s)")
        best = next_kept(best, index, scored)  # the newest phase unless the kept one is better beyond noise
        if best["index"] == index and on_best:
            on_best(model, result)
        if on_checkpoint:
            on_checkpoint({"phase_index": index + 1, "step": 0, "results": [r.to_dict() for r in results],
                           "best": best, "elapsed_s": time.perf_counter() - t_start})
    chosen = next((r for r in results if r.index == best["index"]), None)
    return FinetuneResult(tuple(results), best["index"], chosen.test_acc if chosen else None,
                          time.perf_counter() - t_start, chosen.val if chosen else None,
                          chosen.test if chosen else None, selection_record(best))


def phase_budget(on_features: bool, images: int, cfg: TrainConfig, ctx: Context) -> PhaseSteps:
    """The optimizer steps of one phase: its own length (one epoch of `images`, or the passes over cached
    features of a `head` phase), raised to the floor (`cfg.min_phase_steps`; None: `FLOOR_STEPS`) where shorter."""
    if on_features:
        own = "1 pass" if cfg.head_feature_epochs == 1 else f"{cfg.head_feature_epochs} passes"
        return phase_steps(own_steps=head_feature_steps(images, cfg), own=f"{own} over cached features",
                           floor=cfg.min_phase_steps)
    epoch = ResumableSampler(images, batch_size=rank_batch_size(cfg.batch_size, ctx), seed=cfg.seed, epoch=0,
                             rank=ctx.rank, world=ctx.world).batches_per_epoch()
    return phase_steps(own_steps=epoch, own="one epoch", floor=cfg.min_phase_steps)


def _with_context(fn: CheckpointFn | None, results: list[PhaseResult], best: dict, t_start: float,
                  t_phase: float) -> CheckpointFn | None:
    """Add what `finetune` knows (results so far, best, elapsed time) to a mid-phase checkpoint."""
    if fn is None:
        return None

    def wrapped(state: dict[str, Any]) -> None:
        now = time.perf_counter()
        fn({**state, "results": [r.to_dict() for r in results], "best": best,
            "elapsed_s": now - t_start, "phase_elapsed_s": now - t_phase})

    return wrapped
