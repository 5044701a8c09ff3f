"""`imagefolder:PATH` — a folder of class subfolders of images.

Layouts: `PATH/train/<class>/*` with `PATH/test/<class>/*` (or `PATH/val/` as the test split when
there is no `test/`); `PATH/train/`, `PATH/val/` and `PATH/test/` together give the dataset its own
validation split; or `PATH/<class>/*` alone (also `PATH/train/` alone), split 80/20 per class by the
seed. Without its own validation split, one is carved from the training images (`_split.py`).
Every image is checked at load time (PIL's verify(); JPEGs are decoded at 1/8 scale, ~1 ms each,
since verify() misses truncated JPEGs); unreadable files are left out and counted by reason, and
more than 5% of them is an error (probably the wrong folder).
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from ..errors import ConfigError, NotFoundError, UserError
from ..models import Normalization
from ._bundle import DatasetBundle
from ._skipped import EMPTY, NOT_AN_IMAGE, TOO_LARGE, TRUNCATED, SkippedImages
from ._split import DEFAULT_VAL_FRACTION, MIN_VAL_PER_CLASS, Pool, make_splits
from .files import ImageFileDataset
from .transforms import eval_transform, train_transform

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
MAX_BAD_FRACTION = 0.05
TEST_FRACTION = 0.2  # single-folder layout: share of each class held out for testing
_TEST_DIR_NAMES = ("test", "val")  # the first present is the test split; `val` beside `test` validates

Samples = list[tuple[Path, int]]


def load_imagefolder(
    path: Path,
    img_size: int,
    normalization: Normalization,
    limit_train: int | None,
    limit_test: int | None,
    seed: int,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    val_min_per_class: int = MIN_VAL_PER_CLASS,
) -> DatasetBundle:
    """Load an image-folder dataset; see the module docstring for the layouts."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise NotFoundError(f"image folder {path} does not exist")
    train_dir = path / "train" if (path / "train").is_dir() else path
    test_dir = next((path / n for n in _TEST_DIR_NAMES if (path / n).is_dir()), None) if train_dir != path else None
    val_dir = path / "val" if test_dir is not None and test_dir.name == "test" and (path / "val").is_dir() else None
    train_files, ignored = _scan(train_dir)
    classes = _check_classes(train_dir, sorted(train_files))
    parts = {"train": _labelled(train_files, classes), "test": [], "val": []}
    for name, folder in (("test", test_dir), ("val", val_dir)):
        if folder is not None:
            files, more = _scan(folder)
            ignored += more
            unknown = sorted(set(files) - set(classes))
            if unknown:
                raise ConfigError(f"{folder} has classes missing from {train_dir}: {', '.join(unknown)}")
            parts[name] = _labelled(files, classes)
    kept, skipped = _verified(parts, ignored)
    train, test, val = kept["train"], kept["test"], kept["val"]
    if test_dir is None:
        train, test = split_per_class(train, TEST_FRACTION, seed)
        source = f"image folder {train_dir}, {TEST_FRACTION:.0%} of each class held out (seed {seed})"
    else:
        source = f"image folders {train_dir} and {test_dir}" + (f", validation {val_dir}" if val_dir else "")
    if not train or not test:
        raise NotFoundError(f"{path} has too few readable images to make a train and a test split")
    splits = make_splits(_pool(train, img_size, normalization), _pool(test, img_size, normalization),
                         _pool(val, img_size, normalization) if val_dir is not None else None, classes=classes,
                         val_fraction=val_fraction, limit_train=limit_train, limit_test=limit_test, seed=seed,
                         val_min_per_class=val_min_per_class)
    return DatasetBundle(f"imagefolder:{path}", splits.train, splits.val, splits.test, classes, source,
                         splits.validation, skipped)


def _pool(samples: Samples, img_size: int, normalization: Normalization) -> Pool:
    labels = torch.tensor([label for _, label in samples], dtype=torch.long)  # (N,)
    return Pool(labels, functools.partial(_view, samples, img_size, normalization))


def _view(samples: Samples, img_size: int, normalization: Normalization, indices: list[int],
          augment: bool) -> ImageFileDataset:
    transform = train_transform if augment else eval_transform
    return ImageFileDataset([samples[i] for i in indices], transform(img_size, normalization))


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


def _scan(folder: Path) -> tuple[dict[str, list[Path]], int]:
    """Class folder name -> its image files (searched recursively), for folders holding any; and how
    many other files (no image extension, not hidden) the class folders hold."""
    files = {}
    ignored = 0
    for class_dir in sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")):
        found = [p for p in class_dir.rglob("*") if p.is_file() and not p.name.startswith(".")]
        images = sorted(p for p in found if _is_image_name(p))
        ignored += len(found) - len(images)
        if images:
            files[class_dir.name] = images
    return files, ignored


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


def _verified(parts: dict[str, Samples], ignored: int) -> tuple[dict[str, Samples], SkippedImages]:
    """Each split without the images PIL cannot read, and what was left out, by reason."""
    paths = [p for split in parts.values() for p, _ in split]
    workers = min(8, 2 * (os.cpu_count() or 1))  # the check is mostly file I/O: threads overlap it
    with ThreadPoolExecutor(workers) as pool:
        problems = dict(zip(paths, pool.map(unreadable_reason, paths)))
    bad = [(str(p), problems[p]) for p in paths if problems[p] is not None]
    if len(bad) > MAX_BAD_FRACTION * len(paths):
        raise UserError(
            f"{len(bad)} of {len(paths)} images cannot be read (more than {MAX_BAD_FRACTION:.0%}), "
            f"e.g. {', '.join(p for p, _ in bad[:3])}; is this the right folder?"
        )
    kept = {name: [s for s in split if problems[s[0]] is None] for name, split in parts.items()}
    return kept, SkippedImages.of(bad, len(paths), ignored)


def unreadable_reason(path: Path) -> str | None:
    """Why PIL cannot read the image at `path` (empty, not an image, too many pixels, truncated or
    damaged), or None when it can."""
    from PIL import Image, UnidentifiedImageError

    try:
        if path.stat().st_size == 0:
            return EMPTY
        with Image.open(path) as image:
            if image.format == "JPEG":
                # verify() checks nothing in a JPEG; a decode at 1/8 scale (~1 ms) reads the whole
                # stream and so catches truncated files, the usual damage in scraped datasets.
                image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
            else:
                image.verify()  # header and chunk checksums (PNG), without decoding pixels
    except Image.DecompressionBombError:  # over twice PIL's MAX_IMAGE_PIXELS (~179 megapixels)
        return TOO_LARGE
    except UnidentifiedImageError:
        return NOT_AN_IMAGE
    except Exception:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError, struct.error, ...
        return TRUNCATED
    return None
