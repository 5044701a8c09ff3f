"""`facompress finetune`'s defaults: read from the option dataclasses, the input size chosen by the model and
the data (and the rule recorded in run.json), every image read when no limit is given."""

import dataclasses
import inspect
import json
from pathlib import Path

import pytest
from PIL import Image

from fa_compress.cli import finetune as cli_finetune
from fa_compress.train.config import TrainConfig
from fa_compress.train.stage import FinetuneOptions
from tests.cli.cli_output import cli_output

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
needs_fashion_mnist = pytest.mark.skipif(not (DEBIAN / "train-images-idx3-ubyte.gz").is_file(),
                                         reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
COMMAND_ONLY = {"nproc", "quiet", "schedule"}  # nproc and quiet belong to the command; schedule is TrainConfig's, as text


def _stage(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())["stages"]["finetune"]


def test_every_default_is_the_dataclasses():
    cli = {n: p.default for n, p in inspect.signature(cli_finetune.finetune).parameters.items()}
    lib = {f.name: f.default for cls in (FinetuneOptions, TrainConfig) for f in dataclasses.fields(cls)
           if f.default is not dataclasses.MISSING}
    assert {n: (v, lib[n]) for n, v in cli.items() if n not in COMMAND_ONLY and v != lib[n]} == {}
    assert cli["schedule"] == ",".join(TrainConfig().schedule) and cli["quiet"] is not FinetuneOptions().show_progress
    assert (cli["img_size"], cli["limit_train"], cli["limit_test"]) == (None, None, None)


@needs_fashion_mnist
def test_fashion_mnist_declares_64_px_and_the_run_records_why(tmp_path, capsys):
    run = tmp_path / "run"
    out = cli_output(["finetune", "--model", "resnet18", "--weights", "none", "--limit-train", "40",
                      "--limit-test", "20", "--schedule", "head", "--run", str(run), "--quiet"], capsys)
    assert "img size 64: fashion-mnist declares 64 px for its 28-px images" in out
    stage = _stage(run)
    assert stage["options"]["img_size"] == 64 and stage["options"]["data"] == "fashion-mnist"
    assert stage["img_size_choice"] == {"size_px": 64, "rule": "dataset",
                                        "reason": "fashion-mnist declares 64 px for its 28-px images"}


def _fashion_mnist_folder(root: Path, per_class: dict[int, int]) -> None:
    """Real Fashion-MNIST images as PNG files, `per_class[label]` of each label, in `root/<label>/`."""
    from fa_compress.data.fashion_mnist import read_idx

    images = read_idx(DEBIAN / "t10k-images-idx3-ubyte.gz")  # (N, 28, 28) uint8
    labels = read_idx(DEBIAN / "t10k-labels-idx1-ubyte.gz")  # (N,)
    for label, count in per_class.items():
        (root / str(label)).mkdir(parents=True)
        for i, index in enumerate((labels == label).nonzero()[0][:count]):
            Image.fromarray(images[index]).save(root / str(label) / f"{i}.png")


@needs_fashion_mnist
def test_an_image_folder_is_read_whole_by_default(tmp_path, capsys):
    _fashion_mnist_folder(tmp_path / "img", {0: 8, 1: 8, 7: 7})  # 23 images
    run = tmp_path / "run"
    out = cli_output(["finetune", "--model", "resnet18", "--weights", "none", "--data", f"imagefolder:{tmp_path / 'img'}",
                      "--img-size", "32", "--schedule", "head", "--run", str(run), "--quiet"], capsys)
    assert "img size 32: asked for" in out
    stage = _stage(run)
    assert (stage["options"]["limit_train"], stage["options"]["limit_test"]) == (None, None)
    counts = stage["dataset"]
    assert counts["train_images"] + counts["val_images"] + counts["test_images"] == 23
    assert counts["test_images"] == 2 + 2 + 1  # round(0.2 * n) of each class: every image was read
    assert stage["img_size_choice"]["rule"] == "asked"
