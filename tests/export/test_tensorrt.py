"""TensorRT: clear errors where it is missing; real engine tests only where TensorRT and a GPU exist."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fa_compress._deps import available
from fa_compress.errors import ConfigError, MissingDependencyError
from fa_compress.export import tensorrt as trt_export


def _trt_ready() -> bool:
    try:
        trt_export.check_trt_available()
    except MissingDependencyError:
        return False
    return True


TRT_READY = _trt_ready()
needs_trt = pytest.mark.skipif(not TRT_READY, reason="TensorRT and a CUDA GPU are needed (not installable here)")


@pytest.mark.skipif(TRT_READY, reason="TensorRT is available here: the missing-TensorRT message cannot be seen")
def test_missing_tensorrt_gives_one_clear_line():
    with pytest.raises(MissingDependencyError) as info:
        trt_export.check_trt_available()
    message = str(info.value)
    assert "\n" not in message and "pip install 'facompress[tensorrt]'" in message
    assert ("tensorrt Python package" in message) != available("tensorrt")  # names what is missing


@pytest.mark.parametrize("bounds", [(0, 1, 1), (2, 1, 4), (1, 8, 4), (1, 4, 2)])
def test_batch_bounds_must_be_ordered(bounds):
    with pytest.raises(ConfigError, match="min <= opt <= max"):
        trt_export.check_batch_bounds(*bounds)


def test_build_checks_bounds_before_tensorrt_and_writes_nothing(exported, tmp_path):
    _, result = exported
    with pytest.raises(ConfigError, match="min <= opt <= max"):
        trt_export.build_engine(result.path, tmp_path / "m.engine", min_batch=4, opt_batch=2, max_batch=8, img_size=32)
    if not TRT_READY:
        with pytest.raises(MissingDependencyError):
            trt_export.build_engine(result.path, tmp_path / "m.engine", min_batch=1, opt_batch=2, max_batch=8,
                                    img_size=32)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.tensorrt
@needs_trt
def test_engine_builds_runs_and_matches_onnxruntime(exported, tmp_path):
    _, result = exported
    cache = tmp_path / "trt.cache"
    info = trt_export.build_engine(result.path, tmp_path / "m.engine", min_batch=1, opt_batch=4, max_batch=8,
                                   img_size=32, workspace_mb=512, timing_cache_path=cache)
    assert info.path.is_file() and cache.is_file() and info.precision == "fp32" and not info.timing_cache_reused
    sidecar = json.loads(trt_export.sidecar_path(info.path).read_text())
    assert sidecar["trt_version"] == info.trt_version and sidecar["gpu_name"] == info.gpu_name
    images = np.random.default_rng(0).standard_normal((10, 3, 32, 32), dtype=np.float32)
    assert trt_export.run_engine(info.path, images).shape == (10, 10)
    report = trt_export.check_engine_parity(info.path, result.path, images, batch_sizes=(1, 8))
    assert report.passed, report
    again = trt_export.build_engine(result.path, tmp_path / "m2.engine", min_batch=1, opt_batch=4, max_batch=8,
                                    img_size=32, workspace_mb=512, timing_cache_path=cache)
    assert again.timing_cache_reused


@pytest.mark.tensorrt
@needs_trt
def test_fp16_and_int8_engines_take_precision_from_the_onnx(exported, tmp_path):
    import torch

    from fa_compress.export import convert_fp16, quantize_int8

    _, result = exported
    fp16 = convert_fp16(result.path, tmp_path / "m.fp16.onnx")
    int8 = quantize_int8(result.path, tmp_path / "m.int8.onnx", torch.randn(16, 3, 32, 32)).path
    images = np.random.default_rng(1).standard_normal((8, 3, 32, 32), dtype=np.float32)
    for onnx_path, precision in ((fp16, "fp16"), (int8, "int8")):
        info = trt_export.build_engine(onnx_path, tmp_path / f"{precision}.engine", min_batch=1, opt_batch=4,
                                       max_batch=8, img_size=32, workspace_mb=512)
        assert info.precision == precision
        assert trt_export.check_engine_parity(info.path, onnx_path, images, batch_sizes=(8,)).passed
