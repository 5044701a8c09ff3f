"""`facompress prune`: remove the channels the gates rank as noise, fold the gates, recover."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import user_errors_exit_2


@user_errors_exit_2
def prune(
    keep: Annotated[float, typer.Option(help="Fraction of prunable channels to keep, in (0, 1].")] = 0.6,
    importance: Annotated[str, typer.Option(help="gate, l1, bn, taylor or random.")] = "gate",
    scope: Annotated[str, typer.Option(help="global (one ranking) or layer (same ratio per layer).")] = "global",
    round_to: Annotated[int, typer.Option(help="Channel counts in multiples of N.")] = 8,
    ignore: Annotated[Optional[list[str]], typer.Option(help="Layer name to keep whole (repeatable).")] = None,
    recover_epochs: Annotated[int, typer.Option(help="Epochs of fine-tuning after pruning.")] = 1,
    recover_phase: Annotated[str, typer.Option(help="What recovery trains: all, gates (fresh gates + head) or bn.")] = "all",
    recover_lr: Annotated[float, typer.Option(help="Peak learning rate of the backbone in an `all` recovery.")] = 3e-3,
    gate_reduction: Annotated[str, typer.Option(help="How coupled layers' gates combine: mean, max, sum, prod.")] = "mean",
    target_latency_ms: Annotated[Optional[float], typer.Option(help="Find the largest keep whose measured latency meets this (ms); overrides --keep.")] = None,
    backend: Annotated[str, typer.Option(help="Backend the latency target is measured on (ort-cpu, torch-cpu, ...).")] = "ort-cpu",
    batch_size: Annotated[int, typer.Option(help="Batch size the latency target is measured at.")] = 1,
    run: Annotated[Optional[Path], typer.Option(help="Run directory (default: the latest run).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
) -> None:
    """Prune the run's fine-tuned model with torch-pruning and report sizes and accuracies."""
    from fa_compress.prune.pruner import PruneSettings
    from fa_compress.prune.stage import PruneOptions, prune_run

    settings = PruneSettings(keep=keep, importance=importance, scope=scope, round_to=round_to,
                             ignore=tuple(ignore or ()), gate_reduction=gate_reduction)
    result_run, r, search = prune_run(PruneOptions(
        settings=settings, recover_epochs=recover_epochs, recover_phase=recover_phase, recover_lr=recover_lr,
        run=run, device=device, show_progress=not quiet, target_latency_ms=target_latency_ms, backend=backend,
        batch_size=batch_size))
    if search is not None:
        for s in search.steps:
            typer.echo(f"  keep {s.keep:.4f}: {s.median_ms:.2f} ms median (p90 {s.p90_ms:.2f}) "
                       f"{'meets' if s.meets_target else 'misses'} {search.target_ms} ms")
        typer.echo(f"largest keep meeting {search.target_ms} ms on {backend} at batch {batch_size}: {search.best_keep}")
    rec = f"{r.acc_recovered:.2%}" if r.acc_recovered is not None else "not run"
    typer.echo(f"run: {result_run.path}")
    typer.echo(f"keep {r.keep}: params {r.params_before / 1e6:.2f} M -> {r.params_after / 1e6:.2f} M   "
               f"MACs {r.macs_before / 1e6:.1f} M -> {r.macs_after / 1e6:.1f} M   "
               f"file {r.size_mb_before:.1f} MB -> {r.size_mb_after:.1f} MB   (prune {r.prune_s:.2f} s)")
    typer.echo(f"accuracy: fine-tuned {r.acc_before:.2%}  pruned {r.acc_pruned:.2%}  recovered {rec}")
    if r.acc_recovered is not None and r.kept == "pruned":
        typer.echo("recovery scored lower than the model right after pruning, so the model is saved as pruned "
                   "(try --recover-phase gates, a lower --recover-lr, or more --recover-epochs)")
    changed = [(k, v, r.channels_after[k]) for k, v in r.channels_before.items() if r.channels_after[k] != v]
    typer.echo(f"channels changed in {len(changed)} of {len(r.channels_before)} convs, e.g. "
               + ", ".join(f"{k} {a}->{b}" for k, a, b in changed[:4]))
