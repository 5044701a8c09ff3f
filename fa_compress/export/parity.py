"""The parity gate: does an exported file compute what the PyTorch model computes?

Errors are measured on the logits of the same images, run through PyTorch (eval mode, no grad) and
through onnxruntime, once per batch size (so a batch-dependent bug in the dynamic batch dimension
shows up):

    max_abs_err   = max over images and classes of |onnx - torch|
    max_rel_err   = max_abs_err / max over images and classes of |torch|
    top1_agreement = share of (image, batch size) pairs whose argmax class is the same
    near_ties      = pairs whose class changed between two classes PyTorch scored within
                     tolerance.tie_margin * max |torch| of each other

`max_rel_err` is relative to the largest logit magnitude, not element-wise: element-wise ratios
explode on logits near zero, which carry no decision. A file passes when `max_rel_err <=
tolerance.max_rel_err` and `(agreeing pairs + near_ties) / pairs >= tolerance.min_top1_agreement`:
a class change the reference model itself could not decide is not evidence of a broken file.

>>> report = check_parity(model, Path("model.onnx"), images)   # FP32 tolerance
>>> enforce(report)                                             # raises ParityError if not passed
>>> enforce(check_parity(model, int8_path, images, tolerance=INT8_TOLERANCE))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, ParityError
from ._ort import open_session, run_batches


@dataclass(frozen=True)
class Tolerance:
    """How far an artifact may stray from PyTorch and still be kept."""

    max_rel_err: float  # of max |logit|
    min_top1_agreement: float  # 0..1
    # of max |logit|: a changed class that the reference scored within this of its own top class is a
    # near-tie, counted as agreeing. 0 counts every changed class against the file.
    tie_margin: float = 0.0


# Float32 has nothing to lose: only op-ordering noise (~1e-6 relative) is allowed, and no changed class.
FP32_TOLERANCE = Tolerance(max_rel_err=1e-4, min_top1_agreement=1.0)
# FP16 weights and activations: ~1e-3 relative noise; a near-tie may flip on a few images.
FP16_TOLERANCE = Tolerance(max_rel_err=1e-2, min_top1_agreement=0.97)
# INT8 changes the function itself; what matters is accuracy on the test set, measured separately.
# This gate only catches a broken quantisation (wrong scales, wrong layout).
# INT8 logits legitimately move by a large fraction of the top logit on small, heavily pruned
# models (pruned Lite0 on Fashion-MNIST: 0.54 at 88-91% top-1 agreement), so the INT8 gate only
# catches a broken quantisation through top-1 agreement; the accuracy drop on the test split is
# measured and recorded separately by the export pipeline. A model trained on a few dozen images
# scores many images as near-ties (pruned Lite0 on 27 photos: 6 of 9 test images within 4% of the
# largest logit), and INT8 noise (9% of it there) flips those without the file being wrong; a flip
# between classes the reference scored within 5% of its largest logit is therefore not held against it.
INT8_TOLERANCE = Tolerance(max_rel_err=1.0, min_top1_agreement=0.80, tie_margin=0.05)


@dataclass(frozen=True)
class ParityReport:
    """Parity of one exported file against the PyTorch model it came from."""

    path: Path  # the artifact checked (.onnx or .engine)
    max_abs_err: float
    max_rel_err: float  # max_abs_err / max |torch logit|
    top1_agreement: float  # 0..1, over all batch sizes
    near_ties: int  # (image, batch size) pairs whose class changed between near-tied classes
    batch_sizes: tuple[int, ...]
    n_images: int
    passed: bool
    tolerance: Tolerance


def check_parity(model: nn.Module, onnx_path: Path, images: torch.Tensor, *,
                 batch_sizes: Sequence[int] = (1, 8), providers: Sequence[str] | None = None,
                 tolerance: Tolerance = FP32_TOLERANCE) -> ParityReport:
    """Run `images` (N, 3, H, W), already normalised, through `model` and `onnx_path`; compare logits."""
    if images.ndim != 4 or len(images) == 0:
        raise ConfigError(f"parity needs a non-empty (N, C, H, W) image batch, got shape {tuple(images.shape)}")
    sizes = tuple(int(b) for b in batch_sizes)
    if not sizes or min(sizes) < 1:
        raise ConfigError(f"batch sizes must be positive integers, got {batch_sizes}")
    session = open_session(Path(onnx_path), providers)
    images_np = images.detach().to("cpu", torch.float32).numpy()  # (N, C, H, W)
    references = [_torch_logits(model, images, b) for b in sizes]  # each (N, K)
    candidates = [run_batches(session, images_np, b) for b in sizes]  # each (N, K)
    return compare_logits(references, candidates, path=Path(onnx_path), batch_sizes=sizes, tolerance=tolerance)


def compare_logits(references: Sequence[np.ndarray], candidates: Sequence[np.ndarray], *, path: Path,
                   batch_sizes: Sequence[int], tolerance: Tolerance) -> ParityReport:
    """The parity figures of `candidates` against `references`, one (N, K) pair per batch size.

    Used for PyTorch vs onnxruntime here, and for onnxruntime vs a TensorRT engine in `tensorrt.py`.
    """
    for ref, got in zip(references, candidates, strict=True):
        if got.shape != ref.shape:
            raise ParityError(f"{path} returns logits of shape {got.shape}; the reference has {ref.shape}")
    finite = all(np.isfinite(got).all() for got in candidates)
    max_abs = float("inf")
    if finite:
        max_abs = max(float(np.max(np.abs(got - ref))) for ref, got in zip(references, candidates))
    scale = max(max(float(np.max(np.abs(ref))) for ref in references), float(np.finfo(np.float32).tiny))
    max_rel = max_abs / scale
    agree, tied = [], []
    for ref, got in zip(references, candidates):
        rows = np.arange(len(ref))
        pick, top = np.argmax(got, axis=1), np.argmax(ref, axis=1)  # (N,), (N,)
        gap = ref[rows, top] - ref[rows, pick]  # (N,) how far the reference scores the pick below its top class
        agree.append(pick == top)
        tied.append((pick != top) & (gap <= tolerance.tie_margin * scale) & finite)
    agree, tied = np.concatenate(agree), np.concatenate(tied)
    top1 = float(np.mean(agree))
    passed = max_rel <= tolerance.max_rel_err and float(np.mean(agree | tied)) >= tolerance.min_top1_agreement
    return ParityReport(path=Path(path), max_abs_err=max_abs, max_rel_err=float(max_rel),
                        top1_agreement=top1, near_ties=int(tied.sum()), batch_sizes=tuple(batch_sizes),
                        n_images=len(references[0]), passed=bool(passed), tolerance=tolerance)


def enforce(report: ParityReport, *, discard_file: bool = False) -> ParityReport:
    """Return `report` if it passed; otherwise raise `ParityError` with the figures.

    With `discard_file=True` a failing file is deleted first, so no unchecked artifact is left behind.
    """
    if report.passed:
        return report
    tol = report.tolerance
    fate = "not kept" if discard_file else "left in place"
    if discard_file:
        report.path.unlink(missing_ok=True)
    raise ParityError(
        f"{report.path.name} does not match the PyTorch model: max relative error {report.max_rel_err:.3g} "
        f"(allowed {tol.max_rel_err:.3g}), max absolute error {report.max_abs_err:.3g}, top-1 agreement "
        f"{report.top1_agreement:.2%}{_ties(report)} (required {tol.min_top1_agreement:.2%}) on {report.n_images} "
        f"images at batch sizes {', '.join(map(str, report.batch_sizes))}; the file was {fate}. Re-export, or check for "
        "operators the exporter mistranslates"
    )


def _ties(report: ParityReport) -> str:
    """', plus N near-tie changes' where near-ties counted towards the agreement, else ''."""
    if not report.tolerance.tie_margin:
        return ""
    return (f" plus {report.near_ties} change(s) between classes the model scores within "
            f"{report.tolerance.tie_margin:.0%} of its largest logit")


def _torch_logits(model: nn.Module, images: torch.Tensor, batch_size: int) -> np.ndarray:
    """PyTorch eval-mode logits (N, K) in float32 on the CPU, computed `batch_size` images at a time."""
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            out = [model(images[i : i + batch_size].to(device, torch.float32)).float().cpu()  # (B, K)
                   for i in range(0, len(images), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out).numpy()  # (N, K)
