"""`facompress prune` as typed: with the gate ranking its default budget (one epoch, at least the step
floor) fades the cut out and no recovery follows; with another ranking the cut is recovered; both are
recorded with the steps and the rule that chose them, and the cut keeps channel counts in multiples of
16 (the library's default) unless told otherwise."""

import inspect
import json

import torch

from fa_compress.pruning.steps import depth_factor
from tests.cli.cli_output import cli_output

FLOOR_STEPS = 24  # above one epoch (8 steps) as the real floor (400) is on a small task; cheaper to run


def test_the_default_epoch_fades_with_the_gate_ranking_and_recovers_with_another(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("fa_compress.pruning.steps.FLOOR_STEPS", FLOOR_STEPS)
    run = tmp_path / "run"
    cli_output(["finetune", "--model", "resnet18", "--weights", "none", "--data", "fake", "--img-size", "32",
          "--limit-train", "64", "--limit-test", "32", "--schedule", "head,gates", "--run", str(run), "--quiet"],
         capsys)
    out = cli_output(["prune", "--run", str(run), "--keep", "0.75", "--score-images", "32", "--quiet"], capsys)
    assert "faded out before the cut:" in out and "no recovery ran" in out
    assert f"fade: {FLOOR_STEPS} steps (floor; one epoch is 8)" in out  # 64 images at batch 8
    stage = json.loads((run / "run.json").read_text())["stages"]["prune"]
    assert (stage["fade_epochs"], stage["recover_epochs"], stage["recover_batch_size"]) == (None, 0, 8)
    assert (stage["metrics"]["fade"]["steps"], stage["metrics"]["fade"]["rule"]) == (FLOOR_STEPS, "floor")
    assert stage["metrics"]["fade"]["channels"] > 0 and stage["metrics"]["kept"] == "pruned"
    assert stage["settings"]["round_to"] == 16
    assert _cut_conv_widths(run) and all(w % 16 == 0 for w in _cut_conv_widths(run))

    out = cli_output(["prune", "--run", str(run), "--keep", "0.75", "--importance", "l1", "--quiet"], capsys)
    assert "faded out" not in out and "saved:" in out
    stage = json.loads((run / "run.json").read_text())["stages"]["prune"]
    assert (stage["fade_epochs"], stage["recover_epochs"]) == (0, None)
    recovery = stage["metrics"]["recovery"]  # l1 at keep 0.75 cuts this model below half its MACs: the floor grows
    assert recovery["rule"] == "floor" and recovery["factor"] == depth_factor(recovery["macs_fraction"], 2.0) > 1
    assert recovery["steps"] == round(FLOOR_STEPS * recovery["factor"])
    assert stage["metrics"]["acc_recovered"] is not None


def _cut_conv_widths(run) -> list[int]:
    """Output widths of the pruned model's convolutions that the cut changed (resnet18's are 64-512)."""
    from fa_compress.models.saved import load_model

    model, _ = load_model(run / "pruned.safetensors")
    return [m.out_channels for m in model.modules()
            if isinstance(m, torch.nn.Conv2d) and m.out_channels not in (64, 128, 256, 512)]


def test_the_cli_and_the_api_default_to_the_library_rounding():
    from fa_compress import api
    from fa_compress.cli.prune import prune
    from fa_compress.pruning.pruner import DEFAULT_ROUND_TO, PruneSettings

    assert PruneSettings().round_to == DEFAULT_ROUND_TO == 16
    assert inspect.signature(api.prune).parameters["round_to"].default == DEFAULT_ROUND_TO
    assert inspect.signature(prune).parameters["round_to"].default == DEFAULT_ROUND_TO
