"""The README's quick start on your own image folder, run as written on a tiny folder of real photos.

The folder holds real Fashion-MNIST images saved as PNG files, one folder per class. The commands are
read from the README; the test adds only flags that make them quick on two CPU cores (a 32-px input,
a short fade and a short bench), so a README edit that breaks a command fails here.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import run_cli

README = Path(__file__).resolve().parents[2] / "README.md"
QUICK = {"finetune": ["--img-size", "32"], "prune": ["--fade-steps", "20"],
         "bench": ["--rounds", "4", "--sessions", "2", "--warmup", "1", "--batch-sizes", "1"]}


def quick_start_commands() -> list[list[str]]:
    text = README.read_text()
    section = text.split("## Quick start: your own image folder", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [shlex.split(line.split("#", 1)[0]) for line in block.splitlines() if line.strip()]


def real_photo_folder(root: Path, classes: tuple[int, ...] = (0, 5, 7), per_class: int = 14) -> Path:
    from fa_compress.data.fashion_mnist import _FILES, _find_file, _locate, read_idx

    folder, _ = _locate(None)
    images = read_idx(_find_file(folder, _FILES["train_images"]))
    labels = read_idx(_find_file(folder, _FILES["train_labels"]))
    for c in classes:
        out = root / f"class_{c}"
        out.mkdir(parents=True)
        for i in np.flatnonzero(labels == c)[:per_class]:
            Image.fromarray(images[i]).save(out / f"{i}.png")
    return root


def test_readme_quick_start_runs_as_written_on_an_image_folder(tmp_path, capsys):
    commands = quick_start_commands()
    assert [c[:2] for c in commands][:3] == [["facompress", "finetune"], ["facompress", "prune"],
                                             ["facompress", "export"]]
    photos = real_photo_folder(tmp_path / "photos")
    for command in commands:
        argv = [a.replace("imagefolder:PATH", f"imagefolder:{photos}") for a in command[1:]]
        code, out, err = run_cli(argv + QUICK.get(argv[0], []), capsys)
        assert code == 0, f"{' '.join(command)} exited {code}: {err}"
    runs = [p for p in (tmp_path / "runs").iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(runs) == 1
    manifest = json.loads((runs[0] / "run.json").read_text())
    data = manifest["stages"]["finetune"]["dataset"]
    assert data["train_images"] + data["val_images"] + data["test_images"] == 3 * 14  # the whole folder read
    names = {p.name for p in runs[0].iterdir()}
    assert {"pruned.safetensors", "pruned.onnx", "report.md"} <= names
    assert any(n.endswith(".int8-ort.onnx") for n in names)
