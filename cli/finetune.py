"""`facompress finetune`: gate the pretrained CNN's filters and fine-tune mainly the gates.

Every default is read from the library's option dataclasses (`FinetuneOptions`, `TrainConfig`), so the
command and `finetune_run` cannot disagree; `nproc` and `quiet` are the command's own.
"""

from __future__ import annotations

import os
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from fa_compress.train.config import TrainConfig
from fa_compress.train.phase_steps import FLOOR_STEPS
from fa_compress.train.stage import FinetuneOptions

from ._common import user_errors_exit_2


def _defaults(cls: type) -> dict[str, Any]:
    """Field name -> default of a dataclass (fields built by a factory left out)."""
    return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


OPT, TRAIN = _defaults(FinetuneOptions), _defaults(TrainConfig)


@user_errors_exit_2
def finetune(
    model: Annotated[str, typer.Option(rich_help_panel="Model and data", help="Architecture: a name from `facompress models`, timm:NAME, or path/to/file.py:factory / package.module:factory (needs --trust-code).")] = OPT["model"],
    weights: Annotated[str, typer.Option(rich_help_panel="Model and data", help="imagenet, none, or a path to a state dict of the architecture.")] = OPT["weights"],
    data: Annotated[str, typer.Option(rich_help_panel="Model and data", help="fashion-mnist, imagefolder:PATH, flowers102, oxford-pets, stanford-cars, fgvc-aircraft, dtd, food101, fake.")] = OPT["data"],
    data_root: Annotated[Optional[Path], typer.Option(rich_help_panel="Model and data", help="Where datasets are looked for / downloaded.")] = OPT["data_root"],
    img_size: Annotated[Optional[int], typer.Option(rich_help_panel="Model and data", help="Input resolution in pixels (default: the size the dataset declares, 64 for fashion-mnist's 28-px images; else the model's pretrained resolution, e.g. 224 for efficientnet_lite0, 240 for efficientnet_lite1).")] = OPT["img_size"],
    limit_train: Annotated[Optional[int], typer.Option(rich_help_panel="Model and data", help="Use N training images, a seeded class-balanced subset (default, or 0: all).")] = OPT["limit_train"],
    limit_test: Annotated[Optional[int], typer.Option(rich_help_panel="Model and data", help="Score on N test images (default, or 0: all, as published figures use). Reported only, never chosen on.")] = OPT["limit_test"],
    val_fraction: Annotated[float, typer.Option(rich_help_panel="Model and data", help="Share of each class's training images held out to choose the phase on, in (0, 0.5]; raised to 20 images per class where training keeps three quarters of it (the dataset's own validation split where it has one).")] = OPT["val_fraction"],
    schedule: Annotated[str, typer.Option(rich_help_panel="Training", help="Comma-separated phases: head, gates, bn, all (one epoch each, at least --min-phase-steps optimizer steps).")] = ",".join(TRAIN["schedule"]),
    min_phase_steps: Annotated[Optional[int], typer.Option(rich_help_panel="Training", help=f"Fewest optimizer steps a phase takes: a shorter phase (one epoch of a small dataset) runs on into the next epochs' orders. Default: {FLOOR_STEPS}; 0: one epoch per phase.", show_default=False)] = TRAIN["min_phase_steps"],
    gate_l1: Annotated[float, typer.Option(rich_help_panel="Training", help="Weight of the gate penalty (pushes noise channels to 0).")] = TRAIN["gate_l1"],
    gate_penalty: Annotated[str, typer.Option(rich_help_panel="Training", help="l1 (mean |gate|), cost-l1 (each |gate| weighted by its channel's MACs) or polar (polarisation).")] = TRAIN["gate_penalty"],
    batch_size: Annotated[int, typer.Option(rich_help_panel="Training", help="Images per step (all processes together).")] = TRAIN["batch_size"],
    lr_head: Annotated[float, typer.Option(rich_help_panel="Training", help="Peak learning rate of the classifier in head phases and while it is fresh.")] = TRAIN["lr_head"],
    lr_head_tuning: Annotated[float, typer.Option(rich_help_panel="Training", help="Peak learning rate of the fitted classifier in later gates/bn/all phases.")] = TRAIN["lr_head_tuning"],
    lr_gates: Annotated[float, typer.Option(rich_help_panel="Training", help="Peak learning rate of the gates.")] = TRAIN["lr_gates"],
    lr_all: Annotated[float, typer.Option(rich_help_panel="Training", help="Peak learning rate of backbone weights (phase all).")] = TRAIN["lr_all"],
    seed: Annotated[int, typer.Option(rich_help_panel="Training", help="Random seed; the same seed repeats a CPU run exactly.")] = TRAIN["seed"],
    device: Annotated[str, typer.Option(rich_help_panel="Run and device", help="auto, cpu or cuda.")] = OPT["device"],
    run: Annotated[Optional[Path], typer.Option(rich_help_panel="Run and device", help="Run directory to create (default: runs/<time>-<model>-<data>).")] = OPT["run"],
    checkpoint_every: Annotated[int, typer.Option(rich_help_panel="Run and device", help="Also checkpoint every N steps (0 = phase ends only).")] = TRAIN["checkpoint_every"],
    resume: Annotated[bool, typer.Option(rich_help_panel="Run and device", help="Continue --run (default: the latest) from its last checkpoint.")] = OPT["resume"],
    memory_format: Annotated[str, typer.Option(rich_help_panel="Run and device", help="auto, channels_last or contiguous: layout of conv weights and batches (auto: channels_last on CUDA, and on x86 AVX2/AVX-512 CPUs for models with depthwise convs).")] = TRAIN["memory_format"],
    nproc: Annotated[int, typer.Option(rich_help_panel="Run and device", help="Processes to launch with torchrun on this machine (DDP; gloo on CPU).")] = 1,
    quiet: Annotated[bool, typer.Option(rich_help_panel="Run and device", help="No progress bars.")] = not OPT["show_progress"],
    trust_code: Annotated[bool, typer.Option(rich_help_panel="Model and data", help="Allow a --model file.py:factory: imports and runs that code (recorded in the run).")] = OPT["trust_code"],
) -> None:
    """Insert a learnable gate per conv channel, fine-tune the schedule, keep the best model."""
    from fa_compress.errors import ConfigError
    from fa_compress.models import canonical_name
    from fa_compress.train import parse_schedule
    from fa_compress.train.launch import launch_torchrun, strip_option, under_torchrun
    from fa_compress.train.stage import finetune_run, with_img_size

    if nproc < 1:
        raise ConfigError(f"--nproc must be >= 1 (got {nproc})")
    train = TrainConfig(schedule=parse_schedule(schedule), batch_size=batch_size, lr_head=lr_head,
                        lr_head_tuning=lr_head_tuning, lr_gates=lr_gates, lr_all=lr_all, gate_l1=gate_l1,
                        gate_penalty=gate_penalty, seed=seed, min_phase_steps=min_phase_steps,
                        checkpoint_every=checkpoint_every, memory_format=memory_format)
    model = canonical_name(model)  # file.py:factory with an absolute path, found from any folder later
    opts = FinetuneOptions(model=model, weights=weights, data=data, data_root=data_root, img_size=img_size,
                           limit_train=limit_train or None, limit_test=limit_test or None,
                           val_fraction=val_fraction, device=device,
                           run=run, train=train, show_progress=not quiet, resume=resume,
                           trust_code=trust_code)
    opts = with_img_size(opts)  # unknown models and too small sizes fail here, once, before torchrun starts workers
    if nproc != 1 and not under_torchrun():
        import sys

        from ._common import INVOCATION

        invocation = INVOCATION or sys.argv[1:]
        args = invocation[invocation.index("finetune") + 1:]
        raise typer.Exit(launch_torchrun(["finetune", *strip_option(args, "--nproc")], nproc))

    main_rank = not under_torchrun() or int(os.environ.get("RANK", "0")) == 0
    if main_rank and opts.img_size_choice is not None:  # None when resuming: the run's recorded size
        typer.echo(f"img size {opts.img_size_choice.describe()}")
    result_run, result = finetune_run(opts)
    if not main_rank:
        return  # rank 0 reports
    typer.echo(f"run: {result_run.path}")
    typer.echo(f"steps per phase: {_steps_line(result.phases)}")
    if result.best_val is None:
        typer.echo("no validation split evaluated: the last phase was kept")
        return
    phase = result.phases[[p.index for p in result.phases].index(result.best_index)].phase
    typer.echo(f"kept phase {result.best_index + 1} ({phase}), chosen on the validation split: the last phase "
               f"unless an earlier one is better beyond noise ({result.total_s:.0f} s)")
    typer.echo(f"  validation {result.best_val.format()}")
    if result.best_test is not None:
        typer.echo(f"  test       {result.best_test.format()}  (reported only)")


def _steps_line(phases) -> str:
    """"1 head: 100 steps (floor; 2 passes over cached features are 8); 2-4 gates: 100 steps (floor; one epoch
    is 4)": consecutive phases of one kind and budget share an entry (phases checkpointed before the floor: "?")."""
    groups: list[list] = []
    for p in phases:
        text = p.steps.describe() if p.steps is not None else "?"
        if groups and (groups[-1][1], groups[-1][2]) == (p.phase, text):
            groups[-1][3] = p.index
        else:
            groups.append([p.index, p.phase, text, p.index])
    return "; ".join(f"{first + 1}{'' if last == first else f'-{last + 1}'} {phase}: {text}"
                     for first, phase, text, last in groups)
