"""Random mutations of a real finished run, through every loader and (for a sample) the CLI;
and what verifying a model file's checksum costs next to loading it.

    .venv/bin/python benchmarks/fuzz_runs.py -n 2000            # the full run (~1 s per mutation on 2 cores)
    .venv/bin/python benchmarks/fuzz_runs.py -n 40 --no-cost    # calibration
    .venv/bin/python benchmarks/fuzz_runs.py --cost-only        # the checksum cost again, fuzz table kept

The run: mobilenet_v2 fine-tuned on 64 fake 32 px images (head then gates), pruned to keep 0.5, exported
to ONNX and benchmarked, all through the CLI (or `--run DIR`, any finished run; it is copied, never
changed). Each mutation changes one file (model tensor data, safetensors header, model metadata
re-saved consistently, run.json, the ONNX file, gates.json: flipped bytes, truncation, inserted bytes,
zeroed blocks, wrong header lengths, wrong types, deleted and unknown fields, hostile paths), then the
run goes to every loader (tests/run/fuzz_harness.py, shared with the property-based test) and is
restored. Every `--cli-every`-th mutation also runs `facompress check`, `gates` and `export --out` on a
copy. Outcomes: verified (loaded what facompress wrote), refused (the project's UserError; CLI: exit 2
and one `error:` line), other (any other exception or exit code), silent (changed bytes loaded).

Checksum cost: resnet50 (random weights, torchvision architecture) and EfficientNet-Lite0 (its real
ImageNet weights) saved as facompress model files; interleaved rounds of reading + SHA-256 of the file,
`load_model` without any check and with the file's content self-check, and `Run.load_model` (the
manifest's SHA-256 of the bytes read, then the load without the self-check). Writes benchmarks/results/fuzz_runs.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from . import _common as C

from tests.run.fuzz_harness import OPS, OUTCOMES, TARGETS, Mutation, Original, classify, loaders, mutate  # noqa: E402
from fa_compress.models.saved import load_run_model

CLI_COMMANDS = {"check": ["check"], "gates": ["gates"], "export": ["export", "--model", "finetuned", "--out", "{out}"]}
CLI_READS = {"gates": {"gates.json"}, "export": {"finetuned.safetensors"}}  # check: every file but run.json


def make_run(root: Path) -> Path:
    """A tiny run taken through finetune, prune, export and bench by the CLI."""
    run = root / "run"
    tiny = ["--model", "mobilenet_v2", "--weights", "none", "--data", "fake", "--img-size", "32",
            "--limit-train", "64", "--limit-test", "32", "--quiet"]
    steps = [["finetune", *tiny, "--schedule", "head,gates", "--run", str(run)],
             ["prune", "--run", str(run), "--keep", "0.5", "--recover-epochs", "0", "--quiet"],
             ["export", "--run", str(run)],
             ["bench", "--run", str(run), "--backend", "torch-cpu", "--quiet", "--warmup", "1", "--runs", "3"]]
    for argv in steps:
        proc = _facompress(argv, root)
        if proc.returncode != 0:
            print(f"warning: `facompress {argv[0]}` failed ({proc.stderr.strip()[-300:]}); fuzzing the run as it is",
                  file=sys.stderr)
            if argv[0] == "finetune":
                raise SystemExit(1)
    return run


def _facompress(argv: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fa_compress.cli.app", *argv], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env={**__import__("os").environ, "FACOMPRESS_RUNS": str(cwd / "runs")})


def draw(rng: random.Random) -> Mutation:
    target = rng.choice(TARGETS)
    return Mutation(target, rng.choice(OPS[target]), rng.random(), rng.randint(1, 8), rng.randint(0, 10_000))


def mutation_outcome(outcomes: list[str]) -> str:
    """A mutation's verdict: its worst loader outcome."""
    for worst in ("silent", "other", "refused"):
        if worst in outcomes:
            return worst
    return "verified"


def cli_outcome(run_dir: Path, original: Original, m: Mutation, work: Path) -> dict[str, str]:
    """The sampled CLI commands on a mutated copy of the run."""
    copy = Path(shutil.copytree(run_dir, work / "cli-run"))
    try:
        mutate(copy, m)
        changed = original.changed(copy)
        found = {}
        for name, argv in CLI_COMMANDS.items():
            out = work / "cli-out"
            out.mkdir(exist_ok=True)
            proc = _facompress([a.replace("{out}", str(out)) for a in argv] + ["--run", str(copy)], work)
            lines = [line for line in proc.stderr.splitlines() if line.strip()]
            if proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "):
                found[name] = "refused"
            elif proc.returncode == 0:  # loaded: only right if nothing it reads had changed
                reads = CLI_READS.get(name, set(original.files) - {"run.json"})
                found[name] = "silent" if changed & reads else "verified"
            else:
                found[name] = "other"
            shutil.rmtree(out, ignore_errors=True)
        return found
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def fuzz(run_dir: Path, n: int, seed: int, cli_every: int) -> dict:
    from fa_compress.report.bench_stage import report_inputs
    from fa_compress.run import Run

    original, rng = Original.of(run_dir), random.Random(seed)
    by_target = {t: Counter() for t in TARGETS}
    by_loader: dict[str, Counter] = {}
    cli: dict[str, Counter] = {name: Counter() for name in CLI_COMMANDS}
    bad: list[dict] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            m = draw(rng)
            try:
                mutate(run_dir, m)
                calls = {**loaders(run_dir, original, m),
                         "bench.report_inputs": lambda: isinstance(report_inputs(Run.open(run_dir)), dict)}
                results = {name: classify(call) for name, call in calls.items()}
            finally:
                original.restore(run_dir)
            for name, (outcome, detail) in results.items():
                by_loader.setdefault(name, Counter())[outcome] += 1
                if outcome in ("other", "silent"):
                    bad.append({"mutation": m.describe(), "loader": name, "outcome": outcome, "detail": detail})
            by_target[m.target][mutation_outcome([o for name, (o, _) in results.items()
                                                  if name != "bench.report_inputs"])] += 1
            if cli_every and i % cli_every == 0:
                for name, outcome in cli_outcome(run_dir, original, m, Path(tmp)).items():
                    cli[name][outcome] += 1
                    if outcome in ("other", "silent"):
                        bad.append({"mutation": m.describe(), "loader": f"cli {name}", "outcome": outcome})
            if (i + 1) % 50 == 0:
                print(f"  {i + 1}/{n} mutations, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return {"command": C.command_line(), "n": n, "seed": seed, "seconds": time.perf_counter() - t0, "stages": sorted(Run.open(run_dir).manifest["stages"]),
            "by_target": by_target, "by_loader": by_loader, "cli": cli, "not_clean": bad}


def checksum_cost(repeats: int) -> list[dict]:
    """Median seconds to hash, load (without / with self-check) and load through a run, per model file."""
    from fa_compress.bench.compare import compare_steps
    from fa_compress.run import file_digest
    from fa_compress.models import build_model, get_spec
    from fa_compress.run import Run
    from fa_compress.models.saved import load_model, model_meta

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch, weights in (("resnet50", "none"), ("efficientnet_lite0", "imagenet")):
            model = build_model(arch, 1000, weights=weights)
            norm = get_spec(arch).normalization
            run = Run.create(path=Path(tmp) / arch)
            meta = model_meta(model, arch=arch, classes=[f"c{i}" for i in range(1000)], img_size=224,
                              normalization={"mean": list(norm.mean), "std": list(norm.std)}, stage="finetune")
            path = run.save_model("model", model, meta)
            steps = {"sha256 of the file": lambda: file_digest(path),
                     "load, no check": lambda: load_model(path, data=path.read_bytes(), self_check=False),
                     "load + self-check (file alone)": lambda: load_model(path),
                     "Run.load_model (manifest SHA-256, then load)": lambda: load_run_model(run, "model")}
            timings = compare_steps(steps, warmup=1, rounds=repeats, calls=1, inference=False)
            base = timings["load, no check"]
            hashing = timings["sha256 of the file"].ratio_to(base)
            verified = timings["Run.load_model (manifest SHA-256, then load)"].ratio_to(base)
            rows.append({"arch": arch, "weights": weights, "size_mb": path.stat().st_size / 1e6,
                         **{f"{k} median_ms": t.latency.median_ms for k, t in timings.items()},
                         "hash / load ratio": hashing.median, "hash / load interval": [hashing.low, hashing.high],
                         "verified / unchecked load ratio": verified.median,
                         "verified / unchecked load interval": [verified.low, verified.high]})
            print(f"  {arch}: hash / load {hashing.median:.3f}, verified / unchecked {verified.median:.2f}",
                  file=sys.stderr)
    return rows


def _ratio_cell(row: dict, key: str, digits: int) -> str:
    """"0.123 [0.110, 0.130]"; rows measured before the intervals show the median alone."""
    text = f"{row[f'{key} ratio']:.{digits}f}"
    interval = row.get(f"{key} interval")
    return text if interval is None else f"{text} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


def markdown(result: dict, env: dict, loads: dict) -> str:
    notes = [f"Run fuzzed: stages {', '.join(result['fuzz']['stages'])}; {result['fuzz']['n']} mutations "
             f"(seed {result['fuzz']['seed']}) in {result['fuzz']['seconds']:.0f} s, by `{result['fuzz']['command']}`.",
             "Timings on a shared 2-core machine under load from other jobs: noisy; the ratios within a row are "
             "the comparable figures (the library's interleaved rounds, ratio per round: median [95% interval])."]
    parts = [C.md_header("Fuzzed run directories and checksum cost", env, loads, notes)]
    f = result["fuzz"]
    parts.append("## Per mutation (its worst loader outcome), by target file\n")
    rows = [[t, *(f["by_target"][t][o] for o in OUTCOMES), sum(f["by_target"][t].values())] for t in TARGETS]
    rows.append(["**all**", *(sum(f["by_target"][t][o] for t in TARGETS) for o in OUTCOMES), f["n"]])
    parts.append(C.md_table(["target", *OUTCOMES, "mutations"], rows) + "\n")
    parts.append("## Per loader call\n")
    parts.append(C.md_table(["loader", *OUTCOMES], [[k, *(v[o] for o in OUTCOMES)] for k, v in f["by_loader"].items()]))
    parts.append("\n`bench.report_inputs` (fa_compress/bench) reads gates.json itself, without the checksum; "
                 "it is listed but left out of the per-mutation verdict.\n")
    parts.append("## CLI sample (a copy of the mutated run, real processes)\n")
    parts.append(C.md_table(["command", *OUTCOMES], [[k, *(v[o] for o in OUTCOMES)] for k, v in f["cli"].items()]))
    if f["not_clean"]:
        parts.append("\n## Not clean (first 20)\n")
        parts.append(C.md_table(["mutation", "loader", "outcome", "detail"],
                                [[b["mutation"], b["loader"], b["outcome"], b.get("detail", "")[:160]]
                                 for b in f["not_clean"][:20]]))
    if result.get("cost"):
        parts.append("\n## Checksum cost (median ms)\n")
        keys = [k for k in result["cost"][0] if k.endswith("median_ms")]
        parts.append(C.md_table(["model", "file MB", *[k.removesuffix(" median_ms") for k in keys], "hash / load",
                                 "verified / unchecked load"],
                                [[r["arch"], f"{r['size_mb']:.1f}", *(C.ms(r[k]) for k in keys),
                                  _ratio_cell(r, "hash / load", 3), _ratio_cell(r, "verified / unchecked load", 2)]
                                 for r in result["cost"]]))
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="mutations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", type=Path, default=None, help="a finished run to fuzz (copied); default: make one")
    parser.add_argument("--cli-every", type=int, default=25, help="also run the CLI on every k-th mutation (0: never)")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds of the checksum cost")
    parser.add_argument("--no-cost", action="store_true", help="skip the checksum cost")
    parser.add_argument("--cost-only", action="store_true",
                        help="measure the checksum cost again, keeping the fuzz table of results/fuzz_runs.json")
    args = parser.parse_args()
    C.set_threads()
    loads = {"at start": C.load_average()}
    if args.cost_only:
        result = {"fuzz": json.loads((C.RESULTS / "fuzz_runs.json").read_text())["fuzz"]}
        for table in ("by_target", "by_loader", "cli"):  # JSON leaves out the zero counts
            result["fuzz"][table] = {k: Counter(v) for k, v in result["fuzz"][table].items()}
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run = Path(shutil.copytree(args.run, Path(tmp) / "run")) if args.run else make_run(Path(tmp))
            result = {"fuzz": fuzz(run, args.n, args.seed, args.cli_every)}
    result["cost"] = [] if args.no_cost else checksum_cost(args.repeats)
    loads["at end"] = C.load_average()
    env = C.env_record()
    C.write_results("fuzz_runs", {**result, "environment": env, "load_average": loads}, markdown(result, env, loads))


if __name__ == "__main__":
    main()
