"""`facompress prune`: remove the channels the gates rank as noise, fold the gates, recover."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import TrustCode, trusting_code, user_errors_exit_2


@user_errors_exit_2
@trusting_code
def prune(
    keep: Annotated[Optional[str], typer.Option(help="Fraction of prunable channels to keep, in (0, 1] (default 0.6 when no other budget is given), or `auto`: cut exactly the channels whose gate is under --gate-threshold.")] = None,
    target_macs: Annotated[Optional[float], typer.Option(help="Prune to this fraction of the dense model's MACs, in (0, 1) (bisection on the keep ratio).")] = None,
    target_params: Annotated[Optional[float], typer.Option(help="Prune to this fraction of the dense model's parameters, in (0, 1).")] = None,
    importance: Annotated[str, typer.Option(help="gate, taylor, l1, bn, random or group (torch-pruning's are applied after folding the gates).")] = "gate",
    gate_score: Annotated[str, typer.Option(help="What `gate` ranks by: taylor (|g*dL/dg| over training images), value (|g|) or scale.")] = "taylor",
    gate_per_mac: Annotated[float, typer.Option(help="Divide gate scores by (channel MACs)^this, in [0, 2]; 0 = plain scores, 0.5 (the default) measured best at tight budgets.")] = 0.5,
    gate_threshold: Annotated[float, typer.Option(help="With --keep auto: gates under this are noise.")] = 0.1,
    score_images: Annotated[int, typer.Option(help="Fixed-seed training images behind gradient scores (gate taylor, taylor).")] = 1024,
    scope: Annotated[str, typer.Option(help="global (one ranking) or layer (same ratio per layer).")] = "global",
    round_to: Annotated[int, typer.Option(help="Channel counts in multiples of N; 16 (the default) fills onnxruntime's AVX-512 channel blocks, 8 its AVX2 ones and GPU tensor cores.")] = 16,
    ignore: Annotated[Optional[list[str]], typer.Option(help="Layer name to keep whole (repeatable).")] = None,
    recover_epochs: Annotated[Optional[int], typer.Option(help="Epochs of fine-tuning after the cut (default: 0 after a fade, which was the epoch; else 1).")] = None,
    fade_epochs: Annotated[Optional[int], typer.Option(help="Epochs before the cut that fade the gates of the channels it will remove to 0 while the other gates adapt, so the cut changes nothing (--importance gate only; default 1 with it, else 0); 0 cuts at once and recovers after.")] = None,
    recover_phase: Annotated[str, typer.Option(help="What recovery trains: gates (fresh gates + head, BatchNorm frozen; the default), all or bn.")] = "gates",
    recover_lr: Annotated[float, typer.Option(help="Peak learning rate of the backbone in an `all` recovery.")] = 3e-3,
    recover_batch_size: Annotated[int, typer.Option(help="Images per step of the fade and the recovery; 8 (the default) did more in one epoch than the fine-tuning's 32, most on small datasets.")] = 8,
    gate_reduction: Annotated[str, typer.Option(help="How coupled layers' gate scores combine: auto (sum for taylor, mean else), mean, max, sum, prod.")] = "auto",
    target_latency_ms: Annotated[Optional[float], typer.Option(help="Find the largest keep whose measured latency meets this (ms); overrides --keep.")] = None,
    backend: Annotated[str, typer.Option(help="Backend the latency target is measured on (ort-cpu, torch-cpu, ...).")] = "ort-cpu",
    batch_size: Annotated[int, typer.Option(help="Batch size the latency target is measured at.")] = 1,
    run: Annotated[Optional[Path], typer.Option(help="Run directory (default: the latest run).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    memory_format: Annotated[str, typer.Option(help="auto, channels_last or contiguous: layout for scoring, recovery and evaluation.")] = "auto",
    seed: Annotated[Optional[int], typer.Option(help="Seed of scoring batches, recovery and searches (default: the run's fine-tuning seed); the same seed repeats a CPU run exactly.")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
    trust_code: TrustCode = False,
) -> None:
    """Prune the run's fine-tuned model with torch-pruning and report sizes and accuracies."""
    from fa_compress.pruning.budget import parse_budget
    from fa_compress.pruning.pruner import PruneSettings
    from fa_compress.pruning.stage import PruneOptions, prune_run
    from fa_compress.search.latency import LatencyTarget, check_latency_options

    budget = parse_budget(keep, target_macs, target_params, target_latency_ms, gate_threshold)
    settings = PruneSettings(keep=budget.keep or 0.6, importance=importance, scope=scope, round_to=round_to,
                             ignore=tuple(ignore or ()), gate_reduction=gate_reduction, gate_score=gate_score,
                             gate_per_mac=gate_per_mac, score_images=score_images)
    check_latency_options(backend, batch_size)  # also without a target: a typo in --backend is an error
    target = LatencyTarget(target_latency_ms, backend, batch_size) if target_latency_ms is not None else None
    if budget.mode != "keep":
        from fa_compress.pruning.budget import BudgetSearch

        target = BudgetSearch(budget)
    result_run, r, search = prune_run(PruneOptions(
        settings=settings, recover_epochs=recover_epochs, recover_phase=recover_phase, recover_lr=recover_lr,
        recover_batch_size=recover_batch_size, run=run, device=device, show_progress=not quiet,
        memory_format=memory_format, seed=seed, fade_epochs=fade_epochs), search=target)
    if search is not None and hasattr(search, "target_ms"):
        for s in search.steps:
            typer.echo(f"  keep {s.keep:.4f}: {s.median_ms:.2f} ms median (p90 {s.p90_ms:.2f}) "
                       f"{'meets' if s.meets_target else 'misses'} {search.target_ms} ms")
        typer.echo(f"largest keep meeting {search.target_ms} ms on {backend} at batch {batch_size}: {search.best_keep}")
    elif search is not None:
        _print_budget(search)
    typer.echo(f"run: {result_run.path}")
    typer.echo(f"keep {r.keep}: params {r.params_before / 1e6:.2f} M -> {r.params_after / 1e6:.2f} M   "
               f"MACs {r.macs_before / 1e6:.1f} M -> {r.macs_after / 1e6:.1f} M   "
               f"file {r.size_mb_before:.1f} MB -> {r.size_mb_after:.1f} MB   (prune {r.prune_s:.2f} s)")
    if r.fade:
        typer.echo(f"faded out before the cut: {r.fade['channels']} channels over {r.fade['epochs']} epoch(s) "
                   f"({r.fade['seconds']:.0f} s)")
    _print_accuracies(r)
    changed = [(k, v, r.channels_after[k]) for k, v in r.channels_before.items() if r.channels_after[k] != v]
    typer.echo(f"channels changed in {len(changed)} of {len(r.channels_before)} convs, e.g. "
               + ", ".join(f"{k} {a}->{b}" for k, a, b in changed[:4]))


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
