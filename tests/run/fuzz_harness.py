"""Mutate one file of a finished run, feed the run to every loader, and classify what each one did.

Shared by the property-based test (tests/run/test_fuzz_loaders.py, mutations drawn by hypothesis) and
`benchmarks/fuzz_runs.py` (thousands drawn at random). A mutation is a small frozen record, so a
failing one can be printed and replayed.

Outcomes: `verified` (loaded, and what was loaded is what facompress wrote), `refused` (the project's
`UserError`), `other` (any other exception: a bug), `silent` (loaded changed bytes without a word).
"""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fa_compress.errors import UserError
from fa_compress.models.saved import load_run_model

TARGETS = ("model", "header", "meta", "manifest", "onnx", "gates")
BYTE_OPS = ("flip", "truncate", "extend", "zero", "length")
JSON_OPS = ("wrong_type", "delete", "add_unknown", "hostile_path")
OPS = {"model": BYTE_OPS, "header": BYTE_OPS, "onnx": BYTE_OPS, "meta": JSON_OPS,
       "manifest": (*JSON_OPS, "flip", "truncate"), "gates": (*JSON_OPS, "flip")}
WRONG_VALUES: tuple[Any, ...] = (7, -1, 0, 2**63, 1e308, -0.5, True, None, "", "7", [], [1, "a"], {}, {"path": 3},
                                 "x" * 300, float("nan"))
HOSTILE_PATHS = ("../../../etc/passwd", "/etc/passwd", "a/../../b.safetensors", "..", ".", "\x00evil",
                 "finetuned.safetensors/../../x", "~/.ssh/id_rsa", "C:\\Windows\\x", "//server/share")
OUTCOMES = ("verified", "refused", "other", "silent")


@dataclass(frozen=True)
class Mutation:
    """One change to one file of a run: `where` in [0, 1) picks the place, `count` and `pick` the size and value."""

    target: str
    op: str
    where: float
    count: int = 1
    pick: int = 0

    def describe(self) -> str:
        return f"{self.target}:{self.op}(where={self.where:.4f}, count={self.count}, pick={self.pick})"


@dataclass(frozen=True)
class Outcome:
    loader: str
    outcome: str
    detail: str = ""


# ---- the run and its files ------------------------------------------------------------------------
@dataclass(frozen=True)
class Original:
    """The bytes of every file of the finished run, and its model as loaded, to compare loads with."""

    files: dict[str, bytes]
    model_state: dict[str, Any]
    model_meta: dict[str, Any]

    @classmethod
    def of(cls, run_dir: Path) -> Original:
        from fa_compress.run import load_model_file

        files = {p.name: p.read_bytes() for p in sorted(run_dir.iterdir()) if p.is_file()}
        state, meta = load_model_file(run_dir / "finetuned.safetensors")
        return cls(files, state, meta)

    def changed(self, run_dir: Path) -> set[str]:
        return {name for name, data in self.files.items()
                if not (run_dir / name).is_file() or (run_dir / name).read_bytes() != data}

    def restore(self, run_dir: Path) -> None:
        for name, data in self.files.items():
            if not (run_dir / name).is_file() or (run_dir / name).read_bytes() != data:
                (run_dir / name).write_bytes(data)


def target_file(run_dir: Path, target: str) -> Path:
    if target in ("model", "header", "meta"):
        return run_dir / "finetuned.safetensors"
    if target == "onnx":
        return next(iter(sorted(run_dir.glob("*.onnx"))))
    return run_dir / ("run.json" if target == "manifest" else "gates.json")


# ---- mutations ------------------------------------------------------------------------------------
def mutate(run_dir: Path, m: Mutation) -> None:
    """Apply `m` to its file in `run_dir`, in place."""
    path = target_file(run_dir, m.target)
    data = path.read_bytes()
    if m.target == "meta":
        _mutate_meta(path, m)
    elif m.op in JSON_OPS:
        path.write_bytes(json.dumps(_mutate_json(json.loads(data), m)).encode())
    else:
        lo, hi = _region(data, m.target)
        path.write_bytes(_mutate_bytes(data, m, lo, hi))


def _region(data: bytes, target: str) -> tuple[int, int]:
    """The byte range a mutation lands in: the safetensors header for `header`, else the whole file
    (the data section for `model`)."""
    if target in ("header", "model"):
        end = 8 + struct.unpack("<Q", data[:8])[0]
        return (0, end) if target == "header" else (end, len(data))
    return 0, len(data)


def _mutate_bytes(data: bytes, m: Mutation, lo: int, hi: int) -> bytes:
    buf = bytearray(data)
    span = max(hi - lo, 1)
    at = lo + int(m.where * span) % span
    if m.op == "flip":  # `count` bytes, spread over the region, each XORed with a non-zero value
        for i in range(max(m.count, 1)):
            buf[lo + (at - lo + i * 7919) % span] ^= (m.pick % 255) + 1
    elif m.op == "truncate":
        del buf[at:]
    elif m.op == "extend":
        buf[at:at] = bytes((m.pick + i) % 256 for i in range(max(m.count, 1)))
    elif m.op == "zero":
        end = min(at + 64 * max(m.count, 1), len(buf))
        buf[at:end] = bytes(end - at) if any(buf[at:end]) else b"\xff" * (end - at)
    elif m.op == "length":
        n = struct.unpack("<Q", data[:8])[0]
        lengths = (0, 1, n - 1, n + 1, len(data), 2**63, 2**64 - 1, int(m.where * len(data)), n + 8, 2)
        buf[:8] = struct.pack("<Q", lengths[m.pick % len(lengths)] % 2**64)
    return bytes(buf)


def _nodes(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON document (dict keys and list indices), the root excluded."""
    out = []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        out.append((*prefix, key))
        out.extend(_nodes(value, (*prefix, key)))
    return out


def _mutate_json(doc: Any, m: Mutation) -> Any:
    nodes = _nodes(doc)
    if not nodes:
        return WRONG_VALUES[m.pick % len(WRONG_VALUES)]
    path = nodes[int(m.where * len(nodes)) % len(nodes)]
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if m.op == "wrong_type":
        parent[last] = WRONG_VALUES[m.pick % len(WRONG_VALUES)]
    elif m.op == "hostile_path":
        parent[last] = HOSTILE_PATHS[m.pick % len(HOSTILE_PATHS)]
    elif m.op == "delete":
        del parent[last]
    else:  # add_unknown: a field no version of facompress knows, in the nearest object
        target = parent[last] if isinstance(parent[last], dict) else parent
        if isinstance(target, dict):
            target[f"zz_unknown_{m.pick}"] = WRONG_VALUES[m.pick % len(WRONG_VALUES)]
        else:
            target.append(WRONG_VALUES[m.pick % len(WRONG_VALUES)])
    return doc


def _mutate_meta(path: Path, m: Mutation) -> None:
    """Change the model file's rebuild metadata (structure included) and re-save it consistently, as a
    hostile but well-formed file would be."""
    from fa_compress.run import load_model_file, save_model_file

    state, meta = load_model_file(path)
    op = m.op if m.op in JSON_OPS else "wrong_type"
    save_model_file(path, state, _mutate_json(meta, Mutation(m.target, op, m.where, m.count, m.pick)))


# ---- the loaders ----------------------------------------------------------------------------------
def _same_model(original: Original, state: dict, meta: dict) -> bool:
    import torch

    return (meta == original.model_meta and state.keys() == original.model_state.keys()
            and all(torch.equal(state[k], original.model_state[k]) for k in state))


def loaders(run_dir: Path, original: Original, m: Mutation) -> dict[str, Callable[[], bool]]:
    """name -> call that loads something from the run and returns whether what it got is what
    facompress wrote (False: a silent load of changed bytes)."""
    from fa_compress.report.bench_stage import discover_artifacts
    from fa_compress.export.onnx import check_onnx_file
    from fa_compress.run import Run
    from fa_compress.models.saved import load_model
    from fa_compress.run import check_run
    from fa_compress.run import finetune_options
    from fa_compress.train.config import train_config_of_run

    changed = original.changed(run_dir)
    model_file = run_dir / "finetuned.safetensors"
    onnx_file = target_file(run_dir, "onnx")

    def run_model() -> bool:
        load_run_model(Run.open(run_dir), "finetuned")
        return "finetuned.safetensors" not in changed

    def file_model() -> bool:
        state, meta = load_model(model_file)
        return m.target == "meta" or _same_model(original, state.state_dict(), meta)

    def onnx() -> bool:
        Run.open(run_dir).verify_file(onnx_file)
        check_onnx_file(onnx_file)
        return onnx_file.name not in changed

    def gates() -> bool:
        Run.open(run_dir).read_json("gates.json")
        return "gates.json" not in changed

    def check() -> bool:  # must report damage whenever a file the run recorded changed
        return not check_run(run_dir).ok or not (changed - {"run.json"})

    return {
        "Run.open": lambda: bool(Run.open(run_dir)),
        "Run.load_model": run_model,
        "load_model(file)": file_model,
        "finetune_options": lambda: bool(finetune_options(Run.open(run_dir))) or True,
        "train_config_of_run": lambda: bool(train_config_of_run(Run.open(run_dir))),
        "Run.read_json": gates,
        "onnx verify+check": onnx,
        "discover_artifacts": lambda: isinstance(discover_artifacts(Run.open(run_dir)), list),
        "check_run": check,
    }


def classify(call: Callable[[], bool]) -> tuple[str, str]:
    """(outcome, detail) of one loader call."""
    try:
        ok = call()
    except UserError as exc:
        return "refused", str(exc)[:200]
    except Exception as exc:  # noqa: BLE001 - anything else is what the fuzzing looks for
        return "other", f"{type(exc).__name__}: {exc}"[:300]
    return ("verified", "") if ok else ("silent", "loaded changed content without a word")


def try_mutation(run_dir: Path, original: Original, m: Mutation) -> list[Outcome]:
    """Apply `m`, run every loader, restore the run; the outcome of each loader."""
    try:
        mutate(run_dir, m)
        return [Outcome(name, *classify(call)) for name, call in loaders(run_dir, original, m).items()]
    finally:
        original.restore(run_dir)


def copy_run(src: Path, dest: Path) -> Path:
    """A private copy of a run folder (files only)."""
    shutil.copytree(src, dest)
    return dest
