"""Zero channels that put every INT8 convolution on onnxruntime's fast CPU kernels.

>>> model = onnx.load("pruned.onnx")
>>> padding = pad_conv_channels(model)      # in place; exact in FP32
>>> padding.convs, padding.channels_added   # ("/_blocks.0/_depthwise_conv/Conv", ...), 64

onnxruntime's CPU provider runs a QLinearConv with int8 weights of zero point 0 on MLAS's "symmetric"
kernels only when the channel counts fit their vectors (`MlasConvSymPackWSize` in onnxruntime's
core/mlas/lib/convsym.cpp, x86): a depthwise conv needs a multiple of 16 channels; a regular conv at
least 16 output channels, in multiples of 8 (4 on AVX-512), and input channels in multiples of 4.
Any other conv falls back to a generic u8 path: pruned EfficientNet-Lite0 (channels rounded to 8, as they
were before the default became 16) had 7 of 16 depthwise convs there, each 2-3x slower than its FP32
conv (onnxruntime's profiler, batch 8).

The padding is exact: the conv producing the channels gets zero filters and zero biases, a depthwise conv
on the way zero filters, and the conv consuming them zero input weights, so the extra channels (whatever
an activation in between makes of their zeros) add nothing to any output. Only chains that end in a conv
are padded: a tensor that also feeds a residual Add, a pooling or a graph output is left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._deps import require

DEPTHWISE_MULTIPLE = 16  # MLAS's symmetric depthwise kernel: channels in multiples of 16 (x86)
CONV_MIN_OUT = 16  # its regular conv kernel: at least one 16-channel output block ...
CONV_MULTIPLE = 8  # ... in multiples of 8 output channels (AVX2; 4 on AVX-512), input channels of 4
# Single-input elementwise ops a padded channel may pass through between two convs.
ELEMENTWISE = ("Relu", "Clip", "LeakyRelu", "HardSigmoid", "HardSwish", "Sigmoid", "Tanh")


@dataclass(frozen=True)
class ChannelPadding:
    """What `pad_conv_channels` changed."""

    convs: tuple[str, ...]  # the convs whose output channels were padded (producers and depthwise convs)
    channels_added: int  # zero output channels, summed over `convs`


class _Graph:
    """The convs of an ONNX graph with their weights as arrays, and who consumes what."""

    def __init__(self, graph: Any) -> None:
        self.numpy_helper = require("onnx", "channel padding").numpy_helper
        self.inits = {t.name: t for t in graph.initializer}
        self.outputs = {o.name for o in graph.output}
        self.producer = {o: n for n in graph.node for o in n.output}
        self.consumers: dict[str, list[Any]] = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    def weight(self, conv: Any) -> np.ndarray | None:
        """The conv's (C_out, C_in / group, kH, kW) weights, if they are its own initializer."""
        name = conv.input[1] if len(conv.input) > 1 else ""
        if name not in self.inits or len(self.consumers.get(name, [])) != 1:
            return None
        bias = conv.input[2] if len(conv.input) > 2 else ""
        if bias in self.inits and len(self.consumers.get(bias, [])) != 1:
            return None  # equal biases of two convs, stored once by the exporter: padding one would resize both
        return self.numpy_helper.to_array(self.inits[name])

    def set(self, name: str, value: np.ndarray) -> None:
        self.inits[name].CopyFrom(self.numpy_helper.from_array(value, name))

    def sole_consumer(self, tensor: str) -> Any | None:
        users = self.consumers.get(tensor, [])
        return users[0] if len(users) == 1 and tensor not in self.outputs else None

    def next_conv(self, tensor: str) -> Any | None:
        """The one conv `tensor` feeds, through at most one elementwise op; None for any other use."""
        node = self.sole_consumer(tensor)
        if node is not None and node.op_type in ELEMENTWISE and node.input[0] == tensor:
            node = self.sole_consumer(node.output[0])
        return node if node is not None and node.op_type == "Conv" and node.input[0] != "" else None

    def previous_conv(self, tensor: str) -> Any | None:
        """The group-1 conv whose output is `tensor`, through at most one elementwise op, used only here."""
        node = self.producer.get(tensor)
        if node is not None and node.op_type in ELEMENTWISE:
            node = self.producer.get(node.input[0]) if self.sole_consumer(node.input[0]) is node else None
        ok = node is not None and node.op_type == "Conv" and _group(node) == 1
        return node if ok and self.next_conv(node.output[0]) is not None else None


def _group(conv: Any) -> int:
    return next((a.i for a in conv.attribute if a.name == "group"), 1)


def _is_depthwise(conv: Any, w: np.ndarray | None) -> bool:
    return w is not None and w.ndim == 4 and w.shape[1] == 1 and _group(conv) == w.shape[0] > 1


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _pad_outputs(g: _Graph, conv: Any, extra: int) -> None:
    """Append `extra` zero filters (and zero biases) to `conv`: (C_out, ...) -> (C_out + extra, ...)."""
    w = g.weight(conv)
    g.set(conv.input[1], np.concatenate([w, np.zeros((extra, *w.shape[1:]), w.dtype)]))
    if len(conv.input) > 2 and conv.input[2] in g.inits:
        b = g.numpy_helper.to_array(g.inits[conv.input[2]])  # (C_out,)
        g.set(conv.input[2], np.concatenate([b, np.zeros(extra, b.dtype)]))
    for a in conv.attribute:
        if a.name == "group" and a.i > 1:  # a depthwise conv: one group per channel
            a.i += extra


def _pad_inputs(g: _Graph, conv: Any, extra: int) -> None:
    """Append `extra` zero input channels to a group-1 conv: (C_out, C_in, kH, kW) -> (C_out, C_in + extra, ...)."""
    w = g.weight(conv)
    g.set(conv.input[1], np.concatenate([w, np.zeros((w.shape[0], extra, *w.shape[2:]), w.dtype)], axis=1))


def _neighbours(g: _Graph, depthwise: Any) -> tuple[Any, Any] | None:
    """The group-1 convs that make and take the channels of `depthwise`, or None where it cannot be padded."""
    producer, consumer = g.previous_conv(depthwise.input[0]), g.next_conv(depthwise.output[0])
    if producer is None or consumer is None or _group(consumer) != 1:
        return None
    if g.weight(producer) is None or g.weight(consumer) is None:
        return None
    return producer, consumer


def pad_conv_channels(model: Any) -> ChannelPadding:
    """Pad, in place, the channels of `model`'s convs (ONNX, FP32, weights as initializers) where MLAS's
    symmetric INT8 kernels need it: depthwise convs to multiples of 16, narrow or odd conv outputs to
    at least 16 in multiples of 8. The model computes exactly what it did; shapes are inferred again."""
    onnx = require("onnx", "channel padding")
    g = _Graph(model.graph)
    padded: list[tuple[str, int]] = []
    for conv in list(model.graph.node):
        w = g.weight(conv) if conv.op_type == "Conv" else None
        if not _is_depthwise(conv, w) or w.shape[0] % DEPTHWISE_MULTIPLE == 0:
            continue
        neighbours = _neighbours(g, conv)
        if neighbours is None:
            continue
        producer, consumer = neighbours
        extra = _round_up(w.shape[0], DEPTHWISE_MULTIPLE) - w.shape[0]
        _pad_outputs(g, producer, extra)
        _pad_outputs(g, conv, extra)
        _pad_inputs(g, consumer, extra)
        padded += [(producer.name, extra), (conv.name, extra)]
    for conv in list(model.graph.node):
        w = g.weight(conv) if conv.op_type == "Conv" and _group(conv) == 1 else None
        if w is None or (w.shape[0] >= CONV_MIN_OUT and w.shape[0] % CONV_MULTIPLE == 0):
            continue
        consumer = g.next_conv(conv.output[0])
        if consumer is None or _group(consumer) != 1 or g.weight(consumer) is None:
            continue
        extra = max(CONV_MIN_OUT, _round_up(w.shape[0], CONV_MULTIPLE)) - w.shape[0]
        _pad_outputs(g, conv, extra)
        _pad_inputs(g, consumer, extra)
        padded.append((conv.name, extra))
    if padded:
        del model.graph.value_info[:]  # the old channel counts; inferred again below
        model.graph.value_info.extend(onnx.shape_inference.infer_shapes(model).graph.value_info)
    return ChannelPadding(convs=tuple(name for name, _ in padded), channels_added=sum(n for _, n in padded))
