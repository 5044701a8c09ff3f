"""`imagefolder:PATH`: layouts, corrupt files, errors."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fa_compress.data import load_dataset, make_loader
from fa_compress.errors import ConfigError, NotFoundError, UserError
from fa_compress.models import IMAGENET_NORMALIZATION


def _write_images(folder: Path, count: int, seed: int, *, gray: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        shape = (20, 24) if gray else (20, 24, 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / f"img_{i}.png")


def _load(path: Path, **kwargs):
    return load_dataset(f"imagefolder:{path}", img_size=16, normalization=IMAGENET_NORMALIZATION, **kwargs)


def test_single_folder_is_split_per_class_and_corrupt_file_is_skipped(tmp_path):
    _write_images(tmp_path / "cat", 12, seed=0, gray=True)  # grayscale PNGs must come out with 3 channels
    _write_images(tmp_path / "dog", 12, seed=1)
    (tmp_path / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    bundle = _load(tmp_path)
    assert bundle.classes == ["cat", "dog"]
    assert bundle.skipped_images == 1 and bundle.skipped.by_reason == {"truncated or damaged": 1}
    assert bundle.skipped.ignored_files == 1  # notes.txt
    assert len(bundle.train) + len(bundle.val) + len(bundle.test) == 24
    assert len(bundle.test) == 4  # round(0.2 * 12) readable images of each class
    assert len(bundle.val) == 4  # round(0.1 * 10) raised to a quarter of each class's 10 training images: 2
    assert {label for _, label in bundle.test.samples} == {0, 1}
    assert all(path.name != "broken.png" for path, _ in bundle.train.samples + bundle.test.samples)
    x, y = bundle.train[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and y in (0, 1)
    assert "held out" in bundle.source


def test_split_is_seeded(tmp_path):
    _write_images(tmp_path / "a", 10, seed=0)
    _write_images(tmp_path / "b", 10, seed=1)
    first, again, other = _load(tmp_path, seed=3), _load(tmp_path, seed=3), _load(tmp_path, seed=4)
    assert first.test.samples == again.test.samples
    assert first.test.samples != other.test.samples


def test_train_and_val_folders_are_used_as_given(tmp_path):
    for split, count in (("train", 6), ("val", 3)):
        _write_images(tmp_path / split / "a", count, seed=0)
        _write_images(tmp_path / split / "b", count, seed=1)
    bundle = _load(tmp_path, limit_train=4)
    assert (len(bundle.train), len(bundle.test)) == (4, 6)
    assert sorted(label for _, label in bundle.train.samples) == [0, 0, 1, 1]
    assert bundle.source == f"image folders {tmp_path / 'train'} and {tmp_path / 'val'}"
    x, _ = bundle.test[0]
    torch.testing.assert_close(bundle.test[0][0], x)  # evaluation transform is deterministic
    batch, labels = next(iter(make_loader(bundle.test, 6, shuffle=False, workers=0)))
    assert batch.shape == (6, 3, 16, 16) and labels.tolist() == [0, 0, 0, 1, 1, 1]


def test_validation_classes_must_exist_in_train(tmp_path):
    _write_images(tmp_path / "train" / "a", 2, seed=0)
    _write_images(tmp_path / "train" / "b", 2, seed=0)
    _write_images(tmp_path / "val" / "c", 2, seed=0)
    with pytest.raises(ConfigError, match="classes missing from .*: c"):
        _load(tmp_path)


def test_too_many_unreadable_images_is_an_error(tmp_path):
    _write_images(tmp_path / "a", 5, seed=0)
    _write_images(tmp_path / "b", 5, seed=1)
    for i in range(2):
        (tmp_path / "a" / f"bad_{i}.jpg").write_bytes(b"garbage")
    with pytest.raises(UserError, match="2 of 12 images cannot be read"):
        _load(tmp_path)


def test_missing_empty_and_single_class_folders(tmp_path):
    with pytest.raises(NotFoundError, match=str(tmp_path / "absent")):
        _load(tmp_path / "absent")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(NotFoundError, match=f"{tmp_path / 'empty'} holds no class folders"):
        _load(tmp_path / "empty")
    _write_images(tmp_path / "one" / "a", 3, seed=0)
    with pytest.raises(ConfigError, match="at least 2"):
        _load(tmp_path / "one")
    with pytest.raises(ConfigError, match="needs a path"):
        load_dataset("imagefolder:", normalization=IMAGENET_NORMALIZATION)


def test_truncated_jpeg_is_caught_at_load_time_and_workers_decode_the_rest(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(tmp_path / name / f"{i}.jpg")
    whole = (tmp_path / "a" / "0.jpg").read_bytes()
    (tmp_path / "a" / "0.jpg").write_bytes(whole[: len(whole) // 2])  # header intact, data cut
    bundle = _load(tmp_path)
    assert bundle.skipped_images == 1
    assert len(bundle.train) + len(bundle.val) + len(bundle.test) == 19
    loader = make_loader(bundle.train, 5, shuffle=True, workers=1)
    shapes = [tuple(x.shape) for x, _ in loader]
    assert len(bundle.train) == 12  # 19 readable - 4 test - 3 validation (a quarter of 7 and of 8, rounded down)
    assert shapes == [(5, 3, 16, 16)] * 2 + [(2, 3, 16, 16)]
