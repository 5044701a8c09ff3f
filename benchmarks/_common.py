"""Shared plumbing for the scripts in benchmarks/: threads, interleaved timing, environment, results files.

Every script in this folder measures A against B in the same process, *interleaved*: one call of
each candidate per round, after warm-up rounds, so that load from other processes on a shared
machine hits every candidate alike, and the ratio of medians is fair even when absolute times are
not. Each script writes benchmarks/results/<name>.json and .md and prints the table.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# OpenMP's default is to spin-wait between parallel regions. With more runnable threads than cores
# (this machine's 2 cores are shared with other jobs, load 4-7), PyTorch eager at 2 threads then ran
# resnet50 5x slower than at 1 thread (1374 ms vs 252 ms median, batch 1), an artefact of the shared
# machine, not of the model. PASSIVE makes idle OpenMP threads sleep, the counterpart of onnxruntime's
# allow_spinning=0 below. It must be set before libgomp starts, i.e. before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from fa_compress.bench.environment import environment
from fa_compress.bench.stats import LatencyStats, summarize
from fa_compress.export import to_record

RESULTS = Path(__file__).resolve().parent / "results"
THREADS = 2  # this machine has 2 cores; torch and onnxruntime intra-op threads are both set to it


def add_options(parser: Any) -> None:
    """--quick and --threads, shared by the latency scripts."""
    parser.add_argument("--quick", action="store_true", help="few runs, to calibrate")
    parser.add_argument("--threads", type=int, default=THREADS,
                        help=f"torch and onnxruntime intra-op threads (default {THREADS}, the machine's cores); "
                             f"other values write results/<name>.threads<N>.*")


def result_name(base: str) -> str:
    """results/<base>.* at the default thread count, results/<base>.threads<N>.* otherwise."""
    return base if THREADS == 2 else f"{base}.threads{THREADS}"


def set_threads(threads: int | None = None) -> None:
    """Fix torch's intra-op threads (and one inter-op thread), and the onnxruntime sessions' to come."""
    global THREADS
    if threads is not None:
        THREADS = threads
    threads = THREADS
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass


def load_average() -> list[float]:
    """1-, 5- and 15-minute load averages (what `uptime` prints)."""
    return [round(v, 2) for v in os.getloadavg()]


def uptime_line() -> str:
    one, five, fifteen = load_average()
    return f"load average: {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} cores)"


def command_line() -> str:
    """The command that ran this script, as typed from the repository root."""
    script = Path(sys.argv[0]).resolve()
    try:
        script_arg = str(script.relative_to(Path.cwd()))
    except ValueError:
        script_arg = str(script)
    return " ".join([".venv/bin/python", shlex.quote(script_arg), *map(shlex.quote, sys.argv[1:])])


def ort_session(path: Path, threads: int | None = None) -> Any:
    """An onnxruntime CPU session, all graph optimisations, `threads` intra-op threads, no spinning.

    Spinning is off so that a session's worker threads stop burning the cores after its call
    returns: with several sessions timed in turn, a spinning one would slow down the next.
    """
    import onnxruntime as ort

    threads = threads or THREADS
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ort_settings(threads: int | None = None) -> str:
    import onnxruntime as ort

    threads = threads or THREADS
    return (f"onnxruntime {ort.__version__} CPUExecutionProvider, intra_op_threads={threads}, "
            f"inter_op_threads=1, ORT_ENABLE_ALL, allow_spinning=0")


def ort_step(session: Any, batch_size: int, img_size: int) -> Callable[[], None]:
    """One onnxruntime call on a fixed random batch (the same OrtRunner.step_fn the ort-cpu backend uses)."""
    from fa_compress.bench.backends.ort import OrtRunner

    return OrtRunner(session, ort_settings()).step_fn(batch_size, img_size)


def torch_step(model: torch.nn.Module, batch_size: int, img_size: int) -> Callable[[], None]:
    """One PyTorch eager CPU float32 call (the torch-cpu backend's runner; it deep-copies the model)."""
    from fa_compress.bench.backends import get_backend

    return get_backend("torch-cpu").load(model).step_fn(batch_size, img_size)


def time_interleaved(steps: dict[str, Callable[[], None]], warmup: int, runs: int, progress: str = "",
                     samples_out: dict[str, list[float]] | None = None) -> dict[str, LatencyStats]:
    """Latency of each step: `warmup` untimed rounds, then `runs` timed rounds, one call of each per round.

    The raw timed samples (s) are appended to `samples_out[name]` when it is given.
    """
    samples: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    with torch.inference_mode():
        for r in range(warmup + runs):
            # Rotate the order each round so no candidate always runs right after the same one.
            order = names[r % len(names):] + names[: r % len(names)]
            for name in order:
                t0 = time.perf_counter()
                steps[name]()
                if r >= warmup:
                    samples[name].append(time.perf_counter() - t0)
            if progress:
                print(f"\r  {progress}: round {r + 1}/{warmup + runs}", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    if samples_out is not None:
        for name, values in samples.items():
            samples_out.setdefault(name, []).extend(values)
    return {name: summarize(s) for name, s in samples.items()}


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    """Median wall time (s) of `repeats` calls of `fn`, every time, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    ordered = sorted(times)
    n = len(ordered)
    median = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    return median, times, result


EAGER_NOTE = (
    "PyTorch eager (OpenMP) splits each op statically across its threads and waits for all of them: when other "
    "jobs hold the cores (load above the core count), one descheduled thread stalls every op, so eager at 2 threads "
    "swings from minute to minute and can be several times slower than at 1 thread; onnxruntime's pool lets the "
    "calling thread take the work and degrades far less. On this shared machine eager figures at 2 threads are "
    "pessimistic; `--threads 1` gives the contention-robust comparison.")


def env_record(**extra: Any) -> dict[str, Any]:
    import platform

    record = to_record(environment())
    record.update({"torch_interop_threads": torch.get_num_interop_threads(), "machine": platform.node() or None,
                   "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"), **extra})
    return record


def write_results(name: str, data: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """Write results/<name>.json and results/<name>.md; print the Markdown."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path, md_path = RESULTS / f"{name}.json", RESULTS / f"{name}.md"
    json_path.write_text(json.dumps(to_record(data), indent=2) + "\n")
    md_path.write_text(markdown.rstrip() + "\n")
    print(markdown)
    print(f"wrote {json_path.relative_to(RESULTS.parent.parent)} and {md_path.relative_to(RESULTS.parent.parent)}")
    return json_path, md_path


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return v if isinstance(v, str) else f"{v}"

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def md_header(title: str, env: dict[str, Any], loads: dict[str, list[float]], notes: Sequence[str] = (),
              command: str | None = None) -> str:
    """Title, exact command (this process's unless given), environment and load averages, then notes."""
    lines = [f"# {title}", "", "```", command or command_line(), "```", "",
             f"- Environment: {env['cpu_name']} ({env['cpu_count']} cores), Python {env['python']}, "
             f"torch {env['torch']} (threads {env['torch_threads']}, inter-op {env['torch_interop_threads']}, "
             f"OMP_WAIT_POLICY={env['OMP_WAIT_POLICY']}), "
             f"onnxruntime {env['onnxruntime']}, torch-pruning {env['torch_pruning']}."]
    lines += [f"- Load average (1, 5, 15 min) {when}: {', '.join(f'{v:.2f}' for v in vals)}"
              for when, vals in loads.items()]
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def ms(v: float) -> str:
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}"
