"""The `export` stage: a run's model -> checked ONNX (+ INT8 / FP16 ONNX, + TensorRT engine, + a
`torch.export` program), recorded.

>>> result = export_run(None, ExportOptions(int8=True, fp16=True))   # the latest run's newest model
>>> result.parity.passed, result.int8_accuracy.drop_points
>>> export_run(None, ExportOptions(torch_program=True)).torch_program.path   # <model>.pt2 for plain PyTorch

Every artifact passes its parity gate before it is kept; a failing one is deleted and the figures
are recorded in run.json before the error is raised. Where TensorRT or a CUDA GPU is missing,
`trt=True` still writes and checks the ONNX files, records what is missing, then raises
`MissingDependencyError` whose `partial_result` attribute holds the `ExportResult` of what was written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, MissingDependencyError, NotFoundError
from ..run import Run
from ._records import to_record
from .onnx import DEFAULT_OPSET, OnnxExport, check_opset, export_onnx, onnx_metadata
from .parity import FP16_TOLERANCE, INT8_TOLERANCE, ParityReport, check_parity, enforce
from .quantize import DEFAULT_INT8_FORM, Int8Form, QuantizedExport, convert_fp16, int8_form_for, quantize_int8
from .tensorrt import EngineInfo, check_batch_bounds
from .torch_program import TorchProgramExport, check_program_parity, export_torch_program
from ..models.saved import load_run_model
from ..gates import fold_gates, has_gates
from ..data import dataset_of_run
from .._seed import seed_everything
from ..train.config import train_config_of_run
from ..accuracy import Accuracy, compare_paired

STAGE = "export"
MODEL_PREFERENCE = ("pruned", "finetuned")  # newest first
PARITY_BATCH_SIZES = (1, 8)


@dataclass(frozen=True)
class ExportOptions:
    """What `facompress export` was asked for."""

    model_name: str | None = None  # None: the newest model in the run (pruned, else finetuned)
    out: Path | None = None  # None: the run folder
    opset: int = DEFAULT_OPSET
    int8: bool = False
    int8_format: str = DEFAULT_INT8_FORM  # the onnxruntime CPU file's form; "auto": the fastest for this CPU
    calib_samples: int = 256  # training images for INT8 calibration
    fp16: bool = False
    torch_program: bool = False  # also <model>.pt2, a torch.export program plain PyTorch loads
    trt: bool = False
    min_batch: int = 1
    opt_batch: int = 8
    max_batch: int = 32
    workspace_mb: int = 2048
    parity_images: int = 64  # test images for the parity gates

    def check(self) -> None:
        """Raise `ConfigError` for out-of-range options, before anything is loaded."""
        check_opset(self.opset)
        check_batch_bounds(self.min_batch, self.opt_batch, self.max_batch)
        int8_form_for("ort-cpu", self.int8_format)  # an unknown form name fails here
        if self.calib_samples < 1:
            raise ConfigError(f"calib_samples must be >= 1 image, got {self.calib_samples} (default 256)")
        if self.parity_images < 1:
            raise ConfigError(f"parity needs at least 1 image, got {self.parity_images}")
        if self.workspace_mb < 64:
            raise ConfigError(f"workspace_mb must be >= 64, got {self.workspace_mb} (default 2048)")
        if self.out is not None:
            check_writable_folder(Path(self.out), "out folder")


@dataclass(frozen=True)
class AccuracyComparison:
    """Top-1 accuracy of the FP32 and a reduced-precision ONNX on the run's test split (onnxruntime CPU),
    with 95% Wilson intervals and McNemar's exact test on the same images."""

    fp32_top1_pct: float
    top1_pct: float
    drop_points: float  # fp32_top1_pct - top1_pct
    n_images: int
    fp32_interval_pct: tuple[float, float] = (0.0, 100.0)
    interval_pct: tuple[float, float] = (0.0, 100.0)
    p_value: float = 1.0  # exact McNemar, two-sided
    within_noise: bool = True  # p >= 0.05: the drop may be chance


@dataclass(frozen=True)
class Int8Export:
    """One INT8 file, the backend it is made for, its parity gate and accuracy against FP32."""

    target: str  # "ort-cpu" or "tensorrt" (also run on openvino-cpu)
    quantized: QuantizedExport
    parity: ParityReport
    accuracy: AccuracyComparison


@dataclass(frozen=True)
class ExportResult:
    """Everything one export wrote and measured."""

    run_path: Path
    model_name: str
    onnx: OnnxExport
    parity: ParityReport
    int8: QuantizedExport | None = None  # the onnxruntime CPU form
    int8_parity: ParityReport | None = None
    int8_accuracy: AccuracyComparison | None = None
    int8_files: tuple[Int8Export, ...] = ()  # every INT8 file written: the onnxruntime form, the TensorRT form
    fp16_path: Path | None = None
    fp16_parity: ParityReport | None = None
    torch_program: TorchProgramExport | None = None
    torch_parity: ParityReport | None = None
    engines: tuple[EngineInfo, ...] = ()
    engine_parity: tuple[ParityReport, ...] = ()
    trt_missing: str | None = None  # why no engine was built


def check_writable_folder(folder: Path, what: str) -> None:
    """`NotFoundError` if `folder` is not an existing folder, `ConfigError` if this user cannot write there."""
    if not folder.is_dir():
        raise NotFoundError(f"{what} {folder} does not exist; create it or choose another")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {folder} is not writable by this user; choose another or fix its permissions")


def pick_model(run: Run, model_name: str | None) -> str:
    """`model_name` if the run has it; else the newest model the run holds."""
    held = sorted(p.name.removesuffix(".safetensors") for p in run.path.glob("*.safetensors"))
    if model_name is not None:
        if not run.has_model(model_name):
            raise NotFoundError(f"run {run.path} has no model {model_name!r}; it holds: {', '.join(held) or 'none'}")
        return model_name
    for name in MODEL_PREFERENCE:
        if run.has_model(name):
            return name
    raise NotFoundError(f"run {run.path} holds no model to export; run `facompress finetune` (and `prune`) first")


def export_run(run: Run | Path | None = None, options: ExportOptions = ExportOptions()) -> ExportResult:
    """Export the run's model (`None`: the latest run) as `options` ask; record everything in run.json.
    `RunLockedError` while another command writes the run."""
    options.check()
    run = run if isinstance(run, Run) else Run.resolve(run)
    with run.writer(STAGE):  # before anything is loaded: a refused export writes nothing
        return _export_run(run, options)


def _export_run(run: Run, opts: ExportOptions) -> ExportResult:
    name = pick_model(run, opts.model_name)
    model, meta = load_run_model(run, name)
    if has_gates(model):
        model = fold_gates(model)
    model = model.to("cpu").eval()
    bundle = dataset_of_run(run)
    out = Path(opts.out) if opts.out is not None else run.path
    check_writable_folder(out, "output folder")
    stage = STAGE if opts.model_name is None else f"{STAGE}:{name}"
    log = _Log(run, stage, opts, name, out)

    test_images = _images(bundle.test, opts.parity_images)  # (P, 3, H, W)
    norm = meta["normalization"]
    metadata = onnx_metadata(classes=meta["classes"], img_size=meta["img_size"], mean=norm["mean"], std=norm["std"],
                             source_run=str(run.path), model_name=name)
    onnx = export_onnx(model, out / f"{name}.onnx", img_size=meta["img_size"], opset=opts.opset, metadata=metadata)
    log.add("onnx", onnx.path, onnx=onnx)
    parity = log.gate("onnx", check_parity(model, onnx.path, test_images, batch_sizes=PARITY_BATCH_SIZES))
    result = ExportResult(run_path=run.path, model_name=name, onnx=onnx, parity=parity)
    if opts.torch_program:
        program = export_torch_program(model, out / f"{name}.pt2", img_size=meta["img_size"], metadata=metadata)
        log.add("torch_program", program.path, torch_program=program)
        t_parity = log.gate("torch_program", check_program_parity(model, program.path, test_images,
                                                                 batch_sizes=PARITY_BATCH_SIZES))
        result = replace(result, torch_program=program, torch_parity=t_parity)

    if opts.int8:

        calib = calibration_images(bundle.train, opts.calib_samples, train_config_of_run(run).seed)
        files = tuple(_int8_file(target, form, model, onnx.path, out, name, calib, test_images, bundle.test, log)
                      for target, form in int8_targets(opts))
        cpu = next((f for f in files if f.target == "ort-cpu"), files[0])
        result = replace(result, int8=cpu.quantized, int8_parity=cpu.parity, int8_accuracy=cpu.accuracy,
                         int8_files=files)
    if opts.fp16:
        half = convert_fp16(onnx.path, out / f"{name}.fp16.onnx")
        log.add("fp16_onnx", half)
        h_parity = log.gate("fp16_onnx", check_parity(model, half, test_images, batch_sizes=PARITY_BATCH_SIZES,
                                                      tolerance=FP16_TOLERANCE))
        result = replace(result, fp16_path=half, fp16_parity=h_parity)
    if opts.trt:
        result = _tensorrt(result, opts, log, out, test_images.numpy())
    log.save("done")
    if result.trt_missing:
        error = MissingDependencyError(result.trt_missing + "; the ONNX files were written, checked and recorded")
        error.partial_result = result  # type: ignore[attr-defined] - lets the CLI list what was written
        raise error
    return result


INT8_SUFFIX = {"ort-cpu": "int8-ort", "tensorrt": "int8-trt"}  # <model>.int8-ort.onnx, <model>.int8-trt.onnx


def int8_targets(opts: ExportOptions) -> list[tuple[str, Int8Form]]:
    """(backend, form) of each INT8 file to write: onnxruntime CPU's form (`opts.int8_format`), and with
    `trt` the symmetric int8 Q/DQ form TensorRT needs, unless the CPU form already is that form."""
    targets = [("ort-cpu", int8_form_for("ort-cpu", opts.int8_format))]
    if opts.trt:
        trt_form = int8_form_for("tensorrt")
        targets = [t for t in targets if t[1] != trt_form] + [("tensorrt", trt_form)]
    return targets


def _int8_file(target: str, form: Int8Form, model: torch.nn.Module, fp32: Path, out: Path, name: str,
               calib: torch.Tensor, test_images: torch.Tensor, test_set: Any, log: _Log) -> Int8Export:
    """Quantise, gate on parity, compare accuracy with FP32, and record one INT8 file made for `target`."""
    key = "int8_onnx" if target == "ort-cpu" else "int8_trt_onnx"
    q = quantize_int8(fp32, out / f"{name}.{INT8_SUFFIX[target]}.onnx", calib, form=form)
    # Where it is measured: the onnxruntime form on onnxruntime; the TensorRT form on OpenVINO's CPU plugin
    # (which runs symmetric int8 Q/DQ with int8 kernels, where onnxruntime's CPU provider is slower than FP32).
    log.add(key, q.path, backends=["ort-cpu"] if target == "ort-cpu" else ["openvino-cpu"],
            **{"int8" if target == "ort-cpu" else "int8_trt": q})
    parity = log.gate(key, check_parity(model, q.path, test_images, batch_sizes=PARITY_BATCH_SIZES,
                                        tolerance=INT8_TOLERANCE))
    accuracy = compare_accuracy(fp32, q.path, test_set)
    log.entry["metrics"][key.replace("_onnx", "_accuracy")] = to_record(accuracy)
    return Int8Export(target, q, parity, accuracy)


def compare_accuracy(fp32_path: Path, other_path: Path, dataset: Any, batch_size: int = 64) -> AccuracyComparison:
    """Top-1 of two ONNX files on `dataset` ((image, label) items), both through onnxruntime on the CPU,
    with Wilson intervals and McNemar's exact test on the images where they disagree."""
    from ._ort import open_session, run_batches

    loader = torch.utils.data.DataLoader(dataset, batch_size=256, shuffle=False)
    sessions = [open_session(fp32_path), open_session(other_path)]
    right: list[list[bool]] = [[], []]
    for x, y in loader:
        for i, session in enumerate(sessions):
            right[i] += (run_batches(session, x.numpy(), batch_size).argmax(1) == y.numpy()).tolist()
    n = len(right[0])
    if n == 0:
        raise NotFoundError("the run's test split is empty: no accuracy to compare")
    fp32, other = (Accuracy.of(sum(r), n) for r in right)
    paired = compare_paired(right[0], right[1])
    pct = lambda a: (round(100 * a.low, 3), round(100 * a.high, 3))  # noqa: E731
    return AccuracyComparison(fp32_top1_pct=round(100 * fp32.value, 3), top1_pct=round(100 * other.value, 3),
                              drop_points=round(100 * (fp32.value - other.value), 3), n_images=n,
                              fp32_interval_pct=pct(fp32), interval_pct=pct(other),
                              p_value=round(paired.p_value, 6), within_noise=not paired.significant)


def _tensorrt(result: ExportResult, opts: ExportOptions, log: _Log, out: Path, images: np.ndarray) -> ExportResult:
    """Build (and check) one engine per precision asked, or record why TensorRT cannot run here."""
    from .tensorrt import build_engine, check_engine_parity, check_trt_available

    try:
        check_trt_available()
    except MissingDependencyError as exc:
        log.entry["tensorrt"] = {"status": "missing", "reason": str(exc)}
        return replace(result, trt_missing=str(exc))
    trt_int8 = next((f.quantized.path for f in result.int8_files if f.target == "tensorrt"), None)
    sources = [p for p in (result.fp16_path, trt_int8) if p is not None]
    engines, reports = [], []
    for source in sources or [result.onnx.path]:
        engine_path = out / (source.name.removesuffix(".onnx") + ".engine")
        info = build_engine(source, engine_path, min_batch=opts.min_batch, opt_batch=opts.opt_batch,
                            max_batch=opts.max_batch, img_size=int(images.shape[-1]),
                            workspace_mb=opts.workspace_mb, timing_cache_path=log.run.path / "trt_timing.cache")
        key = f"engine_{info.precision}"
        log.add(key, info.path, engine=info)
        sizes = tuple(sorted({opts.min_batch, min(opts.max_batch, 8)}))
        reports.append(log.gate(key, check_engine_parity(info.path, source, images, batch_sizes=sizes)))
        engines.append(info)
    log.entry["tensorrt"] = {"status": "built", "engines": [to_record(e) for e in engines]}
    return replace(result, engines=tuple(engines), engine_parity=tuple(reports))


def calibration_images(train_set: Any, samples: int, seed: int) -> torch.Tensor:
    """The images INT8 files are calibrated on: the first `samples` of the training split (never the test
    split), their augmentation seeded from `seed` so the same run gives the same images: (N, 3, H, W)."""
    seed_everything(seed, "calibration")
    return _images(train_set, samples)


def _images(dataset: Any, n: int) -> torch.Tensor:
    """The first `n` images of `dataset` (fewer if it is smaller), stacked: (n, 3, H, W)."""
    count = min(n, len(dataset))
    if count == 0:
        raise NotFoundError("the run's dataset split is empty: no real images to check the export with")
    return torch.stack([dataset[i][0] for i in range(count)])


class _Log:
    """The run.json entry of this export, filled as artifacts are written and checked."""

    def __init__(self, run: Run, stage: str, opts: ExportOptions, name: str, out: Path) -> None:
        self.run, self.stage, self.out = run, stage, out
        self.entry: dict[str, Any] = {"status": "running", "model": name, "options": to_record(opts),
                                      "artifacts": {}, "metrics": {}, "parity": {}}

    def add(self, key: str, path: Path, backends: list[str] | None = None, **facts: Any) -> None:
        """List an artifact (relative to the run when inside it) with the model it came from and, for a
        file made for particular runtimes, the backends `facompress bench` measures it on."""
        self.entry["artifacts"][key] = {"path": _relative(path, self.run.path), "source": self.entry["model"]}
        if backends:
            self.entry["artifacts"][key]["backends"] = list(backends)
        for fact_key, fact in facts.items():
            self.entry["metrics"][fact_key] = to_record(fact)

    def gate(self, key: str, report: ParityReport) -> ParityReport:
        """Record a parity report; on failure delete the artifact, record, and raise `ParityError`."""
        self.entry["parity"][key] = to_record(report)
        if not report.passed:
            self.entry["artifacts"].pop(key, None)
            self.save("failed")
            enforce(report, discard_file=True)
        return report

    def save(self, status: str) -> None:
        self.entry["status"] = status
        self.run.record(self.stage, self.entry)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(Path(path).resolve())
