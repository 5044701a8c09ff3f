"""PyTorch -> a checked `torch.export` program (`.pt2`) that plain PyTorch loads, without facompress.

>>> result = export_torch_program(model, Path("out/model.pt2"), img_size=64, metadata=meta)  # gates folded
>>> enforce(check_program_parity(model, result.path, images), discard_file=True)  # ParityError, no file

Where the file goes, three lines of torch run it (x: (N, 3, H, W) float32, normalised as in training,
any N >= 1; the torch there should be the version that wrote it, `TorchProgramExport.torch_version`):

    import torch
    prog = torch.export.load("model.pt2")
    logits = prog.module()(x)  # (N, num_classes)

The metadata (classes, img_size, normalisation; `onnx.onnx_metadata`) rides along as an extra file:
`extra = {"facompress.json": ""}; torch.export.load(path, extra_files=extra); json.loads(extra["facompress.json"])`.

**Loading a .pt2 can run arbitrary code: load only files you would run as code.** `torch.export.load`
(its own docstring: "uses pickle under the hood") calls `pt2_archive._package.load_pt2`, and JSON inside
the file, not the caller, picks how each part is read:
- `_load_state_dict` / `_load_constants`: a weight or tensor constant marked `use_pickle` is read with
  torch's `load` with `weights_only` off; an `opaque_obj_*` constant with plain `pickle`'s loads;
- `ExportedProgramDeserializer.deserialize` reads the sample inputs every archive carries
  (`data/sample_inputs/model.pt`) with `serde.serialize.deserialize_torch_artifact`, which tries
  torch's `load` with `weights_only=True` and on failure retries with `weights_only` off.
Checked with torch 2.14: files crafted each of the three ways ran their code inside `torch.export.load`
(the first two then loaded and ran normally). `TORCH_FORCE_WEIGHTS_ONLY_LOAD=1` blocks the two
`load` paths but not `pickle`'s loads. The files written here need no unpickling of code (raw weight
bytes, a plain tensor as sample input), but a reader cannot tell: the safe format to share or receive
weights stays the run's `.safetensors` checkpoint (what facompress itself loads).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, NotFoundError
from ..run import atomic_write_bytes
from ._records import size_mb
from .onnx import check_no_gates
from .parity import ParityReport, Tolerance, _torch_logits, compare_logits

SUFFIX = ".pt2"  # torch.export.load warns on any other name
METADATA_FILE = "facompress.json"  # the extra file holding the metadata
# The program runs the same aten kernels as eager PyTorch (max |diff| 0.0 on resnet18, batch 1/5/8), so
# the gate is at torch.testing.assert_close's float32 scale (atol 1e-5), not ONNX's 1e-4.
PROGRAM_TOLERANCE = Tolerance(max_rel_err=1e-5, min_top1_agreement=1.0)


@dataclass(frozen=True)
class TorchProgramExport:
    """One written `.pt2` file and how it was made."""

    path: Path
    size_mb: float
    export_s: float  # trace + serialise + write
    torch_version: str  # the torch that wrote it; older ones may not load it


def export_torch_program(model: nn.Module, path: Path, *, img_size: int,
                         metadata: Mapping[str, str] | None = None) -> TorchProgramExport:
    """`torch.export` `model` (gates folded, eval mode) with a dynamic batch dimension and save it to `path`.

    The program holds the model's device (export from the CPU for a file that runs anywhere). The file
    is written through a temporary name and renamed; the model's train/eval mode is restored.
    """
    path = Path(path)
    if path.suffix != SUFFIX:
        raise ConfigError(f"a torch.export program file must end in {SUFFIX}, got {path.name}")
    if not isinstance(img_size, int) or img_size < 1:
        raise ConfigError(f"img_size must be a positive integer number of pixels, got {img_size!r}")
    if not path.parent.is_dir():
        raise NotFoundError(f"folder {path.parent} does not exist; create it or choose another out")
    check_no_gates(model)

    start = time.perf_counter()
    program = _trace(model, img_size)
    buf = io.BytesIO()
    extra = {METADATA_FILE: json.dumps(dict(metadata or {}), sort_keys=True)}
    torch.export.save(program, buf, extra_files=extra)
    atomic_write_bytes(path, buf.getvalue())
    return TorchProgramExport(path=path, size_mb=size_mb(path), export_s=round(time.perf_counter() - start, 3),
                              torch_version=torch.__version__)


def check_program_parity(model: nn.Module, path: Path, images: torch.Tensor, *,
                         batch_sizes: Sequence[int] = (1, 8),
                         tolerance: Tolerance = PROGRAM_TOLERANCE) -> ParityReport:
    """Load `path` back with `torch.export.load` and compare its logits on `images` (N, 3, H, W), already
    normalised, with `model`'s, once per batch size (so a broken dynamic batch dimension shows)."""
    if images.ndim != 4 or len(images) == 0:
        raise ConfigError(f"parity needs a non-empty (N, C, H, W) image batch, got shape {tuple(images.shape)}")
    sizes = tuple(int(b) for b in batch_sizes)
    if not sizes or min(sizes) < 1:
        raise ConfigError(f"batch sizes must be positive integers, got {batch_sizes}")
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"torch.export program {path} does not exist")
    program = torch.export.load(path).module()
    references = [_torch_logits(model, images, b) for b in sizes]  # each (N, K)
    candidates = [_program_logits(program, images, b) for b in sizes]  # each (N, K)
    return compare_logits(references, candidates, path=path, batch_sizes=sizes, tolerance=tolerance)


def _trace(model: nn.Module, img_size: int) -> torch.export.ExportedProgram:
    """`torch.export.export` in eval mode, batch dimension dynamic; `ConfigError` if the model fixes it."""
    from torch._dynamo.exc import UserError as TorchExportUserError  # loaded by torch.export anyway

    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    example = torch.randn(2, 3, img_size, img_size, device=device)  # (B, C, H, W); B=2 so batch is not specialised
    batch = torch.export.Dim("batch", min=1)
    was_training = model.training
    model.eval()
    try:
        return torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    except TorchExportUserError as exc:  # e.g. a reshape to a fixed batch size
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ConfigError(f"torch.export cannot give this model a dynamic batch dimension ({first}); export "
                          "ONNX only (drop torch), or remove the fixed batch size from its forward") from exc
    finally:
        model.train(was_training)


def _program_logits(program: nn.Module, images: torch.Tensor, batch_size: int) -> np.ndarray:
    """The loaded program's logits (N, K) in float32 on the CPU, `batch_size` images at a time."""
    device = next((t.device for t in program.state_dict().values()), torch.device("cpu"))
    with torch.inference_mode():
        out = [program(images[i : i + batch_size].to(device, torch.float32)).float().cpu()  # (B, K)
               for i in range(0, len(images), batch_size)]
    return torch.cat(out).numpy()  # (N, K)
