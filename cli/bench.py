"""`facompress bench`: latency, accuracy, size and MACs of every artifact in a run, on every backend here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import TrustCode, trusting_code, user_errors_exit_2


def parse_int_list(text: str, what: str) -> tuple[int, ...]:
    """"1,8,64" -> (1, 8, 64); a `ConfigError` naming `what` for anything else."""
    from fa_compress.errors import ConfigError

    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated whole numbers like 1,8; got {text!r}") from None
    if not values:
        raise ConfigError(f"{what} is empty; pass e.g. 1,8")
    return values


@user_errors_exit_2
@trusting_code
def bench(
    backend: Annotated[Optional[list[str]], typer.Option(rich_help_panel="What to time",
        help="Backend to use (repeatable or comma-separated; default: all, unavailable ones listed): "
             "torch-cpu, torch-cuda-fp32, torch-cuda-fp16, ort-cpu, ort-cuda, tensorrt, openvino-cpu.")] = None,
    batch_sizes: Annotated[Optional[str], typer.Option(rich_help_panel="What to time",
        help="Comma-separated batch sizes (default: 1,8; 1,8,64 on a GPU).")] = None,
    warmup: Annotated[int, typer.Option(rich_help_panel="Timing", help="Untimed rounds before timing (>= 1).")] = 5,
    rounds: Annotated[int, typer.Option(rich_help_panel="Timing",
        help="Timed rounds of each artifact (>= 1), spread over its --sessions; each round runs every artifact "
             "of a backend once, in a shuffled order.")] = 90,
    runs: Annotated[Optional[int], typer.Option(rich_help_panel="Timing", hidden=True, help="Former name of --rounds.")] = None,
    sessions: Annotated[int, typer.Option(rich_help_panel="Timing",
        help="Independent loads of each artifact the rounds are spread over (>= 1); the ratio's interval "
             "resamples them, since one load's speed differs from another's by several percent.")] = 5,
    order: Annotated[str, typer.Option(rich_help_panel="Timing",
        help="interleaved (artifacts alternate, ratios per round) or sequential (one artifact after the other).")
    ] = "interleaved",
    seed: Annotated[int, typer.Option(rich_help_panel="Timing", help="Seed of the round order shuffles and the bootstrap intervals.")] = 0,
    eval_limit: Annotated[Optional[int], typer.Option(rich_help_panel="What to time",
        help="Test images for accuracy (default: the run's own test split).")] = None,
    img_size: Annotated[Optional[int], typer.Option(rich_help_panel="What to time", help="Input size in px (default: the model's).")] = None,
    run: Annotated[Optional[Path], typer.Option(rich_help_panel="Run and device", help="Run directory (default: the latest run).")] = None,
    threads: Annotated[Optional[int], typer.Option(rich_help_panel="Run and device",
        help="CPU threads for torch and onnxruntime (default: torch's, one per core).")] = None,
    memory_format: Annotated[str, typer.Option(rich_help_panel="Run and device",
        help="torch-cpu layout of models and batches: auto, channels_last or contiguous (auto: channels_last on "
             "x86 AVX2/AVX-512 CPUs for models with depthwise convs); recorded in the report.")] = "auto",
    quiet: Annotated[bool, typer.Option(rich_help_panel="Run and device", help="No progress bar.")] = False,
    trust_code: TrustCode = False,
) -> None:
    """Benchmark every artifact of the run on every available backend; write report.md/json/html."""
    from fa_compress.report.bench_stage import bench_run
    from fa_compress.run import Run

    from ._headline import print_headline

    names = [n.strip() for item in (backend or []) for n in item.split(",") if n.strip()] or None
    sizes = parse_int_list(batch_sizes, "--batch-sizes") if batch_sizes else None
    the_run = Run.resolve(run)
    report = bench_run(the_run, backends=names, batch_sizes=sizes, warmup=warmup,
                       rounds=rounds if runs is None else runs, sessions=sessions, order=order, seed=seed,
                       eval_limit=eval_limit, img_size=img_size, threads=threads, progress=not quiet,
                       memory_format=memory_format)
    print_headline(report, the_run.path)
