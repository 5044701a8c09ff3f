"""`facompress compress`: the whole chain in one run from a recipe; its recipe.toml replays it, `--resume`
continues at the first unfinished stage, and a bad recipe is one line and exit code 2 with nothing run."""

import inspect
import json
import shutil
from pathlib import Path

import pytest

from fa_compress.cli import bench as cli_bench
from fa_compress.cli.app import main
from fa_compress.cli import export as cli_export
from fa_compress.cli import finetune as cli_finetune
from fa_compress.cli import prune as cli_prune
from fa_compress.cli import report as cli_report
from fa_compress.errors import ConfigError
from fa_compress.recipe import RECIPE_FILE, SECTIONS
from tests.conftest import run_cli

TINY = """
[finetune]
model = "mobilenet_v2"
weights = "none"
data = "fake"
img_size = 32
limit_train = 64
limit_test = 32
schedule = "head,gates"

[prune]
keep = 0.5

[export]
baseline = false

[bench]
backend = ["ort-cpu"]
batch_sizes = [1]
warmup = 1
rounds = 2
sessions = 1
"""
# each command's options a recipe leaves to `compress` itself, or out (see fa_compress/recipe/sections.py)
NOT_KEYS = {"run", "resume", "quiet", "trust_code", "nproc", "out", "runs"}
COMMANDS = {"finetune": cli_finetune.finetune, "prune": cli_prune.prune, "export": cli_export.export,
            "bench": cli_bench.bench, "report": cli_report.report}
RENAMED = {("export", "torch_program"): "torch"}  # the parameter behind `export --torch`
CHAIN_ONLY = {("export", "baseline")}


def _manifest(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


def _options_per_stage(run: Path) -> dict:
    """What each stage recorded it was asked for (not where it ran)."""
    stages = _manifest(run)["stages"]
    prune_keys = ("settings", "recover_epochs", "recover_phase", "recover_lr", "recover_batch_size", "fade_epochs",
                  "seed")
    return {"finetune": {k: v for k, v in stages["finetune"]["options"].items() if k != "run"},
            "img_size_choice": stages["finetune"]["img_size_choice"],
            "prune": {k: stages["prune"][k] for k in prune_keys},
            "export": {name: entry["options"] for name, entry in stages.items() if name.startswith("export")},
            "bench": json.loads((run / "report.json").read_text())["settings"]}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> Path:
    """One whole chain of a tiny model on synthetic images (about 15 s on 2 cores)."""
    root = tmp_path_factory.mktemp("compress")
    (root / "tiny.toml").write_text(TINY)
    with pytest.MonkeyPatch.context() as mp, pytest.raises(SystemExit) as exit_info:
        mp.setenv("FACOMPRESS_RUNS", str(root / "runs"))
        main(["compress", "--recipe", str(root / "tiny.toml"), "--run", str(root / "run"), "--quiet"])
    assert exit_info.value.code == 0
    return root / "run"


def test_recipe_keys_are_the_commands_options():
    for name, command in COMMANDS.items():
        options = {RENAMED.get((name, p), p) for p in inspect.signature(command).parameters} - NOT_KEYS
        keys = {k.name for k in SECTIONS[name].keys} - {k for s, k in CHAIN_ONLY if s == name}
        assert keys == options, name


def test_the_chain_records_every_stage_and_its_recipe(first_run):
    stages = _manifest(first_run)["stages"]
    assert stages["compress"]["status"] == "done" and stages["compress"]["artifacts"] == {"recipe": RECIPE_FILE}
    assert stages["compress"]["stages"] == dict.fromkeys(("finetune", "prune", "export", "bench", "report"), "done")
    assert all(stages[s]["status"] == "done" for s in ("finetune", "prune", "export", "bench"))
    assert (first_run / "pruned.onnx").is_file() and not (first_run / "finetuned.onnx").exists()  # baseline = false
    assert "limit_train = 64" in (first_run / RECIPE_FILE).read_text()


def test_replaying_the_runs_recipe_gives_the_same_options(first_run, tmp_path, capsys):
    again = tmp_path / "again"
    code, out, err = run_cli(["compress", "--recipe", str(first_run / RECIPE_FILE), "--run", str(again), "--quiet"],
                             capsys)
    assert code == 0, err
    assert out.startswith("img size 32: asked for\n") and "Headline" in out
    assert _options_per_stage(again) == _options_per_stage(first_run)
    assert (again / RECIPE_FILE).read_text() == (first_run / RECIPE_FILE).read_text()


@pytest.mark.parametrize("body, key", [
    ("[finetun]\nmodel = 'resnet18'\n", "[finetun]"),
    ("[prune]\nkepe = 0.5\n", "'kepe'"),
    ("[finetune]\nlimit_train = 'all'\n", "[finetune] limit_train must be a whole number"),
    ("[prune]\ntarget_macs = 2.0\n", "[prune] target_macs = 2.0 is refused"),
])
def test_a_bad_recipe_is_one_line_exit_2_and_nothing_runs(tmp_path, capsys, body, key):
    recipe = tmp_path / "bad.toml"
    recipe.write_text(body)
    code, out, err = run_cli(["compress", "--recipe", str(recipe), "--run", str(tmp_path / "run")], capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {recipe}: ") and key in lines[0], err
    assert not (tmp_path / "run").exists() and not (tmp_path / "runs").exists()


def test_resume_continues_at_the_first_unfinished_stage(first_run, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(first_run, run)
    manifest = _manifest(run)
    for name in ("bench", "compress"):  # as if the chain had stopped while benchmarking
        manifest["stages"][name]["status"] = "running"
    del manifest["stages"]["compress"]["stages"]["bench"], manifest["stages"]["compress"]["stages"]["report"]
    (run / "run.json").write_text(json.dumps(manifest))
    before = {name: _manifest(run)["stages"][name]["updated"] for name in ("finetune", "prune", "export")}
    model_bytes = (run / "pruned.safetensors").read_bytes()

    code, out, err = run_cli(["compress", "--resume", "--run", str(run), "--quiet"], capsys)
    assert code == 0, err
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()
            if line.split() and line.split()[0] in ("finetune", "prune", "export", "bench", "report")}
    assert rows == {"finetune": "done", "prune": "done", "export": "done", "bench": "ran", "report": "ran"}
    assert out.count("done before") == 3
    stages = _manifest(run)["stages"]
    assert {name: stages[name]["updated"] for name in before} == before
    assert (run / "pruned.safetensors").read_bytes() == model_bytes
    assert stages["bench"]["status"] == "done" and stages["compress"]["status"] == "done"


def test_a_stage_that_fails_is_recorded_and_resume_runs_it_again(first_run, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(first_run, run)
    manifest = _manifest(run)
    manifest["stages"]["compress"]["stages"].pop("report")
    manifest["stages"]["compress"]["status"] = "running"
    (run / "run.json").write_text(json.dumps(manifest))

    def fail(path):
        raise ConfigError("the report cannot be written here (a test)")

    monkeypatch.setattr("fa_compress.recipe.chain.regenerate_report", fail)
    code, _, err = run_cli(["compress", "--resume", "--run", str(run), "--quiet"], capsys)
    assert code == 2 and "a test" in err
    entry = _manifest(run)["stages"]["compress"]
    assert entry["status"] == "failed" and entry["stages"]["report"] == "failed"
    monkeypatch.undo()
    code, out, err = run_cli(["compress", "--resume", "--run", str(run), "--quiet"], capsys)
    assert code == 0, err
    assert _manifest(run)["stages"]["compress"]["stages"]["report"] == "done"
    code, _, err = run_cli(["compress", "--resume", "--run", str(run), "--set", "prune.keep=0.4"], capsys)
    assert code == 2 and "--resume continues the run's own recipe" in err
    changed = tmp_path / "changed.toml"
    changed.write_text((run / RECIPE_FILE).read_text().replace("keep = 0.5", "keep = 0.4"))
    code, _, err = run_cli(["compress", "--resume", "--run", str(run), "--recipe", str(changed)], capsys)
    assert code == 2 and f"{changed} differs from the run's own" in err and "[prune] keep: 0.4 vs 0.5" in err
