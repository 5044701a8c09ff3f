"""Tiny models and ONNX files for the benchmark tests (fast to build, run and export)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

IMG = 16
CLASSES = 10


def tiny_cnn(classes: int = CLASSES, width: int = 8, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes)).eval()


def export_onnx(model: nn.Module, path: Path, img: int = IMG) -> Path:
    """A dynamic-batch ONNX file of `model` (TorchScript exporter: fast, one file)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), torch.randn(1, 3, img, img), str(path), dynamo=False,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return path


@pytest.fixture
def tiny_model() -> nn.Module:
    return tiny_cnn()


@pytest.fixture
def tiny_onnx(tmp_path, tiny_model) -> Path:
    return export_onnx(tiny_model, tmp_path / "tiny.onnx")


@pytest.fixture
def eval_set() -> torch.utils.data.TensorDataset:
    g = torch.Generator().manual_seed(1)
    return torch.utils.data.TensorDataset(torch.randn(24, 3, IMG, IMG, generator=g),
                                          torch.randint(0, CLASSES, (24,), generator=g))

