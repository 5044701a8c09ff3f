"""Safe loading: no file facompress reads can run code, and hostile files are refused with one line.

Pickles whose `__reduce__` runs a command are saved with `torch.save` (and as a bare pickle) where
facompress reads training states and `--weights`; safetensors model files get damaged or hostile
headers. Each must be refused with exit code 2 and one `error:` line, and the payload must never run.
"""

from __future__ import annotations

import ast
import builtins
import json
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fa_compress.run import load_state_dict_file, load_torch_file
from tests.conftest import run_cli
from fa_compress.errors import CheckpointError
from fa_compress.run import Run, load_train_state

REPO = Path(__file__).resolve().parents[1]
TINY = {"model": "mobilenet_v2", "weights": "none", "data": "fake", "img_size": 32, "limit_train": 64,
        "limit_test": 32}


# ---- hostile pickles --------------------------------------------------------------------------------
class ShellPayload:
    """Unpickling this runs `touch MARKER` through os.system."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class ExecPayload:
    """Unpickling this writes MARKER through builtins.exec (no shell involved)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return builtins.exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",)


def _torch_saved(obj: object, path: Path) -> Path:
    torch.save(obj, path)
    return path


def _pickled(obj: object, path: Path) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=2))
    return path


PAYLOADS = {
    "os-system": lambda marker, path: _torch_saved(ShellPayload(marker), path),
    "builtins-exec": lambda marker, path: _torch_saved(ExecPayload(marker), path),
    # a plausible training state with the payload hidden in one value
    "nested-in-train-state": lambda marker, path: _torch_saved(
        {"phase_index": 0, "step": 0, "model": {"w": torch.zeros(2)}, "rng": ShellPayload(marker)}, path),
    # a bare pickle stream, not torch's zip format: torch.load's legacy path must refuse it too
    "bare-pickle": lambda marker, path: _pickled(ExecPayload(marker), path),
}


@pytest.mark.parametrize("kind", PAYLOADS)
def test_payload_is_live_when_unpickled_unsafely(kind, tmp_path):
    """Guard for the tests below: these files really do run code under a plain unpickler."""
    marker = tmp_path / "MARKER"
    path = PAYLOADS[kind](marker, tmp_path / "evil.pt")
    if kind == "bare-pickle":
        pickle.loads(path.read_bytes())
    else:
        torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("kind", PAYLOADS)
def test_load_torch_file_refuses_to_unpickle(kind, tmp_path):
    marker = tmp_path / "MARKER"
    path = PAYLOADS[kind](marker, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="refused to unpickle"):
        load_torch_file(path)
    with pytest.raises(CheckpointError, match="refused to unpickle"):
        load_train_state(path)
    with pytest.raises(CheckpointError, match="refused to unpickle"):
        load_state_dict_file(path)
    assert not marker.exists()


def test_plain_checkpoint_still_loads(tmp_path):
    """The refusal is about code, not about checkpoints: tensors and plain containers load."""
    state = {"phase_index": 1, "step": 3, "model": {"w": torch.arange(4.0)}, "rng": torch.get_rng_state()}
    loaded = load_torch_file(_torch_saved(state, tmp_path / "ok.pt"))
    torch.testing.assert_close(loaded["model"]["w"], torch.arange(4.0))
    assert loaded["phase_index"] == 1 and loaded["step"] == 3


# ---- through the CLI -----------------------------------------------------------------------------
def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def _assert_refused(code: object, out: str, err: str, word: str) -> None:
    lines = err.strip().splitlines()
    assert "Traceback" not in out + err, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert word.lower() in lines[0].lower(), lines[0]
    assert code == 2, (code, err)



def _run_with_finetune_stage(path: Path, status: str, **stage) -> Run:
    """A run folder whose manifest records a tiny fine-tuning (nothing trained: only what loaders read)."""
    from fa_compress.train.stage import FinetuneOptions

    run = Run.create(path=path)
    run.record("finetune", {"status": status, "options": FinetuneOptions(**TINY).to_dict(), **stage})
    return run


@pytest.mark.parametrize("kind", PAYLOADS)
def test_finetune_resume_refuses_a_malicious_train_state(kind, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    run = _run_with_finetune_stage(tmp_path / "run", "running")
    PAYLOADS[kind](marker, run.path / "train_state.pt")
    before = _snapshot(tmp_path)
    _assert_refused(*run_cli(["finetune", "--resume", "--run", str(run.path), "--quiet"], capsys), "refused to unpickle")
    assert not marker.exists()
    assert _snapshot(tmp_path) == before


def test_finetune_resume_refusal_in_a_real_process(tmp_path):
    """The same through `python -m fa_compress.cli.app`: real exit status, real stderr, payload never ran."""
    marker = tmp_path / "MARKER"
    run = _run_with_finetune_stage(tmp_path / "run", "running")
    PAYLOADS["os-system"](marker, run.path / "train_state.pt")
    proc = subprocess.run([sys.executable, "-m", "fa_compress.cli.app", "finetune", "--resume", "--run",
                           str(run.path), "--quiet"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "FACOMPRESS_RUNS": str(tmp_path / "runs")})
    _assert_refused(proc.returncode, proc.stdout, proc.stderr, "refused to unpickle")
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin"])
@pytest.mark.parametrize("kind", ["os-system", "builtins-exec"])
def test_finetune_weights_refuses_a_malicious_pickle(kind, suffix, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    weights = PAYLOADS[kind](marker, tmp_path / f"weights{suffix}")
    before = _snapshot(tmp_path)
    argv = ["finetune", "--model", "mobilenet_v2", "--weights", str(weights), "--data", "fake", "--img-size", "32",
            "--limit-train", "64", "--limit-test", "32", "--run", str(tmp_path / "run"), "--quiet"]
    _assert_refused(*run_cli(argv, capsys), "refused to unpickle")
    assert not marker.exists()
    assert _snapshot(tmp_path) == before  # no run folder either


# ---- hostile safetensors headers ------------------------------------------------------------------
def _safetensors(header: bytes | dict, data: bytes = b"", length: int | None = None) -> bytes:
    """A safetensors byte string: u64 little-endian header length, the JSON header, the data."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def _valid_with_meta(meta: object, tensors: dict | None = None) -> bytes:
    from safetensors.torch import save

    if tensors is None:  # a real classifier and first conv, so counts are compared with actual shapes
        tensors = {"classifier.1.weight": torch.zeros(10, 4), "features.0.0.weight": torch.zeros(8, 3, 3, 3)}
    return save(tensors, metadata={"facompress": meta if isinstance(meta, str) else json.dumps(meta)})


def _meta(**override) -> dict:
    meta = {"arch": "mobilenet_v2", "num_classes": 10, "classes": [f"class_{i}" for i in range(10)],
            "img_size": 32, "normalization": {"mean": [0.5] * 3, "std": [0.5] * 3}, "gated": False,
            "structure": {"classifier.1": {"kind": "linear", "in": 4, "out": 10}}}
    return {**meta, **override}


HOSTILE_FILES = {
    "header-length-2**62": (lambda: _safetensors({}, length=2**62), "safetensors"),
    "header-longer-than-file": (lambda: _safetensors({}, length=10_000), "safetensors"),
    "header-not-json": (lambda: _safetensors(b"{\"a\": [1, 2,, }"), "safetensors"),
    "header-json-list": (lambda: _safetensors(b"[1, 2, 3]"), "safetensors"),
    "tensor-offsets-past-end": (lambda: _safetensors(
        {"w": {"dtype": "F32", "shape": [1 << 20, 1 << 20], "data_offsets": [0, 1 << 42]}}, b"\0" * 16), "safetensors"),
    "metadata-not-a-string": (lambda: _safetensors({"__metadata__": {"facompress": {"arch": 1}}}), "safetensors"),
    "no-facompress-metadata": (lambda: _safetensors({"__metadata__": {"format": "pt"}}), "facompress metadata"),
    "facompress-metadata-not-json": (lambda: _valid_with_meta("{'arch': os.system}"), "metadata"),
    "facompress-metadata-a-list": (lambda: _valid_with_meta("[1, 2]"), "metadata"),
    "arch-is-code": (lambda: _valid_with_meta(_meta(arch="__import__('os').system('touch MARKER')")), "architecture"),
    "arch-not-a-string": (lambda: _valid_with_meta(_meta(arch=["resnet18"])), "architecture"),
    "num-classes-10**10": (lambda: _valid_with_meta(_meta(num_classes=10**10)), "classes"),
    "img-size-10**6": (lambda: _valid_with_meta(_meta(img_size=10**6)), "img_size"),
    "structure-10**9-channels": (lambda: _valid_with_meta(_meta(structure={
        "features.0.0": {"kind": "conv", "in": 3, "out": 10**9, "groups": 1}})), "structure"),
    "structure-negative-channels": (lambda: _valid_with_meta(_meta(structure={
        "features.0.1": {"kind": "bn", "features": -4}})), "structure"),
    "structure-entry-not-an-object": (lambda: _valid_with_meta(_meta(structure={"features.0.0": 5})), "structure"),
    "structure-a-list": (lambda: _valid_with_meta(_meta(structure=[1, 2])), "structure"),
}


@pytest.mark.parametrize("command", ["prune", "export", "bench"])
@pytest.mark.parametrize("name", HOSTILE_FILES)
def test_run_model_with_hostile_safetensors_header_is_refused(name, command, tmp_path, capsys):
    make, word = HOSTILE_FILES[name]
    run = _run_with_finetune_stage(tmp_path / "run", "done", artifacts={"model": "finetuned.safetensors"})
    (run.path / "finetuned.safetensors").write_bytes(make())
    before = _snapshot(tmp_path)
    argv = {"prune": ["prune", "--run", str(run.path), "--quiet"], "export": ["export", "--run", str(run.path)],
            "bench": ["bench", "--run", str(run.path), "--backend", "torch-cpu", "--quiet"]}[command]
    _assert_refused(*run_cli(argv, capsys), word)
    assert _snapshot(tmp_path) == before
    assert not (tmp_path / "MARKER").exists() and not Path("MARKER").exists()


# ---- the source itself ----------------------------------------------------------------------------
def _sources() -> list[Path]:
    return sorted([*(REPO / "fa_compress").rglob("*.py"), *(REPO / "cli").rglob("*.py")])


def test_torch_load_only_in_checkpoint_module_with_weights_only():
    """`grep torch.load` finds it only in fa_compress/run/files.py, and every call there passes
    `weights_only=True` as a literal."""
    mentions = {str(p.relative_to(REPO)) for p in _sources() if "torch.load" in p.read_text()}
    assert mentions == {"fa_compress/run/files.py"}
    calls = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"):
                flag = next((k.value for k in node.keywords if k.arg == "weights_only"), None)
                calls.append((str(path.relative_to(REPO)), node.lineno, getattr(flag, "value", None)))
    assert calls, "expected torch.load in fa_compress/run/files.py"
    assert all(file == "fa_compress/run/files.py" and flag is True for file, _, flag in calls), calls


def test_no_other_unpickling_in_the_package():
    """No pickle/dill/joblib loads, no torch.jit.load, no numpy allow_pickle anywhere in the package."""
    banned = ("pickle.load", "dill.load", "joblib.load", "torch.jit.load", "allow_pickle=True", "weights_only=False",
              "cloudpickle")
    found = [(str(p.relative_to(REPO)), b) for p in _sources() for b in banned if b in p.read_text()]
    assert found == []
