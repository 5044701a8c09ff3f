"""Fashion-MNIST from its IDX files, resized once and kept as uint8 tensors in memory.

Where the files are looked for, in order: `root` (the files themselves, `root/fashion-mnist/`
or torchvision's `root/FashionMNIST/raw/`), Debian's `/usr/share/datasets/fashion-mnist/`
(`apt-get install dataset-fashion-mnist`), then a torchvision download into `root` or
`~/.cache/facompress/datasets`.
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError, NotFoundError
from ..models import Normalization
from ._bundle import DatasetBundle
from ._split import DEFAULT_VAL_FRACTION, MIN_VAL_PER_CLASS, Pool, make_splits
from .img_size import DeclaredSize
from .memory import InMemoryImageDataset

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_DOWNLOAD_ROOT = Path.home() / ".cache" / "facompress" / "datasets"
_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# Fine-tuned at 64 px unless asked otherwise, not at a pretrained model's 224: the 28-px images hold no detail
# a larger upscale adds, 224 px costs (224/64)^2 = 12x the compute per image, and the 10-class figures in
# docs/decisions/ and the README were all measured at 64 px (Lite0: 87.75% after head,gates,gates,gates).
DECLARED_SIZE = DeclaredSize(image_px=28, img_size=64)
_RESIZE_CHUNK = 4096  # images resized per step: bounds the float32 copy to ~70 MB at 64 px


def load_fashion_mnist(
    root: Path | None,
    img_size: int,
    normalization: Normalization,
    limit_train: int | None,
    limit_test: int | None,
    seed: int,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    val_min_per_class: int = MIN_VAL_PER_CLASS,
) -> DatasetBundle:
    """Fashion-MNIST as a `DatasetBundle` of in-memory datasets at `img_size` px; the validation
    split is carved from the 60,000 training images (only the images kept are resized)."""
    folder, source = _locate(root)
    pools = {}
    for split in ("train", "test"):
        images = torch.from_numpy(read_idx(_find_file(folder, _FILES[f"{split}_images"])))  # (N, 28, 28) uint8
        labels = torch.from_numpy(read_idx(_find_file(folder, _FILES[f"{split}_labels"])).astype(np.int64))  # (N,)
        pools[split] = Pool(labels, functools.partial(_view, images, labels, img_size, normalization))
    splits = make_splits(pools["train"], pools["test"], None, classes=CLASSES, val_fraction=val_fraction,
                         limit_train=limit_train, limit_test=limit_test, seed=seed,
                         val_min_per_class=val_min_per_class)
    return DatasetBundle("fashion-mnist", splits.train, splits.val, splits.test, list(CLASSES), source,
                         splits.validation)


def _view(images: torch.Tensor, labels: torch.Tensor, img_size: int, normalization: Normalization,
          indices: list[int], augment: bool) -> InMemoryImageDataset:
    """The images at `indices`, resized: (n, 28, 28) -> (n, 1, S, S); flipped at random when `augment`."""
    keep = torch.tensor(indices, dtype=torch.long)
    resized = resize_uint8(images[keep].unsqueeze(1), img_size)
    return InMemoryImageDataset(resized, labels[keep], normalization, flip=augment)


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (plain or gzip) as a uint8 array of its stored shape (a fresh copy)."""
    stat = path.stat()
    return _read_idx_cached(path.resolve(), stat.st_mtime_ns, stat.st_size).copy()


@functools.lru_cache(maxsize=4)  # the four files: repeated loads in one process skip the gunzip
def _read_idx_cached(path: Path, mtime_ns: int, size: int) -> np.ndarray:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0:2] != b"\x00\x00" or raw[2] != 0x08:
        raise CheckpointError(f"{path} is not an IDX file of unsigned bytes; re-download it")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(shape)):
        raise CheckpointError(f"{path} is truncated: header says {shape}, has {len(raw) - offset} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape)


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear, antialiased resize of uint8 (N, C, H, W) images to (N, C, size, size), still uint8."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images.contiguous()
    out = torch.empty((*images.shape[:2], size, size), dtype=torch.uint8)  # (N, C, S, S)
    for start in range(0, images.shape[0], _RESIZE_CHUNK):
        chunk = images[start : start + _RESIZE_CHUNK].float()  # (n, C, H, W)
        chunk = torch.nn.functional.interpolate(chunk, size=(size, size), mode="bilinear", antialias=True)
        out[start : start + _RESIZE_CHUNK] = chunk.round_().clamp_(0, 255).to(torch.uint8)
    return out


def _candidates(root: Path | None) -> list[Path]:
    folders = [root, root / "fashion-mnist", root / "FashionMNIST" / "raw"] if root is not None else []
    return [*folders, DEBIAN_DIR]


def _locate(root: Path | None) -> tuple[Path, str]:
    """The folder holding all four files, and a description of where it came from."""
    for folder in _candidates(root):
        if all(_find_file(folder, name, required=False) for name in _FILES.values()):
            return folder, f"IDX files in {folder}"
    download_root = root if root is not None else DEFAULT_DOWNLOAD_ROOT
    _download(download_root)
    folder = download_root / "FashionMNIST" / "raw"
    return folder, f"downloaded by torchvision into {folder}"


def _find_file(folder: Path, name: str, *, required: bool = True) -> Path | None:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    if required:
        raise NotFoundError(f"{folder} lacks {name}(.gz)")
    return None


def _download(root: Path) -> None:
    import torchvision

    try:
        root.mkdir(parents=True, exist_ok=True)
        torchvision.datasets.FashionMNIST(str(root), train=True, download=True)
        torchvision.datasets.FashionMNIST(str(root), train=False, download=True)
    except (OSError, RuntimeError) as exc:  # offline: RuntimeError("Error downloading ...")
        looked = ", ".join(str(p) for p in _candidates(None if root == DEFAULT_DOWNLOAD_ROOT else root))
        reason = str(exc).strip().split("\n")[-1]
        raise NotFoundError(
            f"Fashion-MNIST IDX files are not in {looked} and downloading them into {root} failed "
            f"({reason}). On Debian: apt-get install dataset-fashion-mnist; or put the four "
            f"*-idx*-ubyte(.gz) files in the folder given as data_root"
        ) from exc
