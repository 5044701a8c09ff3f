"""facompress: attention-gated transfer learning, gate-ranked pruning and deployment of CNNs.

The chain on your own model (see fa_compress/api.py and examples/own_model.py):

>>> import fa_compress as fc
>>> fc.insert_gates(model)
>>> fc.finetune(model, train_set, val_set)
>>> pruned = fc.prune(model, example, keep=0.6, train_data=train_set)
>>> fc.export_onnx(pruned, "model.onnx", example_input=example)

Importing this package is cheap: the names below resolve on first use, and torch and friends
load only then.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (imported on first access)
_LAZY = {
    "insert_gates": "fa_compress.api",
    "fold_gates": "fa_compress.api",
    "finetune": "fa_compress.api",
    "evaluate": "fa_compress.api",
    "prune": "fa_compress.api",
    "export_onnx": "fa_compress.api",
    "save_pruned": "fa_compress.api",
    "load_pruned": "fa_compress.api",
    "model_size": "fa_compress.api",
    "find_classifier": "fa_compress.api",
    "ModelSize": "fa_compress.api",
    "check_run": "fa_compress.api",
    "build_model": "fa_compress.models",
    "trust_code": "fa_compress.models",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fa_compress' has no attribute {name!r}")
    imported = importlib.import_module(module)
    value = getattr(imported, name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
