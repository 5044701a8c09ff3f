"""INT8 (QDQ, TensorRT-ready) and FP16 ONNX: they run, they are small, they stay close to FP32."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
import pytest
import torch

from fa_compress.errors import ConfigError, NotFoundError
from fa_compress.export import (
    FP16_TOLERANCE, INT8_TOLERANCE, check_parity, convert_fp16, enforce, export_onnx, onnx_metadata, quantize_int8,
)
from fa_compress.export._ort import open_session, run_batches
from fa_compress.machine import cpu_flags
from fa_compress.export.quantize import INT8_FORMS, VNNI_FLAGS, int8_form_for, onnx_precision

INT8_MAX_DROP_POINTS = 2.0  # accuracy points on 300 real test images (the benchmark target is <= 1 on full sets)


@pytest.fixture(scope="module")
def int8(exported, tmp_path_factory):
    _, fp32 = exported
    calib = torch.randn(16, 3, 32, 32)  # (N, 3, H, W); the real-image calibration is tested below
    return quantize_int8(fp32.path, tmp_path_factory.mktemp("int8") / "resnet18.int8.onnx", calib)


def test_int8_runs_and_is_at_most_three_tenths_of_fp32(int8):
    assert int8.size_ratio <= 0.3 and int8.size_mb < int8.fp32_size_mb
    out = run_batches(open_session(int8.path), np.random.default_rng(0).standard_normal((5, 3, 32, 32)), 5)
    assert out.shape == (5, 10) and np.isfinite(out).all()
    assert onnx_precision(int8.path) == "int8" and int8.form.name == "qdq" and int8.calib_images == 16


def test_int8_is_symmetric_qdq_with_per_channel_weights(int8):
    graph = onnx.load(str(int8.path)).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops and "QLinearConv" not in ops
    inits = {t.name: t for t in graph.initializer}
    zero_points = [onnx.numpy_helper.to_array(inits[n.input[2]]) for n in graph.node
                   if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2 and n.input[2] in inits]
    assert zero_points and all(zp.dtype == np.int8 and not zp.any() for zp in zero_points)  # TensorRT: int8, zp 0
    quantized = [onnx.numpy_helper.to_array(inits[n.input[0]]) for n in graph.node
                 if n.op_type == "DequantizeLinear" and n.input[0] in inits]
    assert all(w.dtype == np.int8 and w.min() >= -127 for w in quantized)  # symmetric weights, no int32 bias
    weight_scales = [onnx.numpy_helper.to_array(inits[n.input[1]]) for n in graph.node
                     if n.op_type == "DequantizeLinear" and n.input[0] in inits and inits[n.input[0]].dims[0] == 64]
    assert any(s.ndim == 1 and s.size == 64 for s in weight_scales)  # one scale per output channel


def _int8_drop(model, fashion_mnist, meta, tmp_path, form) -> tuple[float, float]:
    """(FP32 %, INT8 %) on the 300 real test images, the INT8 file written in `form` from 128 real images."""
    fp32 = export_onnx(model, tmp_path / "cnn.onnx", img_size=32, metadata=meta)
    calib = torch.stack([fashion_mnist.train[i][0] for i in range(128)])  # (128, 3, 32, 32), real images
    int8 = quantize_int8(fp32.path, tmp_path / f"cnn.{form.name}.onnx", calib, form=form)
    test_x = torch.stack([x for x, _ in fashion_mnist.test]).numpy()  # (300, 3, 32, 32)
    test_y = np.array([y for _, y in fashion_mnist.test])
    acc = [float(np.mean(run_batches(open_session(p), test_x, 64).argmax(1) == test_y)) * 100
           for p in (fp32.path, int8.path)]
    enforce(check_parity(model, int8.path, torch.from_numpy(test_x[:64]), tolerance=INT8_TOLERANCE))
    return acc[0], acc[1]


def test_int8_accuracy_drop_on_real_images_is_small(fashion_mnist, fitted_cnn, meta, tmp_path):
    """The form `export --int8` writes for onnxruntime on this CPU (7-bit weights where it lacks VNNI)."""
    fp32, int8 = _int8_drop(fitted_cnn, fashion_mnist, meta, tmp_path, int8_form_for("ort-cpu"))
    assert fp32 > 60  # a real classifier: a drop is meaningful
    assert fp32 - int8 <= INT8_MAX_DROP_POINTS


def test_tensorrt_form_accuracy_drop_on_real_images_is_small(fashion_mnist, fitted_cnn, meta, tmp_path):
    """The symmetric int8 form TensorRT reads, run by onnxruntime: only where the CPU has VNNI, since
    without it onnxruntime's int8 x int8 kernels saturate (`benchmarks/int8_form_accuracy.py` on an AMD
    EPYC with AVX2, 2026-12-01: 17.7-25.3 points lost, the 7-bit form the tool writes there -1.0 to 1.0)."""
    if not any(f in cpu_flags() for f in VNNI_FLAGS):
        pytest.skip("this CPU has no VNNI: onnxruntime's int8 x int8 kernels saturate here, and TensorRT, "
                    "the form's target, is not installed")
    fp32, int8 = _int8_drop(fitted_cnn, fashion_mnist, meta, tmp_path, INT8_FORMS["qdq"])
    assert fp32 > 60
    assert fp32 - int8 <= INT8_MAX_DROP_POINTS


def test_fp16_keeps_float32_io_and_passes_its_tolerance(exported, real_images, tmp_path):
    model, fp32 = exported
    path = convert_fp16(fp32.path, tmp_path / "resnet18.fp16.onnx")
    graph = onnx.load(str(path)).graph
    assert [i.type.tensor_type.elem_type for i in graph.input] == [onnx.TensorProto.FLOAT]
    assert [o.type.tensor_type.elem_type for o in graph.output] == [onnx.TensorProto.FLOAT]
    assert onnx_precision(path) == "fp16" and onnx_precision(fp32.path) == "fp32"
    assert path.stat().st_size < 0.55 * fp32.path.stat().st_size
    report = enforce(check_parity(model, path, real_images, tolerance=FP16_TOLERANCE))
    assert 1e-6 < report.max_rel_err <= FP16_TOLERANCE.max_rel_err  # really half precision, still close


def test_bad_requests_are_refused(exported, tmp_path):
    _, fp32 = exported
    calib = torch.randn(2, 3, 32, 32)
    with pytest.raises(NotFoundError, match="qdq"):
        quantize_int8(fp32.path, tmp_path / "q.onnx", calib, form="qdqq")
    with pytest.raises(ConfigError, match="calib"):
        quantize_int8(fp32.path, tmp_path / "q.onnx", calib[:0])
    with pytest.raises(NotFoundError, match="does not exist"):
        quantize_int8(fp32.path, tmp_path / "missing" / "q.onnx", calib)
    with pytest.raises(ConfigError, match="overwrite"):
        convert_fp16(fp32.path, fp32.path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("backend, flags, form", [
    ("ort-cpu", ("avx2", "avx512_vnni"), "qdq-u8"),   # VNNI: uint8 activations, 8-bit weights
    ("ort-cpu", ("avx2", "avx_vnni"), "qdq-u8"),
    ("ort-cpu", ("avx2",), "qdq-u8-rr"),              # no VNNI: 7-bit weights against int16 saturation
    ("tensorrt", ("avx2",), "qdq"),                   # TensorRT: symmetric int8 Q/DQ whatever the CPU
    ("openvino-cpu", ("avx512_vnni",), "qdq"),
])
def test_the_int8_form_is_chosen_per_backend(backend, flags, form):
    from fa_compress.export.quantize import int8_form_for

    chosen = int8_form_for(backend, "auto", flags)
    assert chosen.name == form
    if backend == "tensorrt":
        assert chosen.activations == "s8" and chosen.symmetric_activations and chosen.quant_format == "qdq"


def test_a_form_a_backend_cannot_run_is_refused_with_the_alternatives():
    from fa_compress.errors import ConfigError, NotFoundError
    from fa_compress.export.quantize import int8_form_for

    with pytest.raises(ConfigError, match="qdq-u8 cannot run on tensorrt .*zero point 0.*forms for tensorrt: qdq"):
        int8_form_for("tensorrt", "qdq-u8")
    with pytest.raises(ConfigError, match="qoperator-u8 cannot run on openvino-cpu"):
        int8_form_for("openvino-cpu", "qoperator-u8")
    with pytest.raises(NotFoundError, match="unknown INT8 backend"):
        int8_form_for("coreml", "auto")
    assert int8_form_for("ort-cpu", "qdq").name == "qdq"  # onnxruntime runs every form


def test_float_depthwise_leaves_depthwise_convs_unquantised(tmp_path):
    from torch import nn

    from fa_compress.export.quantize import INT8_FORMS, float_nodes

    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, groups=8),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()
    meta = onnx_metadata(classes=list("abcd"), img_size=16, mean=(0.5,) * 3, std=(0.5,) * 3)
    fp32 = export_onnx(model, tmp_path / "dw.onnx", img_size=16, metadata=meta)
    form = replace(INT8_FORMS["qdq-u8"], float_depthwise=True)
    graph = onnx.load(str(fp32.path)).graph
    dw = [n.name for n in graph.node if n.op_type == "Conv" and any(a.name == "group" and a.i == 8 for a in n.attribute)]
    assert float_nodes(fp32.path, form) == dw and len(dw) == 1
    assert float_nodes(fp32.path, INT8_FORMS["qdq-u8"]) == []


def _pruned_block() -> torch.nn.Module:
    """A pruned-looking mobile block: 24 channels (not a multiple of 16) through a depthwise conv, an
    8-channel projection (narrower than 16) and a residual tensor the padding must leave alone."""
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 24, 3, stride=2, padding=1), nn.ReLU6())
            self.dw = nn.Sequential(nn.Conv2d(24, 24, 3, padding=1, groups=24), nn.ReLU6())
            self.project = nn.Conv2d(24, 8, 1)
            self.expand = nn.Sequential(nn.Conv2d(8, 24, 1), nn.ReLU6())
            self.dw_residual = nn.Sequential(nn.Conv2d(24, 24, 3, padding=1, groups=24), nn.ReLU6())
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, H, W) -> (N, 4)
            y = self.expand(self.project(self.dw(self.stem(x))))  # (N, 24, H/2, W/2)
            return self.head(self.dw_residual(y) + y)  # y feeds an Add too: that depthwise conv stays at 24

    torch.manual_seed(0)
    return Block().eval()


def _convs(path) -> dict[str, tuple[list[int], int]]:
    """Each conv's weight shape and group, by name (QDQ files: the shape of the quantised weight)."""
    graph = onnx.load(str(path)).graph
    dims = {t.name: list(t.dims) for t in graph.initializer}
    made_by = {o: n for n in graph.node for o in n.output}
    shapes = {}
    for n in graph.node:
        if n.op_type == "Conv":
            w = n.input[1] if n.input[1] in dims else made_by[n.input[1]].input[0]  # through its DequantizeLinear
            shapes[n.name] = (dims[w], next((a.i for a in n.attribute if a.name == "group"), 1))
    return shapes


@pytest.fixture(scope="module")
def pruned_block(tmp_path_factory):
    meta = onnx_metadata(classes=list("abcd"), img_size=16, mean=(0.5,) * 3, std=(0.5,) * 3)
    return export_onnx(_pruned_block(), tmp_path_factory.mktemp("pad") / "block.onnx", img_size=16, metadata=meta)


def test_channel_padding_is_exact_and_fits_the_symmetric_kernels(pruned_block, tmp_path):
    from fa_compress.export._pad_channels import pad_conv_channels

    model = onnx.load(str(pruned_block.path))
    padding = pad_conv_channels(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(tmp_path / "padded.onnx"))
    before, after = list(_convs(pruned_block.path).values()), list(_convs(tmp_path / "padded.onnx").values())
    assert [w for w, _ in before] == [[24, 3, 3, 3], [24, 1, 3, 3], [8, 24, 1, 1], [24, 8, 1, 1], [24, 1, 3, 3]]
    assert after == [([32, 3, 3, 3], 1), ([32, 1, 3, 3], 32), ([16, 32, 1, 1], 1), ([24, 16, 1, 1], 1),
                     ([24, 1, 3, 3], 24)]  # stem, dw: 16-multiples; project: >= 16; the residual path untouched
    assert len(padding.convs) == 3 and padding.channels_added == 8 + 8 + 8
    x = np.random.default_rng(0).standard_normal((3, 3, 16, 16)).astype(np.float32)  # (N, 3, H, W)
    out = {p: run_batches(open_session(p), x, 3) for p in (pruned_block.path, tmp_path / "padded.onnx")}
    torch.testing.assert_close(*out.values(), rtol=1e-5, atol=1e-5)


def test_the_onnxruntime_form_runs_every_conv_as_a_fast_qlinearconv(pruned_block, tmp_path):
    import onnxruntime as ort

    from fa_compress.export.quantize import INT8_FORMS

    calib = torch.randn(16, 3, 16, 16)  # (N, 3, H, W)
    q = quantize_int8(pruned_block.path, tmp_path / "block.int8-ort.onnx", calib, form=INT8_FORMS["qdq-u8"])
    assert q.form.pad_channels and q.padded_channels == 24
    assert [g for _, g in _convs(q.path).values()] == [1, 32, 1, 1, 24]
    graph = onnx.load(str(q.path)).graph
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    dequantized = [n for n in graph.node if n.op_type == "DequantizeLinear" and len(n.input) > 2]
    weight_zps = [inits[n.input[2]] for n in dequantized if n.input[0] in inits]
    activation_zps = [inits[n.input[2]] for n in dequantized if n.input[0] not in inits]
    assert activation_zps and all(z.dtype == np.uint8 for z in activation_zps)  # activations: uint8
    assert weight_zps and all(z.dtype == np.int8 and not z.any() for z in weight_zps)  # weights: int8, zero point 0
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")  # what onnxruntime makes of it
    options.log_severity_level = 3
    ort.InferenceSession(str(q.path), options, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]
    assert ops.count("QLinearConv") == 5 and "Conv" not in ops and "QLinearAdd" in ops  # nothing left in float
    trt = quantize_int8(pruned_block.path, tmp_path / "block.int8-trt.onnx", calib)  # TensorRT's form
    assert not trt.form.pad_channels and trt.padded_channels == 0
    assert [g for _, g in _convs(trt.path).values()] == [1, 24, 1, 1, 24]
