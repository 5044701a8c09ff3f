"""What a bad-input case works on: a private folder with copies of the base runs, helpers that damage
inputs in it, and `Case`, one bad command line (see test_bad_input.py)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TINY = ["--model", "mobilenet_v2", "--weights", "none", "--data", "fake", "--img-size", "32",
        "--limit-train", "64", "--limit-test", "32", "--quiet"]
TINY_ARGS = dict(zip(TINY[:-1:2], TINY[1:-1:2]))


# ---- what a case works on -------------------------------------------------------------------------
class Scene:
    """The case's folder, with helpers that build bad inputs in it (before the snapshot is taken)."""

    def __init__(self, tmp: Path, base_runs: dict[str, Path], resnet18_file: Path) -> None:
        self.tmp, self._bases, self._resnet18 = tmp, base_runs, resnet18_file

    def copy_run(self, which: str = "gated", drop: tuple[str, ...] = ()) -> Path:
        """A private copy of a base run, without the files named in `drop`."""
        dest = self.tmp / f"run-{which}"
        if not dest.exists():
            shutil.copytree(self._bases[which], dest)
        for name in drop:
            (dest / name).unlink()
        return dest

    @property
    def run(self) -> Path:
        return self.copy_run("gated")

    def file(self, name: str, data: bytes = b"") -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def folder(self, name: str) -> Path:
        path = self.tmp / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def resnet18_file(self) -> Path:
        return self._resnet18


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut `path` to a fraction of its size, as an interrupted copy would."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def garble(path: Path, size: int = 4096) -> Path:
    """Replace `path` with random bytes."""
    path.write_bytes(os.urandom(size))
    return path


def set_json(path: Path, edit: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def image_folder(scene: Scene, n_per_class: int = 10, corrupt: int = 0) -> Path:
    """imagefolder:<path> with 2 classes of PNGs, the first `corrupt` files of class `a` unreadable."""
    from PIL import Image

    root = scene.folder("images")
    for c in ("a", "b"):
        folder = scene.folder(f"images/{c}")
        for i in range(n_per_class):
            path = folder / f"{i}.png"
            if c == "a" and i < corrupt:
                path.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))  # a PNG signature, then noise
            else:
                Image.new("RGB", (8, 8), (i * 20, 0, 0) if c == "a" else (0, i * 20, 0)).save(path)
    return root


def ft(*extra: str, **override: str) -> list[str]:
    """`finetune` with the tiny settings, any of them overridden (`model="foo"` -> `--model foo`)."""
    args = {**TINY_ARGS, **{f"--{k.replace('_', '-')}": v for k, v in override.items()}}
    return ["finetune", *[x for kv in args.items() for x in kv], "--quiet", *extra]


@dataclass(frozen=True)
class Case:
    """One bad command line: `prepare(scene)` damages the inputs, `argv(scene)` returns the command line,
    and `word` must appear in the error line."""

    id: str
    argv: Callable[[Scene], list[str]]
    word: str
    prepare: Callable[[Scene], object] | None = None

