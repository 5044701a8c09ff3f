"""The dataset a run was fine-tuned on, reloaded from what its manifest recorded."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from .errors import CheckpointError, ConfigError, NotFoundError
from .run import Run


def finetune_options(run: Run) -> dict[str, Any]:
    """The options `finetune` recorded in the run; `NotFoundError` when the run has none."""
    stage = run.stage("finetune")
    if not stage or stage.get("status") != "done":
        raise NotFoundError(f"run {run.path} has no finished fine-tuning; run `facompress finetune` first")
    return stage["options"]


def train_config_of_run(run: Run):
    """The `TrainConfig` the run was fine-tuned with; `CheckpointError` when the manifest records
    settings this facompress does not have (a newer version wrote it) or values out of range."""
    from .train.config import TrainConfig

    recorded = finetune_options(run)["train"]
    try:
        return TrainConfig.from_dict(recorded)
    except (TypeError, ConfigError) as exc:
        known = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(recorded) - known)
        problem = (f"has settings this facompress does not know: {', '.join(unknown)}" if unknown
                   else f"does not make a training configuration ({exc})")
        by = run.manifest.get("written_by", "an unknown facompress")
        raise CheckpointError(f"{run.manifest_path}: field stages.finetune.options.train {problem}; written by "
                              f"{by}: use that version, or re-run `facompress finetune`") from None


def dataset_of_run(run: Run, *, limit_train: int | None | str = "same", limit_test: int | None | str = "same"):
    """`load_dataset` with the spec, root, size, normalisation, limits, seed and validation fraction
    the run used, so the train / validation / test splits are the run's own.

    `limit_train`/`limit_test`: "same" keeps the run's own limits; an int or None overrides them
    (a different `limit_train` also changes the validation split: see `data/_split.py`).
    """
    from .data import DEFAULT_VAL_FRACTION, load_dataset
    from .models import get_spec

    opts = finetune_options(run)
    train = opts["train"]
    return load_dataset(
        opts["data"], root=Path(opts["data_root"]) if opts.get("data_root") else None,
        img_size=opts["img_size"], normalization=get_spec(opts["model"]).normalization,
        limit_train=opts["limit_train"] if limit_train == "same" else limit_train,
        limit_test=opts["limit_test"] if limit_test == "same" else limit_test, seed=train["seed"],
        val_fraction=opts.get("val_fraction", DEFAULT_VAL_FRACTION))  # runs made before it: the default


def check_same_validation(run: Run, bundle) -> None:
    """`CheckpointError` when `bundle`'s validation split is not the one the run fine-tuned with (files
    added or removed in an image folder since): choosing on it could read images the model trained on."""
    recorded = ((run.stage("finetune") or {}).get("dataset") or {}).get("validation") or {}
    fingerprint = recorded.get("fingerprint")
    if fingerprint is not None and fingerprint != bundle.validation.fingerprint:
        raise CheckpointError(f"the dataset of run {run.path} no longer gives the validation split it was "
                              f"fine-tuned with (fingerprint {bundle.validation.fingerprint}, recorded "
                              f"{fingerprint}): its files changed; restore them or fine-tune a new run")
