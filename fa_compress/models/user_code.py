"""Your own architecture by name: `path/to/file.py:factory` or `package.module:factory`.

Building such a model imports and runs the named Python code, so facompress does it only inside
`trust_code()` (the CLI's `--trust-code`). A run records the name; every later command that
rebuilds the model from the run's files needs the flag again: a run someone sent you never runs
code by default. The factory takes no arguments and returns an `nn.Module` image classifier that
ends in an `nn.Linear` (found automatically and replaced for the new classes).

>>> with trust_code():
...     model = build_model("my_nets.py:small_cnn", num_classes=10)
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import re
import sys
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from ..errors import ConfigError, NotFoundError
from ._registry import IMAGENET_NORMALIZATION, Family, ModelSpec, register_family

if TYPE_CHECKING:
    from torch import nn

_TRUSTED: ContextVar[bool] = ContextVar("facompress_trust_code", default=False)
_MODULE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")
_SPECS: dict[str, ModelSpec] = {}
DISCOVERY_IMG_SIZE = 64  # the input a factory's model is first run on to find its classifier


@contextlib.contextmanager
def trust_code(enabled: bool = True) -> Iterator[None]:
    """Allow (or, with False, forbid) building models from user code inside this block."""
    token = _TRUSTED.set(bool(enabled))
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def code_trusted() -> bool:
    """True inside `trust_code()`."""
    return _TRUSTED.get()


def is_user_code(name: str) -> bool:
    """True for names of the form `file.py:factory` or `package.module:factory` (not `timm:`)."""
    if not isinstance(name, str) or name.count(":") != 1 or name.startswith("timm:"):
        return False
    where, factory = name.split(":")
    return bool(where) and factory.isidentifier() and (where.endswith(".py") or bool(_MODULE.match(where)))


def canonical_name(name: str) -> str:
    """`file.py:factory` with the file made absolute, so later commands find it from any folder."""
    if not is_user_code(name):
        return name
    where, factory = name.split(":")
    if where.endswith(".py") and Path(where).is_file():
        return f"{Path(where).resolve()}:{factory}"
    return name


def _load_module(where: str) -> ModuleType:
    if not where.endswith(".py"):
        try:
            return importlib.import_module(where)
        except ImportError as exc:
            raise NotFoundError(f"cannot import module {where!r} ({exc}); pass path/to/file.py:factory or a "
                                f"module on the Python path") from exc
    path = Path(where).resolve()
    if not path.is_file():
        raise NotFoundError(f"model file {where} does not exist; pass path/to/file.py:factory")
    key = f"facompress_user_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{where} cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module  # dataclasses and pickling look classes up by module name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's code failed: one line, not our traceback
        del sys.modules[key]
        raise ConfigError(f"importing {where} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _factory(name: str) -> Callable[[], nn.Module]:
    where, attr = name.split(":")
    module = _load_module(where)
    factory = getattr(module, attr, None)
    if not callable(factory):
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                       and getattr(v, "__module__", None) == module.__name__)
        raise NotFoundError(f"{where} has no function {attr!r}; its own functions and classes: "
                            f"{', '.join(found) or 'none'}")
    return factory


def _call(name: str) -> nn.Module:
    from torch import nn

    try:
        model = _factory(name)()
    except (NotFoundError, ConfigError):
        raise
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(f"model {name}: the factory raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model {name}: the factory returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def _builder(name: str) -> Callable[[bool], nn.Module]:
    def build(imagenet: bool) -> nn.Module:
        _require_trust(name)
        model = _call(name)
        if not imagenet:  # "none": start from fresh initialisation, whatever the factory loaded
            for module in model.modules():
                reset = getattr(module, "reset_parameters", None)
                if callable(reset):
                    reset()
        return model

    return build


def _require_trust(name: str) -> None:
    if not code_trusted():
        raise ConfigError(f"model {name!r} is built by importing and running that Python code, which facompress "
                          f"does only when asked: pass trust_code if you trust it "
                          f"(Python: wrap the call in fa_compress.models.trust_code())")


def resolve(name: str) -> ModelSpec:
    """The spec of a user factory (needs `trust_code()`): the factory runs once to find its classifier."""
    from ._discover import find_head, why_not_gated

    _require_trust(name)
    if name in _SPECS:
        return _SPECS[name]
    model = _call(name)
    reason = why_not_gated(model)
    if reason:
        raise ConfigError(f"model {name} {reason}; add BatchNorm2d after the convolutions")
    head = find_head(model, DISCOVERY_IMG_SIZE, f"model {name}")
    spec = ModelSpec(name, _builder(name), head, IMAGENET_NORMALIZATION, DISCOVERY_IMG_SIZE,
                     min_img_size=16, source="user")
    _SPECS[name] = spec
    return spec


register_family(Family("user code", is_user_code, resolve, lambda: [], cache=False))
