"""Factories for `--model file.py:factory` tests: small nets with the layer types the structure record covers."""

import torch
from torch import nn


class NormZoo(nn.Module):
    """conv-BN-ReLU, conv-GroupNorm-PReLU, conv-BN, pooling, LayerNorm over channels, a classifier."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.mid = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.GroupNorm(4, 32), nn.PReLU(32))
        self.last = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU())
        self.norm = nn.LayerNorm(32)
        self.fc = nn.Linear(32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.last(self.mid(self.stem(x)))  # (N, 3, H, W) -> (N, 32, H/2, W/2)
        return self.fc(self.norm(x.mean((2, 3))))  # (N, 32) -> (N, classes)


class Scale(nn.Module):
    """A per-channel scale held as a bare parameter: a layer the structure record does not cover."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale  # (N, C, H, W) * (1, C, 1, 1)


class WithScale(nn.Module):
    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                                  Scale(16), nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16),
                                  nn.ReLU())
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x).mean((2, 3)))  # (N, 16, H, W) -> (N, 16) -> (N, classes)


def norm_zoo() -> nn.Module:
    return NormZoo()


def with_scale() -> nn.Module:
    return WithScale()


def not_a_module() -> int:
    return 42


def no_batchnorm() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))


def no_gate_site() -> nn.Module:
    """Nothing to gate: no norm, and its only conv is depthwise."""
    return nn.Sequential(nn.Conv2d(3, 3, 3, groups=3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(3, 4))


def ends_in_conv() -> nn.Module:
    """Its output comes from a 3x3 conv: no classifier facompress can replace."""
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Conv2d(8, 4, 3), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten())


def ends_in_1x1_conv() -> nn.Module:
    """A 1x1-conv classifier after global pooling (as in DLA): found and replaced like a linear one."""
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Conv2d(8, 4, 1), nn.Flatten())


def tiny_maxvit() -> nn.Module:
    """MaxViT's own blocks (MBConv, window and grid attention): maxvit_t's first two stages at a quarter
    width, for 64 px inputs (the size facompress first runs a factory's model at)."""
    from torchvision.models.maxvit import MaxVit

    return MaxVit(input_size=(64, 64), stem_channels=16, partition_size=2, block_channels=[16, 32],
                  block_layers=[1, 1], head_dim=8, stochastic_depth_prob=0.0, num_classes=4)
