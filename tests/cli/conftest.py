"""Fixtures of the bad-input battery: the base runs every case copies, made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from fa_compress.cli.app import main
from tests.cli.bad_input_scene import TINY, Scene


# ---- the runs every case copies -------------------------------------------------------------------
def _cli_ok(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0, f"setup command failed: {argv}"


@pytest.fixture(scope="session")
def base_runs(tmp_path_factory) -> dict[str, Path]:
    """{"gated": fine-tuned with gates + pruned + exported, "ungated": fine-tuned without gates}."""
    root = tmp_path_factory.mktemp("bad_input_base")
    gated, ungated = root / "gated", root / "ungated"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACOMPRESS_RUNS", str(root / "runs"))
        _cli_ok(["finetune", *TINY, "--schedule", "head,gates", "--run", str(gated)])
        _cli_ok(["prune", "--run", str(gated), "--keep", "0.5", "--recover-epochs", "0", "--quiet"])
        _cli_ok(["export", "--run", str(gated)])
        _cli_ok(["finetune", *TINY, "--schedule", "head", "--run", str(ungated)])
    assert (gated / "pruned.onnx").is_file() and (ungated / "finetuned.safetensors").is_file()
    return {"gated": gated, "ungated": ungated}


@pytest.fixture(scope="session")
def resnet18_file(tmp_path_factory) -> Path:
    """A facompress model file of another architecture (resnet18, 10 classes, untrained)."""
    from fa_compress.models import build_model, get_spec
    from fa_compress.models.saved import model_meta, save_model

    norm = get_spec("resnet18").normalization
    model = build_model("resnet18", 10, weights="none")
    meta = model_meta(model, arch="resnet18", classes=[f"class_{i}" for i in range(10)], img_size=32,
                      normalization={"mean": list(norm.mean), "std": list(norm.std)})
    path = tmp_path_factory.mktemp("other_arch") / "resnet18.safetensors"
    save_model(path, model, meta)
    return path


@pytest.fixture
def scene(tmp_path, base_runs, resnet18_file) -> Scene:
    return Scene(tmp_path, base_runs, resnet18_file)
