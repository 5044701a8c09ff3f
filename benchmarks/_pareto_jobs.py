"""benchmarks/prune_pareto.py's (task, seed) units as single-thread processes side by side (`--jobs N`).

A unit fine-tunes its task's model once per start and prunes it for every method and target, so a unit
is the smallest piece that shares nothing with another. Each runs as
`python -m benchmarks.prune_pareto --tasks TASK --seeds SEED --threads 1 --rows-to FILE ...`, writing its
rows to its own file under benchmarks/work/pareto-jobs/<name>/ (git-ignored) and its output to a log
beside it; when one ends, its rows join the parent's and the parent's JSON is rewritten. A unit that
fails is named on screen with the end of its log and returned; the others go on.
With `--resume`, a unit's file starts with the rows it already has, so it only runs the missing ones.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JOBS = ROOT / "benchmarks" / "work" / "pareto-jobs"
POLL_S = 2.0


@dataclass(frozen=True)
class Unit:
    """A task and the seeds it runs."""

    task: str
    seeds: list[int]


@dataclass(frozen=True)
class _Job:
    task: str
    seed: int
    keep_models: bool  # the task's first seed saves its models (as a serial run does)

    @property
    def stem(self) -> str:
        return f"{self.task}-seed{self.seed}"


def child_argv(job: _Job, args, rows_to: Path) -> list[str]:
    """The command line of one unit's process."""
    argv = [sys.executable, "-m", "benchmarks.prune_pareto", "--tasks", job.task, "--seeds", str(job.seed),
            "--methods", args.methods, "--targets", args.targets, *(["--steps", str(args.steps)] if args.steps else []),
            "--recoveries", args.recoveries, "--threads", "1", "--rows-to", str(rows_to)]
    if args.test_per_class is not None:
        argv += ["--test-per-class", str(args.test_per_class)]
    if args.keep_models and job.keep_models:
        argv.append("--keep-models")
    return argv


def _mine(row: dict, job: _Job) -> bool:
    return row["task"] == job.task and row["seed"] == job.seed


def run_units(units: list[Unit], args, rows: list[dict], save: Callable[[], None]) -> list[str]:
    """Run every (task, seed) of `units` in up to `args.jobs` processes; their rows are added to `rows`.
    Returns the units that failed (`task-seedN`)."""
    folder = JOBS / args.name.split(",")[0]
    folder.mkdir(parents=True, exist_ok=True)
    pending = [_Job(u.task, s, s == u.seeds[0]) for u in units for s in u.seeds]
    running: dict[_Job, tuple[subprocess.Popen, object]] = {}
    failed: list[str] = []
    while pending or running:
        while pending and len(running) < args.jobs:
            job = pending.pop(0)
            rows_to = folder / f"{job.stem}.json"
            rows_to.write_text(json.dumps({"rows": [r for r in rows if _mine(r, job)] if args.resume else []},
                                          default=str))
            log = open(folder / f"{job.stem}.log", "w")  # noqa: SIM115 -- closed when the process ends
            running[job] = (subprocess.Popen(child_argv(job, args, rows_to), cwd=ROOT, stdout=log,
                                             stderr=subprocess.STDOUT), log)
            print(f"[jobs] started {job.stem} (log {folder / job.stem}.log)", flush=True)
        time.sleep(POLL_S)
        for job in [j for j, (proc, _) in running.items() if proc.poll() is not None]:
            proc, log = running.pop(job)
            log.close()
            got = json.loads((folder / f"{job.stem}.json").read_text()).get("rows", [])
            rows[:] = [r for r in rows if not _mine(r, job)] + got
            save()
            if proc.returncode != 0:
                tail = (folder / f"{job.stem}.log").read_text().splitlines()[-15:]
                failed.append(job.stem)
                print(f"[jobs] {job.stem} FAILED (exit {proc.returncode}), {len(got)} rows kept:\n  "
                      + "\n  ".join(tail), flush=True)
            else:
                print(f"[jobs] {job.stem} done: {len(got)} rows", flush=True)
    return failed
