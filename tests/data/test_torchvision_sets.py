"""Fine-grained torchvision sets: offline failures say what to do (no network is touched)."""

import urllib.error

import pytest
import torchvision

from fa_compress.data import load_dataset
from fa_compress.data.torchvision_sets import TORCHVISION_SETS
from fa_compress.errors import NotFoundError
from fa_compress.models import IMAGENET_NORMALIZATION


def test_every_documented_set_is_registered():
    assert sorted(TORCHVISION_SETS) == ["dtd", "fgvc-aircraft", "flowers102", "food101", "oxford-pets", "stanford-cars"]
    for spec in TORCHVISION_SETS.values():
        assert hasattr(torchvision.datasets, spec.class_name)


def test_offline_download_failure_suggests_offline_datasets(tmp_path, monkeypatch):
    calls = []

    def offline(root, split, transform, download):
        calls.append((root, split, download))
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torchvision.datasets, "Flowers102", offline)
    with pytest.raises(NotFoundError) as info:
        load_dataset("flowers102", root=tmp_path, normalization=IMAGENET_NORMALIZATION)
    message = str(info.value)
    assert "needs internet once" in message
    assert "data_root" in message and "fashion-mnist" in message and "imagefolder:PATH" in message
    assert calls == [(str(tmp_path), "train", True)]


def test_stanford_cars_is_never_downloaded(tmp_path, monkeypatch):
    calls = []

    def absent(root, split, transform, download):
        calls.append(download)
        raise RuntimeError("Dataset not found.")

    monkeypatch.setattr(torchvision.datasets, "StanfordCars", absent)
    with pytest.raises(NotFoundError, match="cannot be downloaded any more"):
        load_dataset("stanford-cars", root=tmp_path, normalization=IMAGENET_NORMALIZATION)
    assert calls == [False]
