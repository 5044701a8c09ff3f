"""Fashion-MNIST from Debian's IDX files."""

import gzip
from pathlib import Path

import pytest
import torch

from fa_compress.data import fashion_mnist, load_dataset
from fa_compress.errors import CheckpointError, NotFoundError
from fa_compress.models import IMAGENET_NORMALIZATION

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
needs_debian_files = pytest.mark.skipif(
    not (DEBIAN / "t10k-images-idx3-ubyte.gz").is_file(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)


@needs_debian_files
def test_loads_limited_balanced_splits_at_64px():
    bundle = load_dataset(
        "fashion-mnist", img_size=64, normalization=IMAGENET_NORMALIZATION, limit_train=200, limit_test=100
    )
    assert bundle.classes[0] == "T-shirt/top" and len(bundle.classes) == 10
    assert (len(bundle.train), len(bundle.test)) == (200, 100)
    assert bundle.source == f"IDX files in {DEBIAN}"
    assert bundle.skipped_images == 0
    x, y = bundle.test[0]
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32
    assert isinstance(y, int) and 0 <= y <= 9
    assert torch.bincount(bundle.train.labels, minlength=10).tolist() == [20] * 10
    assert torch.bincount(bundle.test.labels, minlength=10).tolist() == [10] * 10


@needs_debian_files
def test_pixels_are_normalised_per_channel_from_grayscale():
    bundle = load_dataset("fashion-mnist", img_size=32, normalization=IMAGENET_NORMALIZATION, limit_test=10)
    x, _ = bundle.test[0]
    raw = bundle.test.images[0, 0].float() / 255  # (H, W) in [0, 1]
    for c in range(3):
        expected = (raw - IMAGENET_NORMALIZATION.mean[c]) / IMAGENET_NORMALIZATION.std[c]
        torch.testing.assert_close(x[c], expected)
    torch.testing.assert_close(bundle.test[0][0], x)  # no random flip on the test split


@needs_debian_files
def test_same_seed_same_subset_other_seed_other_subset():
    kwargs = dict(img_size=16, normalization=IMAGENET_NORMALIZATION, limit_train=50, limit_test=10)
    a = load_dataset("fashion-mnist", seed=0, **kwargs)
    b = load_dataset("fashion-mnist", seed=0, **kwargs)
    c = load_dataset("fashion-mnist", seed=1, **kwargs)
    assert torch.equal(a.train.images, b.train.images)
    assert not torch.equal(a.train.images, c.train.images)


@needs_debian_files
def test_root_is_searched_before_the_debian_folder(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for path in DEBIAN.glob("*.gz"):
        (raw / path.name).symlink_to(path)
    bundle = load_dataset(
        "fashion-mnist", root=tmp_path, img_size=28, normalization=IMAGENET_NORMALIZATION, limit_train=10, limit_test=10
    )
    assert bundle.source == f"IDX files in {raw}"
    assert bundle.train.images.shape == (10, 1, 28, 28)


def test_read_idx_parses_header_and_rejects_truncated_files(tmp_path):
    header = bytes([0, 0, 8, 3]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + (4).to_bytes(4, "big")
    good = tmp_path / "good-idx3-ubyte.gz"
    good.write_bytes(gzip.compress(header + bytes(range(24))))
    array = fashion_mnist.read_idx(good)
    assert array.shape == (2, 3, 4) and int(array[1, 2, 3]) == 23
    bad = tmp_path / "bad-idx3-ubyte"
    bad.write_bytes(header + bytes(10))
    with pytest.raises(CheckpointError, match="truncated"):
        fashion_mnist.read_idx(bad)


def test_missing_files_and_failed_download_say_how_to_install(tmp_path, monkeypatch):
    import torchvision

    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\n<urlopen error [Errno -2]>")

    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "absent")
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    with pytest.raises(NotFoundError) as info:
        load_dataset("fashion-mnist", root=tmp_path / "root", normalization=IMAGENET_NORMALIZATION)
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert str(tmp_path / "root") in message


def test_resize_uint8_keeps_dtype_and_constant_images():
    images = torch.full((3, 1, 28, 28), 77, dtype=torch.uint8)  # (N, C, H, W)
    out = fashion_mnist.resize_uint8(images, 64)
    assert out.shape == (3, 1, 64, 64) and out.dtype == torch.uint8
    assert torch.all(out == 77)
