"""The validation split: carved once, seeded, stratified, disjoint from train and test, reproducible
from a run; or the dataset's own; bad fractions refused."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fa_compress.data import load_dataset
from fa_compress.data._split import Pool, carve_validation, make_splits
from fa_compress.errors import CheckpointError, ConfigError
from fa_compress.models import IMAGENET_NORMALIZATION

CLASSES = ["a", "b", "c"]


def _labels() -> torch.Tensor:
    return torch.tensor([0] * 50 + [1] * 30 + [2] * 20)  # (100,) unbalanced on purpose


def test_carve_is_stratified_disjoint_and_seeded():
    labels = _labels()
    train, val = carve_validation(labels, 0.1, seed=3, classes=CLASSES, min_per_class=0)
    assert set(train.tolist()).isdisjoint(val.tolist())
    assert sorted(train.tolist() + val.tolist()) == list(range(100))
    assert torch.bincount(labels[val]).tolist() == [5, 3, 2]  # round(0.1 * n) of every class (no floor)
    again, _ = carve_validation(labels, 0.1, seed=3, classes=CLASSES, min_per_class=0)
    other_train, other_val = carve_validation(labels, 0.1, seed=4, classes=CLASSES, min_per_class=0)
    assert torch.equal(again, train)
    assert not torch.equal(other_val, val) and torch.bincount(labels[other_val]).tolist() == [5, 3, 2]


def _index_pool(labels: torch.Tensor, offset: int = 0) -> Pool:
    """A pool whose datasets are the chosen indices themselves (offset tells the pools apart)."""
    return Pool(labels, lambda indices, augment: [(offset + i, augment) for i in indices])


def test_splits_are_disjoint_and_limits_keep_the_validation_share():
    train_pool, test_pool = _index_pool(_labels()), _index_pool(torch.arange(40) % 3, offset=1000)
    splits = make_splits(train_pool, test_pool, None, classes=CLASSES, val_fraction=0.2, limit_train=30,
                         limit_test=12, seed=0, val_min_per_class=0)  # the fraction alone: no floor
    train = [i for i, _ in splits.train]
    val = [i for i, _ in splits.val]
    test = [i for i, _ in splits.test]
    assert len(train) == 30 and len(test) == 12
    assert set(train).isdisjoint(val) and not set(test) & set(train + val)
    assert len(val) == round(20 * 30 / 80)  # the 20 carved images cut by the share of training kept
    assert {augment for _, augment in splits.train} == {True}  # training augmentation on train only
    assert {augment for _, augment in splits.val + splits.test} == {False}
    assert splits.validation.fraction == 0.2 and splits.validation.images == len(val)


def test_same_arguments_same_split_other_seed_other_split():
    pools = (_index_pool(_labels()), _index_pool(torch.arange(9) % 3, offset=1000), None)
    kwargs = dict(classes=CLASSES, val_fraction=0.1, limit_train=None, limit_test=None)
    a, b, c = (make_splits(*pools, seed=s, **kwargs) for s in (0, 0, 1))
    assert a.val == b.val and a.validation.fingerprint == b.validation.fingerprint
    assert a.val != c.val and a.validation.fingerprint != c.validation.fingerprint


@pytest.mark.parametrize("fraction", [0, -0.1, 0.51, 1.0, True])
def test_fraction_out_of_range_is_refused(fraction):
    with pytest.raises(ConfigError, match=r"val_fraction must be in \(0, 0.5\]"):
        carve_validation(_labels(), fraction, seed=0, classes=CLASSES)


def test_a_class_left_without_validation_image_is_refused_with_the_fraction_that_works():
    with pytest.raises(ConfigError, match=r"leaves class 'c' \(4 training images\) with no validation image; "
                                          r"use val_fraction 0.13"):
        carve_validation(torch.tensor([0] * 40 + [1] * 40 + [2] * 4), 0.1, seed=0, classes=CLASSES,
                         min_per_class=0)


def _write(folder: Path, count: int, seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(folder / f"{seed}_{i}.png")


def _load(path: Path, **kwargs):
    return load_dataset(f"imagefolder:{path}", img_size=16, normalization=IMAGENET_NORMALIZATION, **kwargs)


def test_image_folder_splits_are_disjoint_files(tmp_path):
    _write(tmp_path / "a", 20, seed=0)
    _write(tmp_path / "b", 20, seed=1)
    bundle = _load(tmp_path, val_fraction=0.25)
    files = {name: {p for p, _ in getattr(bundle, name).samples} for name in ("train", "val", "test")}
    assert len(files["val"]) == 8  # round(0.25 * 16) of each class's 16 training images
    assert not files["train"] & files["val"] and not (files["train"] | files["val"]) & files["test"]
    assert len(files["train"] | files["val"] | files["test"]) == 40
    assert bundle.validation.source == "carved from the training split"


def test_image_folder_own_validation_folder_is_used(tmp_path):
    for split, count in (("train", 6), ("val", 2), ("test", 3)):
        for c, seed in (("a", 0), ("b", 1)):
            _write(tmp_path / split / c, count, seed=seed + 10 * len(split))
    bundle = _load(tmp_path)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (12, 4, 6)
    assert all(p.parent.parent.name == "val" for p, _ in bundle.val.samples)
    assert bundle.validation.fraction is None and "own" in bundle.validation.source


def test_a_run_reloads_its_own_validation_split_and_notices_a_changed_folder(tmp_path):
    from fa_compress.data import check_same_validation, dataset_of_run
    from fa_compress.train import TrainConfig
    from fa_compress.train.stage import FinetuneOptions, finetune_run

    _write(tmp_path / "img" / "a", 15, seed=0)
    _write(tmp_path / "img" / "b", 15, seed=1)
    run, _ = finetune_run(FinetuneOptions(
        model="resnet18", weights="none", data=f"imagefolder:{tmp_path / 'img'}", img_size=16, limit_train=None,
        limit_test=None, val_fraction=0.2, run=tmp_path / "run", show_progress=False,
        train=TrainConfig(schedule=("head",), batch_size=8, seed=5)))
    recorded = run.stage("finetune")["dataset"]
    reloaded = dataset_of_run(run)
    assert recorded["validation"]["fingerprint"] == reloaded.validation.fingerprint
    # 12 training images a class: round(0.2 * 12) = 2 raised to a quarter of 12 = 3 (the floor, capped)
    assert recorded["val_images"] == len(reloaded.val) == 6 and recorded["validation"]["seed"] == 5
    assert recorded["validation"]["min_per_class"] == 20 and recorded["validation"]["max_share"] == 0.25
    check_same_validation(run, reloaded)  # no error
    _write(tmp_path / "img" / "a", 3, seed=7)  # files added since: the carve moves
    with pytest.raises(CheckpointError, match="no longer gives the validation split"):
        check_same_validation(run, dataset_of_run(run))
