"""benchmarks/prune_pareto.py's (task, seed) units as single-thread processes side by side (`--jobs N`).

A unit fine-tunes its task's model once per start and prunes it for every method and target, so a unit
is the smallest piece that shares nothing with another. Each runs as
`python -m benchmarks.prune_pareto --tasks TASK --seeds SEED --threads 1 --rows-to FILE ...`, writing its
rows to its own file under benchmarks/work/pareto-jobs/<name>/ (git-ignored) and its output to a log
beside it; when one ends, its rows join the parent's and the parent's JSON is rewritten. A unit that
fails is named on screen with the end of its log and returned; the others go on.
With `--resume`, a unit's file starts with the rows it already has (the parent's, and those its own file
kept), so it only runs the missing ones.
Units start first seeds first (every task's first seed, then every task's second, ...), so a run cut short
by `--deadline-min` still covers every task it reached; at the deadline no unit starts, the running ones are
stopped, and the rows they finished are kept (the units are returned as unfinished, not failed).
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
    if args.finetune_steps is not None:
        argv += ["--finetune-steps", str(args.finetune_steps)]
    if args.keep_models and job.keep_models:
        argv.append("--keep-models")
    return argv


def _mine(row: dict, job: _Job) -> bool:
    return row["task"] == job.task and row["seed"] == job.seed


def _resumed(job: _Job, rows: list[dict], rows_to: Path) -> list[dict]:
    """The rows a resumed unit starts with: the parent's, and those its own file kept from a run that was
    stopped before the parent saved them."""
    kept = [r for r in rows if _mine(r, job)]
    if rows_to.exists():
        have = {(r["method"], r["target_macs"]) for r in kept}
        kept += [r for r in json.loads(rows_to.read_text()).get("rows", []) if _mine(r, job)
                 and (r["method"], r["target_macs"]) not in have]
    return kept


def first_seeds_first(units: list[Unit]) -> list[_Job]:
    """Every unit's first seed, then every unit's second, and so on (each task in `units` order)."""
    rounds = max((len(u.seeds) for u in units), default=0)
    return [_Job(u.task, u.seeds[i], i == 0) for i in range(rounds) for u in units if i < len(u.seeds)]


def run_units(units: list[Unit], args, rows: list[dict], save: Callable[[], None]) -> tuple[list[str], list[str]]:
    """Run every (task, seed) of `units` in up to `args.jobs` processes; their rows are added to `rows`.
    Returns the units that failed and those the deadline (`args.deadline_min`) stopped or never started
    (`task-seedN`)."""
    folder = JOBS / args.name.split(",")[0]
    folder.mkdir(parents=True, exist_ok=True)
    pending = first_seeds_first(units)
    running: dict[_Job, tuple[subprocess.Popen, object]] = {}
    failed: list[str] = []
    unfinished: list[str] = []
    deadline = time.monotonic() + 60 * args.deadline_min if getattr(args, "deadline_min", None) else None
    while pending or running:
        if deadline is not None and time.monotonic() > deadline:
            unfinished += [j.stem for j in pending]
            pending = []
            for job, (proc, _) in running.items():
                proc.terminate()
                unfinished.append(job.stem)
                print(f"[jobs] deadline: stopped {job.stem}", flush=True)
        while pending and len(running) < args.jobs:
            job = pending.pop(0)
            rows_to = folder / f"{job.stem}.json"
            rows_to.write_text(json.dumps({"rows": _resumed(job, rows, rows_to) if args.resume else []}, default=str))
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
            if job.stem in unfinished:
                print(f"[jobs] {job.stem} stopped: {len(got)} rows kept", flush=True)
            elif proc.returncode != 0:
                tail = (folder / f"{job.stem}.log").read_text().splitlines()[-15:]
                failed.append(job.stem)
                print(f"[jobs] {job.stem} FAILED (exit {proc.returncode}), {len(got)} rows kept:\n  "
                      + "\n  ".join(tail), flush=True)
            else:
                print(f"[jobs] {job.stem} done: {len(got)} rows", flush=True)
    return failed, unfinished
