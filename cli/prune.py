"""`facompress prune`: remove the channels the gates rank as noise, fold the gates, recover.

Every default is read from the library's settings (`PruneSettings`, `ChainOptions`, `Budget`), the same
ones `fa_compress.prune` uses; tests/cli/test_defaults.py checks that they agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fa_compress.pruning.budget import NOISE_GATE
from fa_compress.pruning.chain import DEFAULT_DEEP_CUT_FACTOR, ChainOptions
from fa_compress.pruning.pruner import PruneSettings
from fa_compress.pruning.steps import DEEP_FROM, DEEP_FULL, FLOOR_STEPS, MAX_DEEP_FACTOR, StepBudget, depth_factor

from ._common import TrustCode, trusting_code, user_errors_exit_2

BUDGET, RANKING, TRAINING, LATENCY, RUN = ("Budget", "Ranking", "Training around the cut", "Latency target",
                                          "Run and device")


def _opt(help_text: str, panel: str) -> typer.models.OptionInfo:
    return typer.Option(help=help_text, rich_help_panel=panel, show_default=True)


@user_errors_exit_2
@trusting_code
def prune(
    keep: Annotated[Optional[str], _opt(f"Fraction of prunable channels to keep, in (0, 1], or `auto` (the channels whose gate is at least --gate-threshold); {PruneSettings.keep} when no other budget is given.", BUDGET)] = None,
    target_macs: Annotated[Optional[float], _opt("Prune to this fraction of the dense model's MACs, in (0, 1).", BUDGET)] = None,
    target_params: Annotated[Optional[float], _opt("Prune to this fraction of the dense model's parameters, in (0, 1).", BUDGET)] = None,
    gate_threshold: Annotated[float, _opt("With --keep auto: gates under this count as noise.", BUDGET)] = NOISE_GATE,
    importance: Annotated[str, _opt("Channel ranking: gate, taylor, l1, bn, random or group.", RANKING)] = PruneSettings.importance,
    gate_score: Annotated[str, _opt("What the gate ranking reads: taylor (|g*dL/dg|), value (|g|) or scale.", RANKING)] = PruneSettings.gate_score,
    gate_per_mac: Annotated[float, _opt("Divide gate scores by (channel MACs) to this power, in [0, 2].", RANKING)] = PruneSettings.gate_per_mac,
    gate_reduction: Annotated[str, _opt("How coupled layers' gate scores combine: auto, mean, max, sum or prod.", RANKING)] = PruneSettings.gate_reduction,
    score_images: Annotated[int, _opt("Training images behind gradient scores.", RANKING)] = PruneSettings.score_images,
    scope: Annotated[str, _opt("global (one ranking for all layers) or layer (the same ratio per layer).", RANKING)] = PruneSettings.scope,
    round_to: Annotated[int, _opt("Keep channel counts in multiples of this.", RANKING)] = PruneSettings.round_to,
    ignore: Annotated[Optional[list[str]], _opt("A layer to keep whole (repeatable).", RANKING)] = None,
    fade_steps: Annotated[Optional[int], _opt(f"Optimizer steps that fade the planned cut out before it is made (gate ranking only); default one epoch but at least {FLOOR_STEPS}.", TRAINING)] = ChainOptions.fade_steps,
    fade_epochs: Annotated[Optional[int], _opt("The fade's training in whole epochs instead of --fade-steps; 0: no fade (the default with a ranking other than gate).", TRAINING)] = ChainOptions.fade_epochs,
    recover_steps: Annotated[Optional[int], _opt(f"Optimizer steps of training after the cut; by default none after a fade, else one epoch but at least {FLOOR_STEPS}.", TRAINING)] = ChainOptions.recover_steps,
    recover_epochs: Annotated[Optional[int], _opt("The recovery's training in whole epochs instead of --recover-steps; 0: no recovery.", TRAINING)] = ChainOptions.recover_epochs,
    recover_phase: Annotated[str, _opt("What recovery trains: gates, all or bn.", TRAINING)] = ChainOptions.recover_phase,
    recover_lr: Annotated[float, _opt("Peak learning rate of the backbone in an `all` recovery.", TRAINING)] = ChainOptions.recover_lr,
    recover_batch_size: Annotated[int, _opt("Images per step of the fade and the recovery.", TRAINING)] = ChainOptions.recover_batch_size,
    distill_weight: Annotated[float, _opt("Weight in [0, 1] of distillation from the dense model in the fade's and the recovery's loss (0: labels only).", TRAINING)] = ChainOptions.distill_weight,
    distill_temperature: Annotated[float, _opt("Softmax temperature of the distillation, > 0.", TRAINING)] = ChainOptions.distill_temperature,
    prune_steps: Annotated[int, _opt("Cuts on the way to a --target-macs or --target-params budget, each planned on the model the last one left and faded in; the fade's training is split between them.", TRAINING)] = ChainOptions.prune_steps,
    deep_cut_factor: Annotated[float, _opt(f"The default fade and recovery steps grow for a cut below {DEEP_FROM} of the dense MACs, to this many times at {DEEP_FULL} and below (linear in between); 1: the same at every depth; in [1, {MAX_DEEP_FACTOR:g}]. Ignored where --fade-steps/--recover-steps or epochs are given.", TRAINING)] = ChainOptions.deep_cut_factor,
    target_latency_ms: Annotated[Optional[float], _opt("Prune to the largest keep whose measured latency meets this many ms.", LATENCY)] = None,
    target_speedup: Annotated[Optional[float], _opt("Prune to the largest keep at least this many times faster than the dense FP32 model measured in the same search (> 1).", LATENCY)] = None,
    int8: Annotated[bool, _opt("Time each candidate as the INT8 ONNX file `facompress export --int8` writes, calibrated on training images.", LATENCY)] = False,
    backend: Annotated[str, _opt("Backend the latency target is measured on (see `facompress bench --help`).", LATENCY)] = "ort-cpu",
    batch_size: Annotated[int, _opt("Batch size the latency target is measured at.", LATENCY)] = 1,
    run: Annotated[Optional[Path], _opt("Run directory (default: the latest run).", RUN)] = None,
    device: Annotated[str, _opt("auto, cpu or cuda.", RUN)] = "auto",
    memory_format: Annotated[str, _opt("auto, channels_last or contiguous.", RUN)] = "auto",
    seed: Annotated[Optional[int], _opt("Seed of scoring, the fade, recovery and searches (default: the run's).", RUN)] = None,
    quiet: Annotated[bool, _opt("No progress bars.", RUN)] = False,
    trust_code: TrustCode = False,
) -> None:
    """Prune the run's fine-tuned model with torch-pruning and report sizes and accuracies."""
    from fa_compress.pruning.budget import parse_budget
    from fa_compress.pruning.stage import PruneOptions, prune_run
    from fa_compress.search.latency import check_latency_options, latency_target

    budget = parse_budget(keep, target_macs, target_params, target_latency_ms, gate_threshold, target_speedup)
    settings = PruneSettings(keep=budget.keep or PruneSettings.keep, importance=importance, scope=scope,
                             round_to=round_to, ignore=tuple(ignore or ()), gate_reduction=gate_reduction,
                             gate_score=gate_score, gate_per_mac=gate_per_mac, score_images=score_images)
    check_latency_options(backend, batch_size)  # also without a target: a typo in --backend is an error
    target = latency_target(target_latency_ms, target_speedup, backend, batch_size, int8)
    result_run, r, search = prune_run(PruneOptions(
        settings=settings, budget=budget if budget.mode != "keep" else None, recover_epochs=recover_epochs,
        recover_steps=recover_steps, fade_steps=fade_steps, recover_phase=recover_phase, recover_lr=recover_lr,
        recover_batch_size=recover_batch_size, run=run,
        device=device, show_progress=not quiet, memory_format=memory_format, seed=seed, fade_epochs=fade_epochs,
        distill_weight=distill_weight, distill_temperature=distill_temperature, prune_steps=prune_steps,
        deep_cut_factor=deep_cut_factor),
        search=target)
    if search is not None and hasattr(search, "target_ms"):
        _print_latency(search)
    elif search is not None:
        _print_budget(search)
    typer.echo(f"run: {result_run.path}")
    typer.echo(f"keep {r.keep:.3f}: params {r.params_before / 1e6:.2f} M -> {r.params_after / 1e6:.2f} M   "
               f"MACs {r.macs_before / 1e6:.1f} M -> {r.macs_after / 1e6:.1f} M   "
               f"file {r.size_mb_before:.1f} MB -> {r.size_mb_after:.1f} MB   (prune {r.prune_s:.2f} s)")
    if r.fade:
        typer.echo(f"fade: {_steps(r.fade)}; faded out before the cut: {r.fade['channels']} channels "
                   f"({r.fade['seconds']:.0f} s)")
    if r.recovery:
        typer.echo(f"recovery: {_steps(r.recovery)}")
    if r.fade and r.fade.get("cuts"):
        typer.echo(f"cut in {len(r.fade['cuts'])} steps: MACs "
                   + " -> ".join(f"{c['macs_fraction']:.3f}" for c in r.fade["cuts"]) + " of dense")
    if r.teacher_s:
        typer.echo(f"distilled from the dense model: its forward passes took {r.teacher_s:.1f} s")
    _print_accuracies(r)
    if r.depth and r.depth["too_deep"]:
        shallower = (f"a larger --target-latency-ms (above {target_latency_ms})" if target_latency_ms is not None
                     else f"a smaller --target-speedup (below {target_speedup})" if target_speedup is not None
                     else f"a shallower --target-macs (above {target_macs})" if target_macs is not None
                     else f"a shallower --target-params (above {target_params})" if target_params is not None
                     else f"a larger --keep (above {r.keep:.3f})")
        _print_too_deep(r, shallower)
    changed = [(k, v, r.channels_after[k]) for k, v in r.channels_before.items() if r.channels_after[k] != v]
    typer.echo(f"channels changed in {len(changed)} of {len(r.channels_before)} convs, e.g. "
               + ", ".join(f"{k} {a}->{b}" for k, a, b in changed[:4]))


def _print_latency(found) -> None:  # noqa: ANN001 - a LatencySearch
    """The latency search's steps, the target and what the chosen keep measured, against dense FP32."""
    goal = f"{found.target_ms:.2f} ms" + (f" (dense FP32 {found.dense_fp32_ms:.2f} ms / {found.target_speedup})"
                                          if found.target_speedup is not None else "")
    for s in found.steps:
        typer.echo(f"  keep {s.keep:.4f}: {s.median_ms:.2f} ms median (p90 {s.p90_ms:.2f}), "
                   f"{found.speedup(s):.2f}x dense FP32, {'meets' if s.meets_target else 'misses'} {goal}")
    c = found.chosen
    timed = f", file sha256 {c.file.sha256[:12]}" if c.file is not None else ""
    typer.echo(f"largest keep meeting {goal} as {found.precision.upper()} on {found.backend} at batch "
               f"{found.batch_size}: {found.best_keep} ({c.median_ms:.2f} ms, {found.speedup(c):.2f}x{timed})")


def _steps(record: dict) -> str:
    """A fade's or recovery's steps and why: "400 steps (floor; one epoch is 34)"."""
    return StepBudget(record["steps"], record["rule"], record["epoch_steps"], record["floor_steps"],
                      record.get("factor", 1.0), record.get("macs_fraction")).describe()


def _print_too_deep(r, shallower: str) -> None:  # noqa: ANN001 - a PruneResult
    """One line: the saved model lost more validation accuracy than the threshold, and what to try."""
    d = r.depth
    trained = r.fade or r.recovery
    more = (f"more steps with --{'fade' if r.fade else 'recover'}-steps {2 * trained['steps']}" if trained
            else "a recovery with --recover-steps N")
    if trained and trained["rule"] in ("floor", "one epoch") \
            and trained.get("factor", 1.0) < depth_factor(r.macs_after / r.macs_before, DEFAULT_DEEP_CUT_FACTOR):
        more += f" (or --deep-cut-factor {DEFAULT_DEEP_CUT_FACTOR:g})"  # a factor lowered below the default
    typer.echo(f"the cut may be too deep: validation {100 * d['final_val']:.1f}% is {d['val_drop_points']:.1f} points "
               f"below the fine-tuned model's {100 * d['dense_val']:.1f}% (more than {d['threshold_points']:g}"
               + (f", McNemar p={d['p_value']:.2g}" if d.get("p_value") is not None else "") + "); "
               f"try {more}, or {shallower}")


def _print_budget(found) -> None:  # noqa: ANN001 - a BudgetResult
    """The budget search's steps and what it reached (fractions of the dense model)."""
    for s in found.steps:
        reached = (f"MACs {s.macs_fraction:.3f}, params {s.params_fraction:.3f} of dense"
                   if s.macs_fraction is not None else "empties a layer")
        typer.echo(f"  keep {s.keep:.4f}: {reached}")
    what = {"macs": "MACs", "params": "params", "auto": "gates >= threshold"}[found.mode]
    goal = f" (target {found.target}, tolerance {found.tolerance})" if found.target is not None else ""
    typer.echo(f"budget by {what}{goal}: keep {found.keep:.4f} -> MACs {found.macs_fraction:.3f}, "
               f"params {found.params_fraction:.3f} of dense")


def _print_accuracies(r) -> None:  # noqa: ANN001 - a PruneResult; imported lazily to keep --help fast
    """Validation (what chose) and test (reported only) side by side, then what was kept and how the
    saved model compares with the dense one on the same test images."""
    rows = [("fine-tuned", r.val_before, r.test_before), ("pruned", r.val_pruned, r.test_pruned),
            ("recovered", r.val_recovered, r.test_recovered)]
    typer.echo(f"{'accuracy':<11} {'validation (chooses)':<36} test (reported only)")
    for name, val, test in rows:
        typer.echo(f"{name:<11} {val.format() if val else 'not run':<36} {test.format() if test else 'not run'}")
    if r.val_recovered is not None and r.kept == "pruned":
        typer.echo("recovery scored lower on the validation split than the model right after pruning, so the "
                   "model is saved as pruned (try --recover-phase gates, a lower --recover-lr, or more "
                   "--recover-epochs)")
    elif r.val_recovered is None:
        typer.echo("saved: pruned (the fade before the cut was the training; no recovery ran)" if r.fade
                   else "saved: pruned (no recovery ran)")
    else:
        typer.echo(f"saved: {r.kept} (chosen on the validation split)")
    if r.vs_dense is not None:
        d = r.vs_dense
        verdict = "a real difference" if d.significant else "within noise"
        typer.echo(f"saved vs fine-tuned on the same {d.n} test images: {100 * d.diff:+.2f} points "
                   f"(McNemar p={d.p_value:.3g}, {verdict}; seed {r.seed})")
