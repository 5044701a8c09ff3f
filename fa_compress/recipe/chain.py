"""`compress`: finetune -> prune -> export -> bench -> report in one run directory, as a recipe says.

The run holds the effective recipe (`recipe.toml`, every default filled in: replay it with
`load_recipe`) and a `compress` entry in run.json with each stage's status; `resume=True` continues at
the first stage whose own entry in run.json is not `done` (a fine-tuning from its last checkpoint) and
runs every stage after it again, since each reads what the one before wrote.

>>> result = compress(load_recipe(Path("examples/recipe.toml")))
>>> [(s.stage, s.status) for s in result.stages]
[('finetune', 'ran'), ('prune', 'ran'), ('export', 'ran'), ('bench', 'ran'), ('report', 'ran')]
>>> compress(None, run=result.run_path, resume=True).stages[0].status
'done before'
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError, NotFoundError
from ..export.pipeline import export_run
from ..models import trust_code as trusting
from ..pruning.stage import prune_run
from ..report import regenerate_report
from ..report.bench_stage import bench_run
from ..run import Run, atomic_write_bytes
from ..train.stage import STATE_FILE, finetune_run
from .recipe import Recipe, load_recipe
from .sections import BASELINE_MODEL, bench_kwargs, export_calls, finetune_options, prune_call

RECIPE_FILE = "recipe.toml"
STAGE = "compress"  # the chain's own entry in run.json
STAGES = ("finetune", "prune", "export", "bench", "report")
RAN, DONE_BEFORE = "ran", "done before"


@dataclass(frozen=True)
class StageOutcome:
    """One stage of the chain: whether it ran now or was done before (resume), its time and a summary."""

    stage: str
    status: str    # RAN or DONE_BEFORE
    seconds: float
    summary: str   # one line from run.json, e.g. "validation 87.10%, test 86.55% at 64 px"


@dataclass(frozen=True)
class CompressResult:
    """The run the chain wrote, its recipe file and what each stage did."""

    run_path: Path
    recipe_path: Path
    stages: tuple[StageOutcome, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"run_path": str(self.run_path), "recipe_path": str(self.recipe_path),
                "stages": [asdict(s) for s in self.stages]}


def compress(recipe: Recipe | None = None, run: Path | None = None, resume: bool = False, *,
             show_progress: bool = True, trust_code: bool = False) -> CompressResult:
    """Run the whole chain as `recipe` says (None: all defaults) into a new run (`run`: its folder), or
    with `resume` continue run `run` (None: the latest) with its own recipe.toml (a `recipe` given too must
    equal it). `trust_code` allows a `file.py:factory` model (imports and runs that code)."""
    if resume:
        the_run, recipe = _resume_point(recipe, run, trust_code)
    else:
        recipe = recipe if recipe is not None else load_recipe(trust_code=trust_code)
        ft = recipe.values["finetune"]
        the_run = Run.create(name=f"{ft['model']}-{ft['data'].split(':')[0]}", path=run)
    recipe_path = the_run.path / RECIPE_FILE
    with the_run.writer(STAGE), trusting(trust_code):  # every stage below runs under this one lock
        if not resume:
            atomic_write_bytes(recipe_path, recipe.to_toml().encode("utf-8"))
        start = _first_unfinished(the_run, recipe) if resume else 0
        statuses = {name: "done" for name in STAGES[:start]}
        outcomes = [StageOutcome(name, DONE_BEFORE, 0.0, _summary(the_run, name)) for name in STAGES[:start]]
        _record(the_run, "running", statuses)
        for name in STAGES[start:]:
            t0 = time.perf_counter()
            try:
                _RUNNERS[name](the_run, recipe, show_progress, trust_code)
            except Exception:
                with contextlib.suppress(Exception):  # keep the error that stopped the chain, not this one
                    _record(the_run, "failed", {**statuses, name: "failed"})
                raise
            statuses[name] = "done"
            _record(the_run, "running" if name != STAGES[-1] else "done", statuses)
            outcomes.append(StageOutcome(name, RAN, time.perf_counter() - t0, _summary(the_run, name)))
    return CompressResult(the_run.path, recipe_path, tuple(outcomes))


def _record(run: Run, status: str, stages: dict[str, str]) -> None:
    run.record(STAGE, {"status": status, "stages": dict(stages), "artifacts": {"recipe": RECIPE_FILE}})


def _resume_point(asked: Recipe | None, run: Path | None, trust: bool) -> tuple[Run, Recipe]:
    """The run to continue and its own recipe (checked against its checksum, and against `asked`)."""
    the_run = Run.resolve(run)
    path = the_run.path / RECIPE_FILE
    if the_run.stage(STAGE) is None or not path.is_file():
        raise NotFoundError(f"run {the_run.path} was not made by `facompress compress` (no {RECIPE_FILE} recorded); "
                            f"continue its stages with their own commands")
    the_run.verify_file(path)  # a recipe edited since the run wrote it is refused (CheckpointError)
    recipe = load_recipe(path, trust_code=trust)
    differences = asked.differences(recipe) if asked is not None else []
    if differences:
        raise ConfigError(f"{asked.source} differs from the run's own {path} ({'; '.join(differences[:3])}); "
                          f"resume continues the run's recipe: leave the recipe and settings out, or start a new run")
    return the_run, recipe


def _first_unfinished(run: Run, recipe: Recipe) -> int:
    """Index in STAGES of the first stage whose own run.json entry is not done (len(STAGES): all are)."""
    export_names = [f"export:{o.model_name}" if o.model_name else "export" for o in export_calls(recipe.section("export"))]
    entries = {"finetune": ["finetune"], "prune": ["prune"], "export": export_names, "bench": ["bench"]}
    for index, name in enumerate(STAGES):
        if name == "report":  # `facompress report` records no entry of its own: the chain's entry says
            done = (run.stage(STAGE) or {}).get("stages", {}).get("report") == "done"
        else:
            done = all((run.stage(entry) or {}).get("status") == "done" for entry in entries[name])
        if not done:
            return index
    return len(STAGES)


# ---- the stages: each calls its library function with the recipe's section ------------------------------
def _finetune(run: Run, recipe: Recipe, progress: bool, trust: bool) -> None:
    opts = finetune_options(recipe.section("finetune"), run=run.path, show_progress=progress, trust=trust)
    opts = replace(opts, img_size_choice=recipe.img_size_choice)  # the rule that chose the size, for run.json
    if run.stage("finetune") is not None:  # started before: continue from its checkpoint
        if not (run.path / STATE_FILE).is_file():
            raise ConfigError(f"the fine-tuning of run {run.path} stopped before its first checkpoint, so it cannot "
                              f"be resumed; start the chain again with --recipe {run.path / RECIPE_FILE} (a "
                              f"checkpoint_every in [finetune] also checkpoints inside phases)")
        opts = replace(opts, resume=True)
    finetune_run(opts)


def _prune(run: Run, recipe: Recipe, progress: bool, trust: bool) -> None:
    options, latency_target = prune_call(recipe.section("prune"), run=run.path, show_progress=progress)
    prune_run(options, search=latency_target)


def _export(run: Run, recipe: Recipe, progress: bool, trust: bool) -> None:
    for options in export_calls(recipe.section("export")):
        export_run(run, options)


def _bench(run: Run, recipe: Recipe, progress: bool, trust: bool) -> None:
    bench_run(run, **bench_kwargs(recipe.section("bench"), show_progress=progress))


def _report(run: Run, recipe: Recipe, progress: bool, trust: bool) -> None:
    run.register_files(regenerate_report(run.path), "report")  # rewritten files keep matching checksums


_RUNNERS: dict[str, Callable[[Run, Recipe, bool, bool], None]] = {
    "finetune": _finetune, "prune": _prune, "export": _export, "bench": _bench, "report": _report}


# ---- one line per stage, read back from run.json ----------------------------------------------------------
def _summary(run: Run, name: str) -> str:
    try:
        return _SUMMARIES[name](run)
    except (KeyError, TypeError, ZeroDivisionError):  # a field an older or partial entry lacks
        return ""


def _finetune_summary(run: Run) -> str:
    stage = run.stage("finetune")
    m, opts = stage["metrics"], stage["options"]
    test = f", test {m['best_test_acc']:.2%}" if m.get("best_test_acc") is not None else ""
    val = f"validation {m['best_val_acc']:.2%}" if m.get("best_val_acc") is not None else "no validation"
    return f"{opts['model']} on {opts['data']} at {opts['img_size']} px: {val}{test}"


def _prune_summary(run: Run) -> str:
    m = run.stage("prune")["metrics"]
    acc = m["acc_recovered"] if m.get("kept") == "recovered" else m["acc_pruned"]
    return (f"keep {m['keep']:.3f}: MACs {m['macs_after'] / m['macs_before']:.3f}, params "
            f"{m['params_after'] / m['params_before']:.3f} of dense; test {acc:.2%}")


def _export_summary(run: Run) -> str:
    files = [Path(a["path"] if isinstance(a, dict) else a).name for name, entry in run.manifest["stages"].items()
             if name.split(":")[0] == "export" for a in (entry.get("artifacts") or {}).values()]
    return ", ".join(sorted(set(files)))


def _bench_summary(run: Run) -> str:
    return ", ".join(sorted((run.stage("bench").get("artifacts") or {}).values()))


def _report_summary(run: Run) -> str:
    return f"report.md, report.html in {run.path}"


_SUMMARIES: dict[str, Callable[[Run], str]] = {
    "finetune": _finetune_summary, "prune": _prune_summary, "export": _export_summary, "bench": _bench_summary,
    "report": _report_summary}

__all__ = ["BASELINE_MODEL", "CompressResult", "RECIPE_FILE", "STAGES", "StageOutcome", "compress"]
