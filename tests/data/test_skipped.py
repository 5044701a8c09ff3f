"""Why an image file is skipped: empty, truncated, not an image, too many pixels; and the summary line."""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fa_compress.data import load_dataset, loaded_summary
from fa_compress.data._skipped import EMPTY, NOT_AN_IMAGE, TOO_LARGE, TRUNCATED, SkippedImages
from fa_compress.data.imagefolder import unreadable_reason
from fa_compress.models import IMAGENET_NORMALIZATION


def write_png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that claims `width` x `height` pixels but holds almost no data (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) +
                     chunk(b"IEND", b""))
    return path


def write_damaged_images(folder: Path) -> None:
    """One of each kind of damage: zero bytes, cut in half, text named .jpg, 900 megapixels."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "zero.png").write_bytes(b"")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / "cut.png")
    whole = (folder / "cut.png").read_bytes()
    (folder / "cut.png").write_bytes(whole[: len(whole) // 2])
    (folder / "text.jpg").write_text("this is not a picture\n")
    write_png_header(folder / "huge.png", 30_000, 30_000)


@pytest.mark.parametrize("name, reason", [("zero.png", EMPTY), ("cut.png", TRUNCATED), ("text.jpg", NOT_AN_IMAGE),
                                          ("huge.png", TOO_LARGE)])
def test_each_kind_of_damage_has_its_reason(tmp_path, name, reason):
    write_damaged_images(tmp_path)
    assert unreadable_reason(tmp_path / name) == reason


def test_a_folder_with_damaged_files_counts_them_by_reason(tmp_path):
    rng = np.random.default_rng(1)
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(40):
            Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(tmp_path / c / f"{i}.png")
    write_damaged_images(tmp_path / "a")
    (tmp_path / "b" / "notes.txt").write_text("labels by hand")
    bundle = load_dataset(f"imagefolder:{tmp_path}", img_size=16, normalization=IMAGENET_NORMALIZATION)
    assert bundle.skipped.by_reason == {EMPTY: 1, NOT_AN_IMAGE: 1, TOO_LARGE: 1, TRUNCATED: 1}
    assert bundle.skipped_images == 4 and bundle.skipped.files_seen == 84 and bundle.skipped.ignored_files == 1
    assert len(bundle.train) + len(bundle.val) + len(bundle.test) == 80
    line = loaded_summary(bundle)
    assert "skipped 4 of 84 image files: 1 empty file, 1 not an image, 1 too many pixels, 1 truncated or damaged" in line
    assert "ignored 1 file without an image extension" in line
    assert f"train {len(bundle.train)}, validation {len(bundle.val)}, test {len(bundle.test)} images" in line


def test_nothing_skipped_says_so():
    assert SkippedImages().summary() == "none skipped"
    assert SkippedImages.of([("x.png", EMPTY)], 10).to_dict()["total"] == 1
