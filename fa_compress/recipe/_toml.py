"""A small TOML writer for recipes: tables of strings, whole numbers, floats, booleans and flat lists of
them; a None value is left out (written as a comment saying what leaving it out means). The standard
library reads TOML (`tomllib`) but does not write it.

>>> print(dumps({"finetune": {"model": "resnet18", "img_size": 224, "limit_train": None}},
...             notes={("finetune", "limit_train"): "all images"}))
[finetune]
model = "resnet18"
img_size = 224
# limit_train: not set (all images)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InternalError

# TOML basic strings: these characters must be escaped; other control characters as \\uXXXX
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _string(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _float(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = repr(value)  # the shortest text that reads back as the same float: 0.003, 1e-05, 1e+16
    return text if any(c in text for c in ".en") else text + ".0"


def value_text(value: Any) -> str:
    """One TOML value: `"text"`, `3`, `0.003`, `true`, `[1, 8]`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Sequence):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    raise InternalError(f"the recipe writer has no TOML form for {type(value).__name__} {value!r}")


def dumps(tables: Mapping[str, Mapping[str, Any]], *, header: Sequence[str] = (),
          notes: Mapping[tuple[str, str], str] | None = None) -> str:
    """TOML text of `tables` (table name -> key -> value) in their order, `header` as comment lines first.
    `notes[(table, key)]` is a comment: after a set value's line, or saying what a None (left out) means."""
    notes = notes or {}
    lines = [f"# {line}" if line else "#" for line in header]
    for table, values in tables.items():
        if lines:
            lines.append("")
        lines.append(f"[{table}]")
        for key, value in values.items():
            note = notes.get((table, key))
            if value is None:
                lines.append(f"# {key}: not set" + (f" ({note})" if note else ""))
            else:
                lines.append(f"{key} = {value_text(value)}" + (f"  # {note}" if note else ""))
    return "\n".join(lines) + "\n"
