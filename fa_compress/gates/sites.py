"""Where a model's gates go, found by one forward pass on the `meta` device (shapes only, no cost).

1. Every BatchNorm2d (subclasses included): the gate goes after the normalisation, as always.
2. A LayerNorm over channels: ConvNeXt's channels-first `LayerNorm2d`, or an `nn.LayerNorm` applied
   to a conv's output permuted to channels-last (N, H, W, C), as in ConvNeXt's blocks (a LayerNorm
   over attention tokens is not one; `norm_free.CHANNELS_*_LAYERNORMS` name the classes).
3. An ungrouped `nn.Conv2d` whose output reaches no norm before the next layer with weights (VGG,
   AlexNet, SqueezeNet). Not gated: a conv on a pooled 1x1 map (squeeze-and-excitation, a classifier)
   and a conv whose output reaches the model's output with no weighted layer between (the classifier).
4. The expansion `nn.Linear` of a ConvNeXt block's MLP: one reading a rule-2 LayerNorm's channels-last
   (N, H, W, C) output, whose output goes through element-wise activations alone (each 0 at 0: GELU,
   ReLU, SiLU, ...) into exactly one other Linear and nowhere else. Its hidden channels get the gate;
   a transformer's MLP (after a LayerNorm over tokens) and a classifier (on pooled (N, C) features,
   reaching the output) never do.

Rules 2 to 4 follow the autograd graph of the traced pass back from each norm's and Linear's input and from
the model's output, through every op that has no weights (activations, adds, concatenations, permutes).
A model with only BatchNorms (every zoo CNN with BatchNorm) is left with exactly rule 1's gates.

>>> sites = find_gate_sites(model)
>>> sites.convs[:2], sites.layernorms["features.0.1"]    # ['features.0', 'features.3'], True
>>> sites.linears[0]                                      # 'features.1.0.block.3' (convnext_tiny)
"""

from __future__ import annotations

from collections import OrderedDict

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call

from ..errors import ConfigError
from .gate import ChannelGate
from .norm_free import CHANNELS_FIRST_LAYERNORMS, CHANNELS_LAST_LAYERNORMS, class_path

# Meta tensors cost nothing, so trace at the size most CNNs were designed for; a model that only runs at
# another size (a flatten into a fixed-size linear layer) is traced at the first of these it takes.
TRACE_SIZES = (224, 64, 32, 16)
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


@dataclass(frozen=True)
class GateSites:
    """Names of the layers that get a gate, by kind."""

    batchnorms: list[str] = field(default_factory=list)
    layernorms: dict[str, bool] = field(default_factory=dict)  # name -> channels_first
    convs: list[str] = field(default_factory=list)
    linears: list[str] = field(default_factory=list)  # MLP expansions on channels-last features (ConvNeXt)

    def count(self) -> int:
        return len(self.batchnorms) + len(self.layernorms) + len(self.convs) + len(self.linears)


def find_gate_sites(model: nn.Module, img_size: int | None = None) -> GateSites:
    """Where `insert_gates` puts gates in `model` (see the module docstring for the rules), traced at
    `img_size` (None: the first of `TRACE_SIZES` the model runs at)."""
    batchnorms = [n for n, m in model.named_modules()
                  if isinstance(m, nn.BatchNorm2d) and not isinstance(m, ChannelGate)]
    candidates = {n: m for n, m in model.named_modules() if _norm_free_candidate(m)}
    if not candidates:
        return GateSites(batchnorms)  # nothing a trace could add: BatchNorm models stay as they were
    trace = _trace_any(model, (img_size,) if img_size else TRACE_SIZES)
    layernorms = {n: class_path(m) in CHANNELS_FIRST_LAYERNORMS for n, m in candidates.items()
                  if isinstance(m, nn.LayerNorm) and _over_channels(m, trace.inputs.get(n))
                  and (class_path(m) in CHANNELS_FIRST_LAYERNORMS or n in trace.permuted_conv)}
    convs = [n for n, m in candidates.items() if isinstance(m, nn.Conv2d) and n in trace.inputs
             and n not in trace.normed and n not in trace.to_output and _spatial(trace.inputs[n]) > 1]
    linears = [n for n, m in model.named_modules() if type(m) is nn.Linear and trace.expansions.get(n)
               and trace.expansions[n] <= layernorms.keys() and _channels_last_map(m, trace.inputs.get(n))]
    return GateSites(batchnorms, layernorms, convs, linears)


def _norm_free_candidate(m: nn.Module) -> bool:
    if type(m) is nn.Conv2d:
        return m.groups == 1
    if isinstance(m, nn.LayerNorm) and m.weight is not None and len(m.normalized_shape) == 1:
        return class_path(m) in CHANNELS_FIRST_LAYERNORMS | CHANNELS_LAST_LAYERNORMS
    return False


def _over_channels(ln: nn.LayerNorm, shape: tuple[int, ...] | None) -> bool:
    """True when `ln` normalises the channels of an image feature map (not a transformer's tokens)."""
    if shape is None or len(shape) != 4:
        return False
    channels = ln.normalized_shape[-1]
    return shape[1] == channels if class_path(ln) in CHANNELS_FIRST_LAYERNORMS else shape[-1] == channels


def _channels_last_map(linear: nn.Linear, shape: tuple[int, ...] | None) -> bool:
    """True when `linear` runs on the channels of a channels-last (N, H, W, C) feature map."""
    return shape is not None and len(shape) == 4 and shape[-1] == linear.in_features


def _spatial(shape: tuple[int, ...]) -> int:
    return shape[-2] * shape[-1] if len(shape) == 4 else 0


@dataclass
class _Trace:
    inputs: dict[str, tuple[int, ...]]  # input shape of every layer with weights that ran
    normed: set[str]                    # convs whose output reaches a norm first
    to_output: set[str]                 # convs whose output reaches the model's output first
    permuted_conv: set[str]             # norms whose input is a conv's output, permuted or viewed only
    expansions: dict[str, set[str]]     # Linear feeding only activations then one Linear -> what its input is


def _trace_any(model: nn.Module, sizes: tuple[int, ...]) -> _Trace:
    errors = []
    for size in sizes:
        try:
            return _trace(model, size)
        except (RuntimeError, ValueError, TypeError, NotImplementedError) as exc:  # wrong size, or no meta kernel
            errors.append(f"{size} px: {type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}")
    raise ConfigError(f"facompress could not trace the model to place its gates ({'; '.join(errors)}); it needs "
                      f"an image classifier taking (N, 3, H, W)")


def _trace(model: nn.Module, img_size: int) -> _Trace:
    """One forward pass on meta tensors, recording each weighted layer's input shape and output node."""
    weighted = {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear, *_NORMS))}
    inputs: dict[str, tuple[int, ...]] = {}
    node_of: dict[object, str] = {}     # autograd node of a layer's output -> layer name
    norm_inputs: dict[str, object] = {}  # norm name -> autograd node of its input
    linear_inputs: dict[str, object] = {}  # Linear name -> autograd node of its input

    def pre(name, module, args):
        if args and isinstance(args[0], torch.Tensor):
            inputs.setdefault(name, tuple(args[0].shape))
            if isinstance(module, _NORMS) and args[0].grad_fn is not None:
                norm_inputs.setdefault(name, args[0].grad_fn)
            if isinstance(module, nn.Linear) and args[0].grad_fn is not None:
                linear_inputs.setdefault(name, args[0].grad_fn)

    def post(name, _module, _args, out):
        if isinstance(out, torch.Tensor) and out.grad_fn is not None:
            node_of.setdefault(out.grad_fn, name)

    # the caller's own hooks (a counter, a profiler) never see this shapes-only pass: set aside until it ends
    theirs = {m: (m._forward_pre_hooks, m._forward_hooks) for m in model.modules()}
    for m in theirs:
        m._forward_pre_hooks, m._forward_hooks = OrderedDict(), OrderedDict()
    hooks = [h for n, m in weighted.items()
             for h in (m.register_forward_pre_hook(lambda mod, a, n=n: pre(n, mod, a)),
                       m.register_forward_hook(lambda mod, a, o, n=n: post(n, mod, a, o)))]
    state = {k: torch.empty_like(v, device="meta") for k, v in model.state_dict(keep_vars=True).items()}
    x = torch.zeros(1, 3, img_size, img_size, device="meta", requires_grad=True)  # (1, 3, H, W)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            out = functional_call(model, state, (x,), strict=False)
    finally:
        for h in hooks:
            h.remove()
        for m, (pre_hooks, post_hooks) in theirs.items():
            m._forward_pre_hooks, m._forward_hooks = pre_hooks, post_hooks
        model.train(was_training)
    out = out if isinstance(out, torch.Tensor) else out[0]
    normed = _first_layers(list(norm_inputs.values()), node_of)
    to_output = _first_layers([out.grad_fn], node_of)
    permuted_conv = {n for n, fn in norm_inputs.items()
                     if any(isinstance(weighted[c], nn.Conv2d) for c in _first_layers([fn], node_of, _SHAPE_ONLY))}
    uses = _uses(out.grad_fn)
    firsts = {_expansion_of(fn, node_of, uses) for fn in linear_inputs.values()}
    expansions = {n: _first_layers([linear_inputs[n]], node_of, _SHAPE_ONLY) for n in firsts
                  if n in linear_inputs and isinstance(weighted[n], nn.Linear)}
    return _Trace(inputs, normed, to_output, permuted_conv, expansions)


# Autograd nodes that move or view values without mixing channels.
_SHAPE_ONLY = ("PermuteBackward", "ViewBackward", "UnsafeViewBackward", "ReshapeAliasBackward", "CloneBackward",
               "TransposeBackward")


# Element-wise activations that map 0 to 0, so a hidden channel whose gate is 0 reaches the next layer as 0
# and cutting it changes nothing (a sigmoid's 0.5 would).
_ZERO_AT_ZERO = ("GeluBackward", "ReluBackward", "SiluBackward", "HardswishBackward", "HardtanhBackward",
                 "EluBackward", "LeakyReluBackward", "MishBackward", "TanhBackward")


def _uses(root: object) -> dict[object, int]:
    """How many times each autograd node reachable from `root` is an input of another (its forward uses)."""
    uses: dict[object, int] = {}
    seen: set[object] = set()
    stack = [root] if root is not None else []
    while stack:
        fn = stack.pop()
        if fn in seen:
            continue
        seen.add(fn)
        for nxt, _ in getattr(fn, "next_functions", ()):
            if nxt is not None:
                uses[nxt] = uses.get(nxt, 0) + 1
                stack.append(nxt)
    return uses


def _expansion_of(fn: object, node_of: dict[object, str], uses: dict[object, int]) -> str | None:
    """The layer whose output reaches `fn` (a Linear's input) through one or more `_ZERO_AT_ZERO`
    activations alone, each result used once (by the next), or None when the path is anything else."""
    activations = 0
    while fn is not None and fn not in node_of:
        nxt = [n for n, _ in getattr(fn, "next_functions", ()) if n is not None]
        if not fn.name().startswith(_ZERO_AT_ZERO) or uses.get(fn) != 1 or len(nxt) != 1:
            return None
        fn, activations = nxt[0], activations + 1
    if fn is None or activations == 0 or uses.get(fn) != 1:
        return None
    return node_of[fn]


def _first_layers(starts: list[object], node_of: dict[object, str], through: tuple[str, ...] | None = None) -> set[str]:
    """Names of the weighted layers reached first walking the autograd graph back from `starts`
    (only through nodes whose name starts with one of `through`, when given)."""
    found: set[str] = set()
    seen: set[int] = set()
    stack = [s for s in starts if s is not None]
    while stack:
        fn = stack.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        name = node_of.get(fn)
        if name is not None:
            found.add(name)
            continue
        if through is not None and not fn.name().startswith(through):
            continue
        stack += [nxt for nxt, _ in getattr(fn, "next_functions", ()) if nxt is not None]
    return found
