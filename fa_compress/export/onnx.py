"""PyTorch -> one self-contained, simplified, checked ONNX file with metadata.

>>> meta = onnx_metadata(classes=["cat", "dog"], img_size=64, mean=(0.5,) * 3, std=(0.5,) * 3,
...                      source_run="runs/2024-01-01_1200")
>>> result = export_onnx(model, Path("out/model.onnx"), img_size=64, metadata=meta)
>>> result.nodes_before, result.nodes_after   # e.g. (65, 49) for resnet18

Which exporter: torch 2.14 offers the dynamo-based exporter (the default) and the TorchScript one
(`dynamo=False`). Measured here on resnet18 at 64 px, 3 runs each (2-core CPU):

    exporter     export time   nodes raw -> after onnxslim   opset asked 17 -> written   max |diff| vs torch
    TorchScript  0.37-0.57 s   65 -> 49                      17                          9.5e-7
    dynamo       3.5-4.9 s     49 -> 49                      18 (cannot write < 18)      8.9e-7

Both give the same 49-node graph once simplified, with the same accuracy; the TorchScript exporter is
~8x faster, honours opsets 13-17 (which older TensorRT and onnxruntime builds want), writes nothing
to stdout, and needs no extra package (the dynamo exporter needs `onnxscript`, which facompress does
not depend on). So facompress uses `dynamo=False` and silences its DeprecationWarning. If a future
torch removes it, switch `_trace_to_proto` to `dynamo=True, external_data=False` (opset >= 18).
"""

from __future__ import annotations

import inspect
import io
import json
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._deps import require
from ..run import atomic_write_bytes
from ..errors import CheckpointError, ConfigError, NotFoundError
from ._records import size_mb

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
MIN_OPSET = 13  # per-channel Q/DQ (axis attribute) needs 13; TensorRT's explicit quantisation too
MAX_OPSET = 20  # TensorRT 10's ONNX parser reads opsets up to 20
DEFAULT_OPSET = 17


@dataclass(frozen=True)
class OnnxExport:
    """One written ONNX file and how it was made."""

    path: Path
    opset: int
    nodes_before: int  # graph nodes straight from the exporter
    nodes_after: int  # after onnxslim (== nodes_before when simplify=False)
    size_mb: float
    export_s: float  # trace + simplify + check + write


def check_opset(opset: int) -> None:
    """Raise `ConfigError` unless `opset` is one TensorRT 10 and onnxruntime both read."""
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ConfigError(
            f"opset {opset} is not supported: TensorRT 10 parses ONNX opsets up to {MAX_OPSET} and per-channel "
            f"INT8 needs at least {MIN_OPSET}; choose an opset in {MIN_OPSET}-{MAX_OPSET} (default {DEFAULT_OPSET})"
        )


def check_no_gates(model: nn.Module) -> None:
    """Raise `ConfigError` if `model` still holds gate modules (they must be folded before export)."""
    gated = [name or "<root>" for name, m in model.named_modules() if "Gated" in type(m).__name__]
    if gated:
        shown = ", ".join(gated[:3]) + (f" and {len(gated) - 3} more" if len(gated) > 3 else "")
        raise ConfigError(
            f"the model still has {len(gated)} gate module(s) ({shown}); fold them first with "
            "fa_compress.gates.fold_gates(model) so the exported graph has no gate multiplications"
        )


def onnx_metadata(*, classes: Sequence[str], img_size: int, mean: Sequence[float], std: Sequence[float],
                  source_run: str = "", model_name: str = "") -> dict[str, str]:
    """The metadata_props facompress writes: what a deployer needs to feed the model and read its output."""
    from .. import __version__

    return {
        "classes": json.dumps(list(classes)),
        "input_name": INPUT_NAME,
        "input_shape": json.dumps(["batch", 3, img_size, img_size]),  # NCHW, float32
        "normalization_mean": json.dumps([float(v) for v in mean]),
        "normalization_std": json.dumps([float(v) for v in std]),
        "output_name": OUTPUT_NAME,
        "source_run": str(source_run),
        "model_name": str(model_name),
        "producer": f"facompress {__version__}",
    }


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata_props of an ONNX file, as a dict."""
    onnx = require("onnx", "reading ONNX files")
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"ONNX file {path} does not exist")
    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


def check_onnx_file(path: Path) -> None:
    """`CheckpointError` unless `path` parses as an ONNX model that passes onnx's checker."""
    onnx = require("onnx", "reading ONNX files")
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"ONNX file {path} does not exist")
    try:
        onnx.checker.check_model(onnx.load(str(path), load_external_data=False))
    except Exception as exc:  # noqa: BLE001 - protobuf DecodeError, ValidationError, ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CheckpointError(f"{path} is not a readable ONNX model ({first}); it is truncated or corrupt: "
                              f"re-create it with `facompress export`") from exc


def export_onnx(model: nn.Module, path: Path, *, img_size: int, opset: int = DEFAULT_OPSET,
                metadata: Mapping[str, str], simplify: bool = True) -> OnnxExport:
    """Export `model` (gates folded) to `path`: dynamic batch, input "input", output "logits", checked.

    The file is written through a temporary name in the same folder and renamed, so a failure never
    leaves a partial `.onnx`. The model's train/eval mode is restored afterwards.
    """
    check_opset(opset)
    if not isinstance(img_size, int) or img_size < 1:
        raise ConfigError(f"img_size must be a positive integer number of pixels, got {img_size!r}")
    _check_metadata(metadata)
    path = Path(path)
    if not path.parent.is_dir():
        raise NotFoundError(f"folder {path.parent} does not exist; create it or choose another out")
    check_no_gates(model)

    start = time.perf_counter()
    proto = _trace_to_proto(model, img_size, opset)
    nodes_before = len(proto.graph.node)
    if simplify:
        proto = _simplify(proto)
    _refuse_gate_tensors(proto)
    del proto.metadata_props[:]
    for key, value in sorted(metadata.items()):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx = require("onnx", "ONNX export")
    onnx.checker.check_model(proto, full_check=True)
    atomic_write_bytes(path, proto.SerializeToString())
    return OnnxExport(path=path, opset=opset, nodes_before=nodes_before, nodes_after=len(proto.graph.node),
                      size_mb=size_mb(path), export_s=round(time.perf_counter() - start, 3))


def _check_metadata(metadata: Mapping[str, str]) -> None:
    bad = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise ConfigError(f"ONNX metadata keys and values must be strings; not so for {bad}. "
                          "Serialise lists with json.dumps (see onnx_metadata)")


def _trace_to_proto(model: nn.Module, img_size: int, opset: int) -> Any:
    """TorchScript-export `model` in eval mode into memory and parse it back as a ModelProto."""
    onnx = require("onnx", "ONNX export")
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    dummy = torch.randn(2, 3, img_size, img_size, device=device)  # (B, C, H, W); B=2 so batch is not specialised to 1
    kwargs: dict[str, Any] = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # see the module docstring for why
    buf = io.BytesIO()
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the exporter's DeprecationWarning and TracerWarnings
            torch.onnx.export(
                model, (dummy,), buf, opset_version=opset, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, do_constant_folding=True,
                **kwargs,
            )
    except torch.onnx.errors.UnsupportedOperatorError as exc:  # type: ignore[attr-defined]
        raise ConfigError(f"the model uses an operator ONNX opset {opset} lacks ({exc}); try a higher opset "
                          f"(up to {MAX_OPSET})") from exc
    finally:
        model.train(was_training)
    return onnx.load_from_string(buf.getvalue())


def _simplify(proto: Any) -> Any:
    """onnxslim: constant folding, dead-node removal, fusions; metadata is set afterwards."""
    onnxslim = require("onnxslim", "ONNX graph simplification")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return onnxslim.slim(proto)


def _refuse_gate_tensors(proto: Any) -> None:
    """No initializer may still be a gate parameter (`<layer>.gate`): a sign that folding did not happen.

    Only the parameter's own name counts: timm's squeeze-excite blocks have a `gate` activation
    (`/s1/b1/se/gate/Sigmoid`) that has nothing to do with facompress's gates."""
    left = [t.name for t in proto.graph.initializer if t.name.rsplit(".", 1)[-1].lower() == "gate"]
    if left:
        raise ConfigError(f"the exported graph still holds gate tensors ({', '.join(left[:3])}); fold the gates "
                          "with fa_compress.gates.fold_gates(model) before export")
