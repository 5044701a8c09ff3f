"""Shared plumbing for the scripts in benchmarks/: threads, sessions, seeds, environment, results files.

Every script in this folder that times A against B does it with the library's own loop, the one
`facompress bench` uses (`fa_compress.bench.compare.compare_steps`; `interleave.run_rounds` for
measures that time themselves): warm-up rounds, then rounds that visit every candidate once in a
shuffled order, so that load from other processes on a shared machine hits every candidate alike;
ratios are taken per round, median with a 95% bootstrap interval. Scripts that compare methods take
`--seeds` (`seeds_option`) and report mean ± standard deviation over seeds (`OverSeeds`). Each
script writes benchmarks/results/<name>.json and .md and prints the table.
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# No environment overrides here: the library sets its own CPU defaults (OpenMP wait policy,
# threads) in fa_compress.machine, and the benchmarks measure what a user gets.
import torch

from fa_compress.bench.environment import environment
from fa_compress.export import to_record

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
THREADS = 2  # intra-op threads of torch and onnxruntime in the timed suites (the development machines' core count)


def add_options(parser: Any, name: bool = True) -> None:
    """--quick, --threads and (with `name`) --name, shared by the latency scripts."""
    parser.add_argument("--quick", action="store_true", help="few runs, to calibrate")
    parser.add_argument("--threads", type=int, default=THREADS,
                        help=f"torch and onnxruntime intra-op threads (default {THREADS}, the machine's cores); "
                             f"other values write results/<name>.threads<N>.*")
    if name:
        parser.add_argument("--name", default=None,
                            help="write results/<NAME>.* instead (e.g. a throwaway name for a smoke run)")


def result_name(base: str, name: str | None = None) -> str:
    """`name` when given; else results/<base>.* at the default thread count, <base>.threads<N>.* otherwise."""
    if name:
        return name
    return base if THREADS == 2 else f"{base}.threads{THREADS}"


# ---- seeds: methods compared by mean and standard deviation over seeds -------------------------------

def seeds_option(text: str, option: str = "--seeds") -> list[int]:
    """"0,1,2" -> [0, 1, 2]. Anything else (empty, not whole numbers, negative, repeated) prints one line
    on stderr and exits with status 2, as the CLI does for bad input."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    problem = None
    try:
        seeds = [int(p) for p in parts]
    except ValueError:
        seeds, problem = [], f"must be whole numbers separated by commas, like 0,1,2; got {text!r}"
    if problem is None and not seeds:
        problem = f"is empty; pass one or more seeds, like 0,1,2 (got {text!r})"
    elif problem is None and any(s < 0 for s in seeds):
        problem = f"must be >= 0; got {text!r}"
    elif problem is None and len(set(seeds)) < len(seeds):
        problem = f"lists a seed twice; got {text!r}"
    if problem is not None:
        print(f"{Path(sys.argv[0]).name}: error: {option} {problem}", file=sys.stderr)
        raise SystemExit(2)
    return seeds


@dataclass(frozen=True)
class OverSeeds:
    """One figure over seeds: mean and sample standard deviation (None for a single seed)."""

    mean: float
    sd: float | None
    n_seeds: int

    @classmethod
    def of(cls, values: Iterable[float | None]) -> OverSeeds | None:
        """Over the values that were measured (None: not measured); None when none was."""
        measured = [float(v) for v in values if v is not None]
        if not measured:
            return None
        sd = statistics.stdev(measured) if len(measured) > 1 else None
        return cls(statistics.fmean(measured), sd, len(measured))

    def cell(self, scale: float = 100.0, digits: int = 2) -> str:
        """"87.25 ± 0.41" (values times `scale`); a single seed shows the value alone."""
        text = f"{scale * self.mean:.{digits}f}"
        return text if self.sd is None else f"{text} ± {scale * self.sd:.{digits}f}"


def cell(values: OverSeeds | None, scale: float = 100.0, digits: int = 2) -> str:
    """`OverSeeds.cell`, or "-" where nothing was measured."""
    return "-" if values is None else values.cell(scale, digits)


def group_rows(rows: Iterable[dict[str, Any]], keys: Sequence[str]) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    """Rows grouped by their values of `keys` (one group per setting, its seeds inside), in first-seen order."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    return groups


def seeds_note(seeds: Sequence[int]) -> str:
    """The Markdown line that says what the ± means (empty for one seed)."""
    if len(seeds) < 2:
        return f"Seed {seeds[0]}." if seeds else ""
    return f"Mean ± sample standard deviation over seeds {', '.join(map(str, seeds))} ({len(seeds)} seeds)."


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


def revision() -> dict[str, Any]:
    """The code revision (`git rev-parse --short HEAD`) and whether the work tree had changes."""
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=20,
                                  check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"revision": git("rev-parse", "--short", "HEAD"), "dirty": None if status is None else bool(status)}


def load_average() -> list[float]:
    """1-, 5- and 15-minute load averages (what `uptime` prints)."""
    return [round(v, 2) for v in os.getloadavg()]


def uptime_line() -> str:
    one, five, fifteen = load_average()
    return f"load average: {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} cores)"


def command_line() -> str:
    """The command that ran this script, as typed from the repository root (`python -m benchmarks.<name>`)."""
    script = Path(sys.argv[0]).resolve()
    if script.parent == Path(__file__).resolve().parent:
        head = ["-m", f"benchmarks.{script.stem}"]
    else:
        try:
            head = [str(script.relative_to(Path.cwd()))]
        except ValueError:
            head = [str(script)]
    return " ".join([".venv/bin/python", *map(shlex.quote, head), *map(shlex.quote, sys.argv[1:])])


def ort_session(path: Path, threads: int | None = None, profile_prefix: str | None = None) -> Any:
    """An onnxruntime CPU session, all graph optimisations, `threads` intra-op threads, spinning
    (onnxruntime's default, as `facompress bench` measures: fa_compress/bench/backends/ort.py);
    with `profile_prefix`, onnxruntime's profiler on, writing there (`session.end_profiling()`).

    Older stored results ran with spinning off: their recorded settings say allow_spinning=0.
    """
    import onnxruntime as ort

    threads = threads or THREADS
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    options.log_severity_level = 3
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ort_settings(threads: int | None = None) -> str:
    import onnxruntime as ort

    threads = threads or THREADS
    return (f"onnxruntime {ort.__version__} CPUExecutionProvider, intra_op_threads={threads}, "
            f"inter_op_threads=1, ORT_ENABLE_ALL, allow_spinning=1")


def ort_step(session: Any, batch_size: int, img_size: int) -> Callable[[], None]:
    """One onnxruntime call on a fixed random batch (the same OrtRunner.step_fn the ort-cpu backend uses)."""
    from fa_compress.bench.backends.ort import OrtRunner

    return OrtRunner(session, ort_settings()).step_fn(batch_size, img_size)


def torch_step(model: torch.nn.Module, batch_size: int, img_size: int) -> Callable[[], None]:
    """One PyTorch eager CPU float32 call (the torch-cpu backend's runner; it deep-copies the model)."""
    from fa_compress.bench.backends import get_backend

    return get_backend("torch-cpu").load(model).step_fn(batch_size, img_size)


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
    print(f"wrote {json_path} and {md_path}")
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
