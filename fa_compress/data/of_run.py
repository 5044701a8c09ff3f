"""The dataset a run was fine-tuned on, reloaded from what its manifest recorded."""

from __future__ import annotations

from pathlib import Path

from ..errors import CheckpointError
from ..models import get_spec
from ..run import Run, finetune_options
from ._load import load_dataset
from ._val_fraction import DEFAULT_VAL_FRACTION


def dataset_of_run(run: Run, *, limit_train: int | None | str = "same", limit_test: int | None | str = "same"):
    """`load_dataset` with the spec, root, size, normalisation, limits, seed and validation rule
    the run used, so the train / validation / test splits are the run's own.

    `limit_train`/`limit_test`: "same" keeps the run's own limits; an int or None overrides them
    (a different `limit_train` also changes the validation split: see `data/_split.py`).
    """
    opts = finetune_options(run)
    train = opts["train"]
    return load_dataset(
        opts["data"], root=Path(opts["data_root"]) if opts.get("data_root") else None,
        img_size=opts["img_size"], normalization=get_spec(opts["model"]).normalization,
        limit_train=opts["limit_train"] if limit_train == "same" else limit_train,
        limit_test=opts["limit_test"] if limit_test == "same" else limit_test, seed=train["seed"],
        val_fraction=opts.get("val_fraction", DEFAULT_VAL_FRACTION),  # runs made before it: the default
        val_min_per_class=opts.get("val_min_per_class", 0))  # runs made before the floor: the fraction alone


def check_same_validation(run: Run, bundle) -> None:
    """`CheckpointError` when `bundle`'s validation split is not the one the run fine-tuned with (files
    added or removed in an image folder since): choosing on it could read images the model trained on."""
    recorded = ((run.stage("finetune") or {}).get("dataset") or {}).get("validation") or {}
    fingerprint = recorded.get("fingerprint")
    if fingerprint is not None and fingerprint != bundle.validation.fingerprint:
        raise CheckpointError(f"the dataset of run {run.path} no longer gives the validation split it was "
                              f"fine-tuned with (fingerprint {bundle.validation.fingerprint}, recorded "
                              f"{fingerprint}): its files changed; restore them or fine-tune a new run")
