"""Gates where there is no BatchNorm: in a LayerNorm over channels, in a conv no norm follows, or in the
first Linear of a ConvNeXt block's MLP.

- `GatedLayerNorm` computes `LN(x) * gate` as one LayerNorm with `gamma * gate`, `beta * gate`:
  ConvNeXt's channels-first `LayerNorm2d` (stem, downsampling, classifier) and the channels-last
  `nn.LayerNorm` its blocks apply after a permute. Fold: gamma' = gamma*g, beta' = beta*g.
- `GatedConv2d` computes `conv(x) * gate` as one conv with `W * gate`, `b * gate` (VGG, AlexNet,
  SqueezeNet). Fold: W' = W*g, b' = b*g.
- `GatedLinear` computes `linear(x) * gate` as one linear with `W * gate`, `b * gate`: the expansion
  `Linear(C, 4C)` of a ConvNeXt block (a 1x1 conv on channels-last features), gating its hidden
  channels before the activation. Fold: W' = W*g (rows), b' = b*g.

All three are made by switching the layer's class in place (`gate_layernorm`, `gate_conv`,
`gate_linear`), so module names, parameters and state-dict keys stay those of the original plus `.gate`,
and `folded()` switches back to the original class. `fa_compress.gates.sites` decides which layers get one.

>>> gated = gate_conv(nn.Conv2d(3, 8, 3))
>>> torch.equal(gated(x), conv(x))          # True at initialisation: the gate starts at 1
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .gate import ChannelGate

# nn.LayerNorm subclasses over the channels of (N, C, H, W) input, by class path: each permutes to
# channels-last, applies F.layer_norm over C and permutes back, as GatedLayerNorm does.
CHANNELS_FIRST_LAYERNORMS = frozenset({"torchvision.models.convnext.LayerNorm2d", "torchvision.ops.misc.LayerNorm2d",
                                       "timm.layers.norm.LayerNorm2d"})
# nn.LayerNorm classes whose forward is F.layer_norm over the last axis (timm's adds an optional fused
# kernel computing the same).
CHANNELS_LAST_LAYERNORMS = frozenset({"torch.nn.modules.normalization.LayerNorm", "timm.layers.norm.LayerNorm"})


def class_path(module: nn.Module) -> str:
    """"package.module.ClassName" of `module`'s own class."""
    return f"{type(module).__module__}.{type(module).__qualname__}"


class GatedLayerNorm(ChannelGate, nn.LayerNorm):
    """A LayerNorm over C channels with a learnable per-channel gate (init 1) on its output;
    `channels_first`: the input is (N, C, H, W), normalised over C (ConvNeXt's `LayerNorm2d`)."""

    channels_first: bool = False
    plain_class: type = nn.LayerNorm

    @property
    def num_features(self) -> int:
        return int(self.normalized_shape[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`LN(x) * gate`, as one LayerNorm with gamma*gate, beta*gate; a channel whose gate is exactly 0
        is also left out of the mean and variance, so it computes what the model with that channel cut
        computes (a LayerNorm's statistics span all its channels; `fa_compress.pruning.fade` relies on
        a gate of 0 making the cut exact). Checking for such a gate syncs a GPU once per call."""
        gate = self.effective_gate()  # (C,)
        weight = self.weight * gate  # (C,)
        bias = self.bias * gate if self.bias is not None else None  # (C,)
        if self.channels_first:
            x = x.permute(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
        live = gate != 0  # (C,)
        if bool(live.all()):
            x = F.layer_norm(x, self.normalized_shape, weight, bias, self.eps)  # (..., C)
        else:
            x = _layer_norm_of(x, live.to(x.dtype), weight, bias, self.eps)  # (..., C)
        return x.permute(0, 3, 1, 2) if self.channels_first else x  # (N, H, W, C) -> (N, C, H, W)

    @torch.no_grad()
    def folded(self) -> nn.LayerNorm:
        ln = _plain_copy(self)
        g = self.gate.detach()
        ln.weight = nn.Parameter(self.weight.detach() * g)
        if self.bias is not None:
            ln.bias = nn.Parameter(self.bias.detach() * g)
        return ln

    def channel_gamma(self) -> torch.Tensor:
        return self.weight.detach().abs()

    def channel_scale(self) -> torch.Tensor:
        return self.channel_gamma()


class GatedConv2d(ChannelGate, nn.Conv2d):
    """An ungrouped nn.Conv2d with a learnable per-output-channel gate (init 1) on its output."""

    plain_class: type = nn.Conv2d

    @property
    def num_features(self) -> int:
        return int(self.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.effective_gate()  # (C_out,)
        weight = self.weight * gate.view(-1, 1, 1, 1)  # (C_out, C_in, kH, kW) * (C_out, 1, 1, 1)
        bias = self.bias * gate if self.bias is not None else None  # (C_out,)
        return self._conv_forward(x, weight, bias)  # (N, C_out, H', W')

    @torch.no_grad()
    def folded(self) -> nn.Conv2d:
        conv = _plain_copy(self)
        g = self.gate.detach()
        conv.weight = nn.Parameter(self.weight.detach() * g.view(-1, 1, 1, 1))
        if self.bias is not None:
            conv.bias = nn.Parameter(self.bias.detach() * g)
        return conv

    def channel_gamma(self) -> torch.Tensor:
        return self.weight.detach().flatten(1).norm(dim=1)  # (C_out, C_in*kH*kW) -> (C_out,)

    def channel_scale(self) -> torch.Tensor:
        return self.channel_gamma()


class GatedLinear(ChannelGate, nn.Linear):
    """An nn.Linear on channels-last features (..., C_in) with a learnable per-output-feature gate (init 1)
    on its output: a ConvNeXt block's expansion, so the gate scales each hidden channel before the activation."""

    plain_class: type = nn.Linear

    @property
    def num_features(self) -> int:
        return int(self.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.effective_gate()  # (F_out,)
        weight = self.weight * gate.view(-1, 1)  # (F_out, F_in) * (F_out, 1)
        bias = self.bias * gate if self.bias is not None else None  # (F_out,)
        return F.linear(x, weight, bias)  # (..., F_in) -> (..., F_out)

    @torch.no_grad()
    def folded(self) -> nn.Linear:
        linear = _plain_copy(self)
        g = self.gate.detach()
        linear.weight = nn.Parameter(self.weight.detach() * g.view(-1, 1))
        if self.bias is not None:
            linear.bias = nn.Parameter(self.bias.detach() * g)
        return linear

    def channel_gamma(self) -> torch.Tensor:
        return self.weight.detach().norm(dim=1)  # (F_out, F_in) -> (F_out,)

    def channel_scale(self) -> torch.Tensor:
        return self.channel_gamma()


def _layer_norm_of(x: torch.Tensor, live: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                   eps: float) -> torch.Tensor:
    """LayerNorm over the last axis with statistics over the `live` (C,) 0/1 channels only."""
    count = live.sum()
    mean = (x * live).sum(-1, keepdim=True) / count  # (..., C) -> (..., 1)
    var = ((x - mean).square() * live).sum(-1, keepdim=True) / count  # (..., 1), biased as in LayerNorm
    out = (x - mean) * torch.rsqrt(var + eps) * weight  # (..., C); dead channels: weight 0
    return out + bias if bias is not None else out


def gate_layernorm(ln: nn.LayerNorm, channels_first: bool) -> GatedLayerNorm:
    """`ln`, gated in place (its class switched; the original class comes back on folding)."""
    return _add_gate(ln, GatedLayerNorm, int(ln.normalized_shape[-1]), channels_first=channels_first)


def gate_conv(conv: nn.Conv2d) -> GatedConv2d:
    """`conv`, gated in place (its class switched; the original class comes back on folding)."""
    return _add_gate(conv, GatedConv2d, int(conv.out_channels))


def gate_linear(linear: nn.Linear) -> GatedLinear:
    """`linear`, gated in place (its class switched; the original class comes back on folding)."""
    return _add_gate(linear, GatedLinear, int(linear.out_features))


def _add_gate(module: nn.Module, gated_class: type, channels: int, **attrs: object):
    plain_class = type(module)
    module.__class__ = gated_class
    module.plain_class = plain_class
    for key, value in attrs.items():
        setattr(module, key, value)
    ref = next(module.parameters())
    module.gate = nn.Parameter(torch.ones(channels, device=ref.device, dtype=ref.dtype))
    return module


def _plain_copy(gated: nn.Module) -> nn.Module:
    """A copy of `gated` without its gate, of its original class (weights to be set by the caller)."""
    plain = copy.deepcopy(gated)
    del plain.gate
    for key in ("plain_class", "channels_first", "fade"):
        plain.__dict__.pop(key, None)
    plain.__class__ = gated.plain_class
    return plain
