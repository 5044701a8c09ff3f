"""Finding a model's classifier head and where its gates go, without hand-written tables.

The head is the `nn.Linear` whose output *is* the model's output (or a 1x1 `nn.Conv2d` whose output
only gets flattened or pooled on the way out, as in DLA and SqueezeNet), found by one forward pass with
hooks. Architectures are built with their parameters on the `meta` device first (`empty_init`), so
looking at regnet_y_128gf (645 M parameters) costs no memory and a fraction of a second.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..gates.sites import find_gate_sites
from .keep_whole import unprunable

if TYPE_CHECKING:
    from torch import nn


@contextlib.contextmanager
def empty_init() -> Iterator[None]:
    """Inside this block, every parameter a module registers lives on the `meta` device (no storage).

    >>> with empty_init():
    ...     model = torchvision.models.regnet_y_128gf()   # instant, no memory
    """
    from torch import nn

    original = nn.Module.register_parameter

    def register(self: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and param.device.type != "meta":
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        original(self, name, param)

    nn.Module.register_parameter = register  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter = original  # type: ignore[method-assign]


def build_on_meta(build: Callable[[], nn.Module]) -> nn.Module:
    """`build()` with every parameter and buffer on the `meta` device: the shapes, no storage."""
    with empty_init():
        model = build()
    return model.to("meta")  # buffers (BatchNorm running stats) were made on the CPU


def count_batchnorms(model: nn.Module) -> int:
    """Number of `nn.BatchNorm2d` layers (subclasses included): where facompress puts its gates."""
    from torch import nn

    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def count_gate_sites(model: nn.Module) -> int:
    """Number of layers `insert_gates` would gate (`fa_compress.gates.sites`); 0: nowhere to put one."""
    return find_gate_sites(model).count()


def attention_layers(model: nn.Module) -> list[str]:
    """Names of the attention layers in `model` (`nn.MultiheadAttention`, or a class named `...Attention`)."""
    from torch import nn

    return [name for name, m in model.named_modules()
            if isinstance(m, nn.MultiheadAttention) or type(m).__name__.endswith("Attention")]


def why_not_gated(model: nn.Module) -> str | None:
    """Why facompress cannot gate `model` (a sentence starting with "has" or "is"), or None when it can.

    Models with BatchNorm are gated as before, attention or not (MaxViT); without BatchNorm, a model
    with attention layers is a vision transformer, whose tokens the channel gates do not cover.
    """
    blocked = unprunable(model)
    if blocked:
        return f"cannot be pruned: its layer {blocked[0]} ({blocked[1]})"
    sites = find_gate_sites(model)
    attention = attention_layers(model)
    if not sites.batchnorms and attention:
        return (f"is a vision transformer (attention at {attention[0]}): its channels are mixed by attention "
                f"over tokens, which facompress's channel gates and pruning do not cover")
    if sites.count() == 0:
        return ("has no layer where facompress puts its gates (a BatchNorm2d, a LayerNorm over channels, or an "
                "ungrouped nn.Conv2d no norm follows)")
    return None


def find_head(model: nn.Module, img_size: int, what: str) -> str:
    """Dotted name of the classifier: the `nn.Linear` whose output is the model's output, or the last
    1x1 `nn.Conv2d` to run when its C output channels are the model's (N, C) output after pooling or
    flattening (DLA's `fc`, SqueezeNet's `classifier.1`).

    Runs one forward pass in eval mode at `img_size` on the device the parameters are on (`meta`
    costs nothing). `ConfigError` when the output comes from neither: facompress replaces that layer
    for the new classes.
    """
    import torch
    from torch import nn

    produced: dict[int, str] = {}
    weighted: list[tuple[str, nn.Module]] = []  # convs and norms, in the order they ran
    hooks = [module.register_forward_hook(lambda _m, _i, out, name=name: produced.__setitem__(id(out), name))
             for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    hooks += [module.register_forward_hook(lambda m, _i, _o, name=name: weighted.append((name, m)))
              for name, module in model.named_modules()
              if isinstance(module, (nn.Conv2d, nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm))]
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, 3, img_size, img_size, device=device))  # (1, 3, H, W) -> (1, classes)
    except Exception as exc:  # noqa: BLE001 - any failure of foreign code becomes one clear line
        raise ConfigError(f"{what} does not run on a 1x3x{img_size}x{img_size} input "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}); "
                          f"facompress needs an image classifier taking (N, 3, H, W)") from exc
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise ConfigError(f"{what} returns {type(out).__name__}"
                          f"{tuple(out.shape) if isinstance(out, torch.Tensor) else ''}, not (N, classes) logits")
    head = produced.get(id(out)) or _conv_head(weighted, out.shape[1])
    if head is None:
        raise ConfigError(f"{what}'s output does not come straight from an nn.Linear layer or a 1x1 conv, so "
                          f"facompress cannot find its classifier to replace; end the model with an nn.Linear")
    return head


def _conv_head(weighted: list[tuple[str, nn.Module]], classes: int) -> str | None:
    """The last conv or norm that ran, when it is an ungrouped 1x1 conv with one output channel per class."""
    from torch import nn

    if not weighted:
        return None
    name, conv = weighted[-1]
    is_head = isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1) and conv.groups == 1
    return name if is_head and conv.out_channels == classes else None
