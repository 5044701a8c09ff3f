"""One entry point for the benchmark suites.

    python -m benchmarks list                               # suites and configs
    python -m benchmarks <suite> --config benchmarks/configs/<experiment>.toml [--out DIR] [-- EXTRA ARGS]
    python -m benchmarks results                            # rebuild docs/results.md from the stored results
    python -m benchmarks tasks                              # the task zoo the compression suites run on

A suite is one of the scripts in this folder (`python -m benchmarks.<module>` runs it alone, with its
own options). A config is a TOML file:

    suite = "pareto"                 # which suite runs it
    experiment = "pareto"            # results/<experiment>.<cpu-kind>.{json,md,...}
    title = "..."                    # the heading in docs/results.md
    [args]                           # the suite's own options: key = value becomes --key value;
    tasks = "tops4,shoes3,default"   #   a string is one argument, an array several (nargs options),
    keep-models = true               #   true a bare flag, false left out

The suite runs in this process with its results folder pointed at a scratch folder; what it writes
there is renamed to <experiment>.<cpu-kind>.<ext> under --out (default benchmarks/results/), and the
JSON is wrapped in a record of the command, the code revision, the CPU kind and flags, and the load
averages before and after. The CPU kind is derived from `fa_compress.machine.cpu_flags()` (`cpu_kind`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import shlex
import shutil
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIGS = HERE / "configs"
RESULTS = HERE / "results"

# Suite name -> module in this package. Every public script is a suite under its own name with `_`
# written `-`; these are the short names of the published ones.
ALIASES = {"pareto": "prune_pareto", "int8-accuracy": "int8_form_accuracy"}
NOT_SUITES = {"__init__", "__main__", "results_doc"}


def suites() -> dict[str, str]:
    """Suite name -> module name, for every script in this folder with a `main`."""
    found = {}
    for path in sorted(HERE.glob("*.py")):
        if path.stem.startswith("_") or path.stem in NOT_SUITES:
            continue
        if "def main(" in path.read_text():
            found[path.stem.replace("_", "-")] = path.stem
    found.update(ALIASES)
    return dict(sorted(found.items()))


def cpu_kind(flags: tuple[str, ...] | list[str] | None = None) -> str:
    """A short name for the CPU's widest integer/vector extension, for result file names."""
    from fa_compress.machine import cpu_flags

    f = set(cpu_flags() if flags is None else flags)
    for kind, need in (("amx", "amx_int8"), ("avx512-vnni", "avx512_vnni"), ("avx512", "avx512f"),
                       ("avx2-vnni", "avx_vnni"), ("avx2", "avx2")):
        if need in f:
            return kind
    return "baseline"


def load_config(path: Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        config = tomllib.load(f)
    for key in ("suite", "experiment"):
        if key not in config:
            raise SystemExit(f"{path}: no `{key}` key")
    return config


def configs() -> dict[Path, dict[str, Any]]:
    return {p: load_config(p) for p in sorted(CONFIGS.glob("*.toml"))}


def to_argv(args: dict[str, Any]) -> list[str]:
    """TOML [args] -> command-line options (see the module docstring)."""
    argv: list[str] = []
    for key, value in args.items():
        opt = "--" + key.replace("_", "-")
        if value is True:
            argv.append(opt)
        elif value is False or value is None:
            continue
        elif isinstance(value, list):
            argv += [opt, *map(str, value)]
        else:
            argv += [opt, str(value)]
    return argv


def config_command(path: Path, config: dict[str, Any]) -> str:
    try:
        shown = path.resolve().relative_to(ROOT)
    except ValueError:
        shown = path
    return f"python -m benchmarks {config['suite']} --config {shown}" + (f" {config['extra']}" if config.get("extra") else "")


def run_suite(suite: str, config_path: Path | None, out: Path, extra: list[str]) -> Path:
    """Run `suite` with the config's arguments (then `extra`); returns the wrapped result JSON."""
    from fa_compress.bench.environment import environment
    from fa_compress.export import to_record
    from fa_compress.machine import cpu_flags, load_average

    from . import _common as C

    table = suites()
    if suite not in table:
        raise SystemExit(f"unknown suite {suite!r}; known: {', '.join(table)}")
    config = load_config(config_path) if config_path else {"suite": suite, "experiment": suite, "args": {}}
    if config["suite"] != suite and table.get(config["suite"]) != table[suite]:
        raise SystemExit(f"{config_path} is a config of suite {config['suite']!r}, not {suite!r}")
    argv = to_argv(config.get("args", {})) + extra
    module_name = table[suite]
    command = "python -m benchmarks " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    flags = list(cpu_flags())
    kind = cpu_kind(flags)
    record: dict[str, Any] = {
        "experiment": config["experiment"], "suite": suite, "module": f"benchmarks.{module_name}",
        "command": command, "config": None if config_path is None else str(config_path),
        "config_args": config.get("args", {}), "argv": argv, **C.revision(), "cpu_kind": kind, "cpu_flags": flags,
        "environment": to_record(environment()), "load_average": {"before": load_average()},
    }
    with tempfile.TemporaryDirectory(prefix=f"bench-{config['experiment']}-") as tmp:
        scratch = Path(tmp)
        C.RESULTS = scratch  # the scripts import RESULTS from _common when they load (below)
        module = importlib.import_module(f"benchmarks.{module_name}")
        saved_argv = sys.argv
        sys.argv = [module.__file__, *argv]
        t0 = time.perf_counter()
        try:
            module.main()
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise
        finally:
            sys.argv = saved_argv
        record["wall_s"] = round(time.perf_counter() - t0, 1)
        record["load_average"]["after"] = load_average()
        produced = sorted(p for p in scratch.rglob("*") if p.is_file())
        if not produced:
            raise SystemExit(f"suite {suite} wrote no result files")
        stems = {p.name.split(".")[0] for p in produced}
        out.mkdir(parents=True, exist_ok=True)
        base = f"{config['experiment']}.{kind}"
        files, main_json = [], None
        for p in produced:
            rest = p.relative_to(scratch).as_posix().replace("/", "_")
            name = f"{base}{p.suffix}" if len(stems) == 1 else f"{base}.{rest}"
            if p.suffix == ".json" and main_json is None:
                main_json = json.loads(p.read_text())
                if len(stems) == 1:
                    continue  # it goes inside the wrapped record below
            shutil.copyfile(p, out / name)
            files.append(name)
    record["files"] = files
    record["result"] = main_json
    dest = out / f"{base}.json"
    dest.write_text(json.dumps(record, indent=1, default=str) + "\n")
    print(f"wrote {dest}" + (f" and {', '.join(files)}" if files else ""))
    return dest


def list_all() -> None:
    print("suites (python -m benchmarks <suite> [--config FILE]; python -m benchmarks.<module> --help for options):")
    for name, module in suites().items():
        print(f"  {name:22s} benchmarks/{module}.py")
    print("\nconfigs:")
    for path, config in configs().items():
        print(f"  {path.name:26s} {config_command(path, config)}    # {config.get('title', config['experiment'])}")
    print("\npython -m benchmarks results    # rebuild docs/results.md")
    print("python -m benchmarks tasks      # the task zoo (name, classes, train/val/test images, px, model, role)")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0],
                                epilog="suites: " + ", ".join(suites()) + "; also `list`, `results` and `tasks`")
    p.add_argument("suite", help="a suite, `list`, `results` or `tasks`")
    p.add_argument("--config", type=Path, help="a TOML config (benchmarks/configs/*.toml)")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for the results (default benchmarks/results/; with `results`: the Markdown file)")
    args = p.parse_args(argv)
    if args.suite == "list":
        list_all()
    elif args.suite == "tasks":
        from ._tasks import table

        print(table(), end="")
    elif args.suite == "results":
        from .results_doc import write

        print(f"wrote {write(args.out)}")
    else:
        run_suite(args.suite, args.config, args.out or RESULTS, extra)


if __name__ == "__main__":
    main()
