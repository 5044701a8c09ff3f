"""`imagefolder:PATH` — a folder of class subfolders of images.

Layouts: `PATH/train/<class>/*` with `PATH/val/<class>/*` (or `PATH/test/`); or `PATH/<class>/*`
alone (also `PATH/train/` alone), split 80/20 per class by the seed. Every image is checked at load
time (PIL's verify(); JPEGs are decoded at 1/8 scale, ~1 ms each, since verify() misses truncated
JPEGs); unreadable files are left out and counted, and more than 5% of them is an error
(probably the wrong folder).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from ..errors import ConfigError, NotFoundError, UserError
from ..models import Normalization
from ._bundle import DatasetBundle
from ._subset import balanced_subset
from .files import ImageFileDataset
from .transforms import eval_transform, train_transform

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
MAX_BAD_FRACTION = 0.05
TEST_FRACTION = 0.2  # single-folder layout: share of each class held out for testing
_TEST_DIR_NAMES = ("val", "test")

Samples = list[tuple[Path, int]]


def load_imagefolder(
    path: Path,
    img_size: int,
    normalization: Normalization,
    limit_train: int | None,
    limit_test: int | None,
    seed: int,
) -> DatasetBundle:
    """Load an image-folder dataset; see the module docstring for the layouts."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise NotFoundError(f"image folder {path} does not exist")
    train_dir = path / "train" if (path / "train").is_dir() else path
    test_dir = next((path / n for n in _TEST_DIR_NAMES if (path / n).is_dir()), None) if train_dir != path else None
    train_files = _scan(train_dir)
    classes = _check_classes(train_dir, sorted(train_files))
    train = _labelled(train_files, classes)
    test: Samples = []
    if test_dir is not None:
        test_files = _scan(test_dir)
        unknown = sorted(set(test_files) - set(classes))
        if unknown:
            raise ConfigError(f"{test_dir} has classes missing from {train_dir}: {', '.join(unknown)}")
        test = _labelled(test_files, classes)
        source = f"image folders {train_dir} and {test_dir}"
    (train, test), skipped = _verified(train, test)
    if test_dir is None:
        train, test = split_per_class(train, TEST_FRACTION, seed)
        source = f"image folder {train_dir}, {TEST_FRACTION:.0%} of each class held out (seed {seed})"
    if not train or not test:
        raise NotFoundError(f"{path} has too few readable images to make a train and a test split")
    train, test = _limited(train, limit_train, seed), _limited(test, limit_test, seed + 1)
    return DatasetBundle(
        f"imagefolder:{path}",
        ImageFileDataset(train, train_transform(img_size, normalization)),
        ImageFileDataset(test, eval_transform(img_size, normalization)),
        classes,
        skipped,
        source,
    )


def split_per_class(samples: Samples, test_fraction: float, seed: int) -> tuple[Samples, Samples]:
    """Seeded per-class split; a class of n >= 2 images keeps >= 1 in each part."""
    generator = torch.Generator().manual_seed(seed)
    by_class: dict[int, Samples] = {}
    for sample in samples:
        by_class.setdefault(sample[1], []).append(sample)
    train: Samples = []
    test: Samples = []
    for label in sorted(by_class):
        items = by_class[label]
        order = torch.randperm(len(items), generator=generator).tolist()
        n_test = min(max(round(test_fraction * len(items)), 1), len(items) - 1) if len(items) >= 2 else 0
        test += [items[i] for i in order[:n_test]]
        train += [items[i] for i in order[n_test:]]
    return sorted(train), sorted(test)


def _scan(folder: Path) -> dict[str, list[Path]]:
    """Class folder name -> its image files (searched recursively), for folders holding any."""
    files = {}
    for class_dir in sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")):
        images = sorted(p for p in class_dir.rglob("*") if _is_image_name(p))
        if images:
            files[class_dir.name] = images
    return files


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMG_EXTENSIONS and not path.name.startswith(".") and path.is_file()


def _check_classes(folder: Path, names: list[str]) -> list[str]:
    if not names:
        raise NotFoundError(
            f"{folder} holds no class folders with images ({', '.join(IMG_EXTENSIONS)}); "
            f"expected {folder}/<class>/<image> or {folder}/train/<class>/<image>"
        )
    if len(names) < 2:
        raise ConfigError(f"{folder} has one class folder ({names[0]}); a classifier needs at least 2")
    return names


def _labelled(files: dict[str, list[Path]], classes: list[str]) -> Samples:
    return [(p, classes.index(name)) for name in sorted(files) for p in files[name]]


def _verified(*splits: Samples) -> tuple[list[Samples], int]:
    """Each split without the images whose header PIL cannot verify, and how many were dropped."""
    paths = [p for split in splits for p, _ in split]
    workers = min(8, 2 * (os.cpu_count() or 1))  # the check is mostly file I/O: threads overlap it
    with ThreadPoolExecutor(workers) as pool:
        readable = dict(zip(paths, pool.map(_readable, paths)))
    bad = [p for p in paths if not readable[p]]
    if len(bad) > MAX_BAD_FRACTION * len(paths):
        raise UserError(
            f"{len(bad)} of {len(paths)} images cannot be read (more than {MAX_BAD_FRACTION:.0%}), "
            f"e.g. {', '.join(str(p) for p in bad[:3])}; is this the right folder?"
        )
    return [[s for s in split if readable[s[0]]] for split in splits], len(bad)


def _readable(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.format == "JPEG":
                # verify() checks nothing in a JPEG; a decode at 1/8 scale (~1 ms) reads the whole
                # stream and so catches truncated files, the usual damage in scraped datasets.
                image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
            else:
                image.verify()  # header and chunk checksums (PNG), without decoding pixels
    except Exception:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError, struct.error, ...
        return False
    return True


def _limited(samples: Samples, limit: int | None, seed: int) -> Samples:
    keep = balanced_subset([label for _, label in samples], limit, seed)
    return samples if keep is None else [samples[i] for i in keep.tolist()]
