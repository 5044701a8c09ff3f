"""The wheel installs a working package: built from a copy of the source, installed into a scratch
folder, and run from outside the repository with that folder (not the source tree) on the path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = ["--model", "resnet18", "--weights", "none", "--data", "fake:3", "--img-size", "32", "--limit-train", "24",
        "--limit-test", "12", "--schedule", "head,gates", "--batch-size", "12", "--min-phase-steps", "0", "--quiet"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """(scratch folder with the installed wheel, environment that puts it first on the path)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("fa_compress", "cli"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    dist, site = tmp / "dist", tmp / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src)], check=True,
                   cwd=tmp, capture_output=True)
    wheel = next(dist.glob("facompress-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, cwd=tmp,
                   capture_output=True)
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{sysconfig.get_paths()['purelib']}",
           "FACOMPRESS_RUNS": str(tmp / "runs"), "OMP_WAIT_POLICY": "PASSIVE"}
    return site, env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def _wheel_files(site: Path) -> set[str]:
    return {str(p.relative_to(site)) for p in site.rglob("*.py")}


@pytest.mark.slow
def test_wheel_holds_every_subpackage_and_imports_from_the_install(installed):
    site, env = installed
    files = _wheel_files(site)
    expected = {str(p.relative_to(REPO)) for p in (REPO / "fa_compress").rglob("*.py") if "__pycache__" not in p.parts}
    expected |= {f"fa_compress/cli/{p.name}" for p in (REPO / "cli").glob("*.py")}
    assert expected <= files, sorted(expected - files)[:5]
    assert not any(f.startswith("cli/") for f in files)  # installed as fa_compress.cli, never as `cli`
    out = _run(["-c", "import fa_compress, fa_compress.bench.backends as b; print(fa_compress.__file__);"
                      "from fa_compress.pruning.stage import PruneOptions; PruneOptions()"], env, site.parent)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(site))


@pytest.mark.slow
def test_installed_cli_runs_help_and_a_tiny_chain(installed):
    site, env = installed
    work = site.parent / "work"
    work.mkdir()
    script = site / "bin" / "facompress"
    assert script.is_file()
    for args in ([], ["prune"]):
        out = subprocess.run([str(script), *args, "--help"], env=env, cwd=work, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0 and "Usage" in out.stdout, (args, out.stderr)
    run = work / "run"
    cli = ["-m", "fa_compress.cli.app"]
    steps = [["finetune", *TINY, "--run", str(run)], ["prune", "--run", str(run), "--keep", "0.5",
             "--recover-epochs", "0", "--fade-steps", "8", "--gate-score", "value", "--quiet"], ["export", "--run", str(run)]]
    for step in steps:
        out = _run([*cli, *step], env, work)
        assert out.returncode == 0, (step, out.stderr[-2000:])
    assert (run / "pruned.safetensors").is_file() and (run / "pruned.onnx").is_file()
