"""A tiny finished run (mobilenet_v2 fine-tuned on fake 32 px images, exported to ONNX), made once per
session; tests work on private copies of it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

TINY = {"model": "mobilenet_v2", "weights": "none", "data": "fake", "img_size": 32, "limit_train": 64,
        "limit_test": 32}


@pytest.fixture(scope="session")
def finished_run_base(tmp_path_factory) -> Path:
    """Fine-tuned (one `head` phase) and exported; never modified."""
    from fa_compress.export.pipeline import ExportOptions, export_run
    from fa_compress.train.config import TrainConfig
    from fa_compress.train.stage import FinetuneOptions, finetune_run

    root = tmp_path_factory.mktemp("finished_run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACOMPRESS_RUNS", str(root / "runs"))
        run, _ = finetune_run(FinetuneOptions(**TINY, train=TrainConfig(schedule=("head",)), show_progress=False,
                                              run=root / "run"))
        export_run(run, ExportOptions())
    return run.path


@pytest.fixture
def finished_run(finished_run_base, tmp_path) -> Path:
    """A private copy of the tiny finished run."""
    return Path(shutil.copytree(finished_run_base, tmp_path / "run"))
