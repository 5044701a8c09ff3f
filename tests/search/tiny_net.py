"""A three-block CNN small enough to quantise to INT8 in a second, for `--model tests/search/tiny_net.py:tiny`."""

import torch
from torch import nn


class TinyNet(nn.Module):
    """conv-BN-ReLU x 3 and a classifier. Fresh BatchNorms fold into equal conv biases, which the ONNX
    exporter stores once (a case INT8 channel padding must leave alone)."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for c_in, c_out, stride in ((3, 16, 1), (16, 32, 2), (32, 32, 1)):
            layers += [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean((2, 3)))  # (N, 32, H, W) -> (N, 32) -> (N, classes)


def tiny() -> nn.Module:
    return TinyNet()
