"""Finding a model's classifier head and its BatchNorms without hand-written tables.

The head is the `nn.Linear` whose output *is* the model's output, found by one forward pass with
hooks. Architectures are built with their parameters on the `meta` device first (`empty_init`), so
looking at regnet_y_128gf (645 M parameters) costs no memory and a fraction of a second.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ..errors import ConfigError

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


def find_head(model: nn.Module, img_size: int, what: str) -> str:
    """Dotted name of the `nn.Linear` whose output is the model's output (the classifier).

    Runs one forward pass in eval mode at `img_size` on the device the parameters are on (`meta`
    costs nothing). `ConfigError` when the output does not come straight from an `nn.Linear`
    (squeezenet ends in a conv, for instance): facompress replaces that layer for the new classes.
    """
    import torch
    from torch import nn

    produced: dict[int, str] = {}
    hooks = [module.register_forward_hook(lambda _m, _i, out, name=name: produced.__setitem__(id(out), name))
             for name, module in model.named_modules() if isinstance(module, nn.Linear)]
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
    head = produced.get(id(out))
    if head is None:
        raise ConfigError(f"{what}'s output does not come straight from an nn.Linear layer, so facompress "
                          f"cannot find its classifier to replace; end the model with an nn.Linear")
    return head
