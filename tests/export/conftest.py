"""Fixtures for the export tests: one exported resnet18 shared per module, real images when installed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

IMG = 32  # px: small enough for a fast run, large enough for resnet18's five stride-2 stages


def randomized_resnet18(num_classes: int = 10, seed: int = 0) -> nn.Module:
    """torchvision resnet18 (no weights) with non-trivial BatchNorm statistics, in eval mode."""
    import torchvision

    from tests.conftest import randomize_batchnorm

    torch.manual_seed(seed)
    model = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    return randomize_batchnorm(model, seed).eval()


def mobile_block(num_classes: int = 10) -> nn.Module:
    """A tiny mobilenet-style CNN (conv-BN-ReLU6, depthwise conv-BN-ReLU6, pool, linear): exports in ~0.5 s."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(),
        nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), nn.BatchNorm2d(16), nn.ReLU6(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, num_classes),
    ).eval()


def small_cnn(num_classes: int = 10) -> nn.Module:
    """Three conv-BN-ReLU stages (16, 32, 64 channels), global pooling, a linear classifier."""
    torch.manual_seed(0)

    def stage(c_in: int, c_out: int, pool: bool) -> list[nn.Module]:
        layers = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        return layers + ([nn.MaxPool2d(2)] if pool else [])

    return nn.Sequential(*stage(3, 16, True), *stage(16, 32, True), *stage(32, 64, False),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes))


def metadata(classes: int = 10) -> dict[str, str]:
    from fa_compress.export import onnx_metadata

    return onnx_metadata(classes=[f"c{i}" for i in range(classes)], img_size=IMG, mean=(0.5,) * 3,
                         std=(0.5,) * 3, source_run="runs/test", model_name="resnet18")


@pytest.fixture(scope="session")
def make_resnet18():
    """The factory above, for tests that need a fresh model."""
    return randomized_resnet18


@pytest.fixture(scope="session")
def make_block():
    """Factory of the tiny mobilenet-style CNN."""
    return mobile_block


@pytest.fixture(scope="session")
def meta() -> dict[str, str]:
    """ONNX metadata for a 10-class model at IMG px."""
    return metadata()


@pytest.fixture(scope="session")
def img() -> int:
    return IMG


@pytest.fixture(scope="session")
def resnet18() -> nn.Module:
    """One shared model: tests must not modify it (deepcopy first)."""
    return randomized_resnet18()


@pytest.fixture(scope="session")
def exported(resnet18, tmp_path_factory):
    """(model, OnnxExport) of resnet18 at 32 px, written once per test session."""
    from fa_compress.export import export_onnx

    folder: Path = tmp_path_factory.mktemp("onnx")
    return resnet18, export_onnx(resnet18, folder / "resnet18.onnx", img_size=IMG, metadata=metadata())


@pytest.fixture(scope="session")
def fashion_mnist():
    """Fashion-MNIST at 32 px (1000 train, 300 test images), or a skip where it is not installed."""
    from fa_compress.data import load_dataset
    from fa_compress.errors import NotFoundError
    from fa_compress.models import Normalization

    try:
        return load_dataset("fashion-mnist", img_size=IMG, normalization=Normalization((0.5,) * 3, (0.5,) * 3),
                            limit_train=1000, limit_test=300, seed=0)
    except NotFoundError as exc:
        pytest.skip(f"Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist): {exc}")


@pytest.fixture(scope="session")
def fitted_cnn(fashion_mnist) -> nn.Module:
    """`small_cnn` made into a real classifier without SGD (~72% on the test split, ~1.5 s).

    Random conv filters; BatchNorm statistics computed exactly on the 1000 training images; the final
    linear layer fitted in closed form by ridge regression of one-hot labels on the pooled features.
    Deterministic, with the activation ranges a trained network has, so INT8 calibration is realistic.
    """
    x = torch.stack([fashion_mnist.train[i][0] for i in range(len(fashion_mnist.train))])  # (N, 3, 32, 32)
    y = torch.tensor([fashion_mnist.train[i][1] for i in range(len(fashion_mnist.train))])  # (N,)
    model = small_cnn()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # cumulative average: one pass gives the exact statistics
            m.reset_running_stats()
    with torch.no_grad():
        model.train()(x)
        model.eval()
        feats = model[:-1](x)  # (N, 64)
        a = torch.cat([feats, torch.ones(len(feats), 1)], dim=1)  # (N, 65): features and a bias column
        targets = nn.functional.one_hot(y, 10).float()  # (N, 10)
        w = torch.linalg.solve(a.T @ a + torch.eye(a.shape[1]), a.T @ targets)  # (65, 10), ridge lambda = 1
        model[-1].weight.copy_(w[:-1].T)
        model[-1].bias.copy_(w[-1])
    return model


@pytest.fixture(scope="session")
def real_images(fashion_mnist) -> torch.Tensor:
    """16 real test images, normalised: (16, 3, 32, 32)."""
    return torch.stack([fashion_mnist.test[i][0] for i in range(16)])
