"""Memory format of conv weights and image batches: channels_last (NHWC) or contiguous (NCHW).

Every path that runs a CNN — fine-tuning phases, head feature caching, evaluation, recovery,
gradient scoring, the `torch-cpu` bench backend — resolves the format the same way and applies it
with two calls:

>>> fmt = prepare(model, "auto")                    # weights converted in place; MemoryFormatChoice
>>> logits = model(to_format(images, fmt))          # (N, 3, H, W) batch in the same format

`auto` is a rule on the device, the CPU's features and the model's convolutions, not a timing check,
so the same model on the same machine always gets the same layout and a seeded run repeats exactly.
channels_last speeds up models with depthwise convolutions on x86 CPUs with AVX2 or better and is mostly
slower for dense ResNets at small sizes, so `auto` picks it for the former only; where unmeasured `auto`
keeps contiguous. Measurements: docs/decisions/memory-format.md.
"""

from __future__ import annotations

import functools
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError, InternalError

MEMORY_FORMATS = ("auto", "channels_last", "contiguous")
_TORCH_FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}


@dataclass(frozen=True)
class MemoryFormatChoice:
    """What was asked (`auto` or a format), what was chosen for this device, and why."""

    asked: str
    chosen: str  # "channels_last" | "contiguous"
    reason: str

    @property
    def torch_format(self) -> torch.memory_format:
        return _TORCH_FORMATS[self.chosen]

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def check_memory_format(asked: str, option: str = "memory_format") -> str:
    """`asked` when it is a known format name, else a `ConfigError` listing the known ones."""
    if asked not in MEMORY_FORMATS:
        raise ConfigError(f"unknown {option} {asked!r}; choose one of {', '.join(MEMORY_FORMATS)} "
                          f"(auto picks channels_last where it measured faster)")
    return asked


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@functools.lru_cache(maxsize=None)
def cpu_rule() -> tuple[bool, str]:
    """(whether this CPU may use channels_last, why): x86 with AVX2 and a torch built with oneDNN."""
    if not torch.backends.mkldnn.is_available():
        return False, "torch was built without oneDNN; channels_last unmeasured there"
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False, f"channels_last unmeasured on {platform.machine()} CPUs"
    flags = cpu_flags()
    if "avx2" not in flags:
        return False, "this x86 CPU has no AVX2; channels_last unmeasured there"
    return True, f"x86 {'AVX-512' if 'avx512f' in flags else 'AVX2'} CPU with oneDNN"


def has_depthwise_convs(model: nn.Module) -> bool:
    """True when some conv is depthwise (groups == in_channels > 1): MobileNet, EfficientNet, ..."""
    return any(isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels for m in model.modules())


def resolve_memory_format(asked: str | MemoryFormatChoice, device: torch.device | str,
                          model: nn.Module | None = None) -> MemoryFormatChoice:
    """The format to use for `model` on `device` for `asked` (`auto`, `channels_last`, `contiguous`).

    `auto` on the CPU needs the model (the choice depends on its convolutions).
    """
    if isinstance(asked, MemoryFormatChoice):
        return asked
    check_memory_format(asked)
    if asked != "auto":
        return MemoryFormatChoice(asked, asked, "asked for")
    kind = torch.device(device).type
    if kind == "cuda":
        return MemoryFormatChoice(asked, "channels_last", "CUDA: cuDNN's NHWC kernels (tensor cores)")
    if kind != "cpu":
        return MemoryFormatChoice(asked, "contiguous", f"channels_last unmeasured on {kind} devices")
    if model is None:
        raise InternalError("resolving memory format `auto` on the CPU needs the model")
    ok, why = cpu_rule()
    if not ok:
        return MemoryFormatChoice(asked, "contiguous", why)
    if has_depthwise_convs(model):
        return MemoryFormatChoice(asked, "channels_last", f"{why}, model with depthwise convs: channels_last "
                                  f"measured 1.1-1.8x faster (docs/decisions/memory-format.md)")
    return MemoryFormatChoice(asked, "contiguous", f"{why}, model without depthwise convs: channels_last "
                              f"measured mostly slower for ResNets at 64 px (docs/decisions/memory-format.md)")


def describe_auto_cpu() -> str:
    """What `auto` does on this CPU, in one line (for benchmark environment records)."""
    ok, why = cpu_rule()
    return f"auto: channels_last for models with depthwise convs, else contiguous ({why})" if ok else \
        f"auto: contiguous ({why})"


def prepare(model: nn.Module, fmt: str | MemoryFormatChoice,
            device: torch.device | str | None = None) -> MemoryFormatChoice:
    """Put `model`'s 4-D weights (convs) in the format `fmt` resolves to, in place, keeping the same
    Parameter objects (optimizers, torch-pruning graphs and DDP built on them stay valid); return the
    choice, to pass to `to_format` for the batches.

    `device` resolves `auto`; by default it is the device of the model's first parameter.
    """
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    choice = resolve_memory_format(fmt, device, model)
    with torch.inference_mode(False):  # callers inside inference mode must not get inference-tensor weights
        model.to(memory_format=choice.torch_format)
    return choice


def _concrete(fmt: str | MemoryFormatChoice) -> torch.memory_format:
    name = fmt.chosen if isinstance(fmt, MemoryFormatChoice) else check_memory_format(fmt)
    if name == "auto":
        raise InternalError("memory format `auto` must be resolved first: use the choice `prepare` returns")
    return _TORCH_FORMATS[name]


def to_format(x: torch.Tensor, fmt: str | MemoryFormatChoice) -> torch.Tensor:
    """`x` in `fmt` (a choice or `channels_last`/`contiguous`) when it is a 4-D batch (N, C, H, W);
    other tensors unchanged (no copy when it already is)."""
    return x.contiguous(memory_format=_concrete(fmt)) if x.dim() == 4 else x


def is_in_format(x: torch.Tensor, fmt: str | MemoryFormatChoice) -> bool:
    """True when the 4-D tensor `x` is laid out in `fmt` (what the tests' forward hooks check)."""
    return x.is_contiguous(memory_format=_concrete(fmt))
