"""The dataset a run was fine-tuned on, reloaded from what its manifest recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import NotFoundError
from .run import Run


def finetune_options(run: Run) -> dict[str, Any]:
    """The options `finetune` recorded in the run; `NotFoundError` when the run has none."""
    stage = run.stage("finetune")
    if not stage or stage.get("status") != "done":
        raise NotFoundError(f"run {run.path} has no finished fine-tuning; run `facompress finetune` first")
    return stage["options"]


def train_config_of_run(run: Run):
    """The `TrainConfig` the run was fine-tuned with."""
    from .train.config import TrainConfig

    return TrainConfig.from_dict(finetune_options(run)["train"])


def dataset_of_run(run: Run, *, limit_train: int | None | str = "same", limit_test: int | None | str = "same"):
    """`load_dataset` with the spec, root, size, normalisation and limits the run used.

    `limit_train`/`limit_test`: "same" keeps the run's own limits; an int or None overrides them.
    """
    from .data import load_dataset
    from .models import get_spec

    opts = finetune_options(run)
    train = opts["train"]
    return load_dataset(
        opts["data"], root=Path(opts["data_root"]) if opts.get("data_root") else None,
        img_size=opts["img_size"], normalization=get_spec(opts["model"]).normalization,
        limit_train=opts["limit_train"] if limit_train == "same" else limit_train,
        limit_test=opts["limit_test"] if limit_test == "same" else limit_test, seed=train["seed"])
