import pytest
import torch

from fa_compress.bench.backends import Backend, backend_names, get_backend
from fa_compress.bench.stats import LatencyStats
from fa_compress.errors import ConfigError, MissingDependencyError, NotFoundError

IMG = 16  # the tiny fixtures' image size (conftest.IMG)

ALL = ["torch-cpu", "torch-cuda-fp32", "torch-cuda-fp16", "ort-cpu", "ort-cuda", "tensorrt", "openvino-cpu"]
HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU (torch.cuda.is_available() is False)")


def _check(stats: LatencyStats, runs: int) -> None:
    assert stats.n_runs == runs
    assert 0 < stats.min_ms <= stats.median_ms <= stats.p90_ms
    assert stats.min_ms <= stats.mean_ms


def test_registry_lists_every_backend_in_order():
    assert backend_names() == ALL
    for name in ALL:
        backend = get_backend(name)
        assert isinstance(backend, Backend) and backend.name == name
        assert backend.artifact_kind in {"torch", "onnx", "tensorrt"}


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(NotFoundError) as err:
        get_backend("ort-gpu")
    message = str(err.value)
    assert "unknown backend 'ort-gpu'" in message
    assert all(name in message for name in ALL)


@pytest.mark.parametrize("batch_size", [0, -1])
def test_batch_size_must_be_positive(tiny_model, batch_size):
    with pytest.raises(ConfigError, match="batch size must be >= 1"):
        get_backend("torch-cpu").measure(tiny_model, batch_size, IMG)


@pytest.mark.parametrize("kwargs, match", [({"runs": 0}, "timed runs"), ({"warmup": -1}, "warm-up")])
def test_timing_counts_are_checked(tiny_model, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        get_backend("torch-cpu").measure(tiny_model, 1, IMG, **kwargs)


@pytest.mark.skipif(HAS_CUDA, reason="checks the no-GPU path; this machine has a GPU")
@pytest.mark.parametrize("name", ["torch-cuda-fp32", "torch-cuda-fp16", "tensorrt"])
def test_gpu_backends_report_why_they_are_unavailable(name, tiny_model):
    ok, reason = get_backend(name).available()
    assert ok is False
    assert "CUDA" in reason or "tensorrt" in reason
    with pytest.raises(MissingDependencyError, match=f"backend {name} is unavailable"):
        get_backend(name).measure(tiny_model, 1, IMG)


def test_ort_cuda_is_unavailable_with_a_reason_unless_it_really_runs_on_cuda():
    ok, reason = get_backend("ort-cuda").available()
    if not ok:
        assert "CUDAExecutionProvider" in reason or "onnxruntime" in reason


def test_torch_cpu_measures_positive_latency_and_leaves_the_model_alone(tiny_model):
    tiny_model.train()
    stats = get_backend("torch-cpu").measure(tiny_model, 2, IMG, warmup=1, runs=4)
    _check(stats, 4)
    assert tiny_model.training  # the backend ran its own copy in eval mode


def test_ort_cpu_measures_positive_latency_and_records_threads(tiny_onnx):
    backend = get_backend("ort-cpu")
    runner = backend.load(tiny_onnx)
    assert f"intra_op_threads={torch.get_num_threads()}" in runner.settings
    for bs in (1, 3):
        _check(backend.measure(runner, bs, IMG, warmup=1, runs=3), 3)


def test_torch_and_ort_predict_the_same_logits(tiny_model, tiny_onnx):
    x = torch.randn(5, 3, IMG, IMG)  # (N, 3, H, W)
    expected = get_backend("torch-cpu").load(tiny_model).predict(x)
    got = get_backend("ort-cpu").load(tiny_onnx).predict(x)
    assert got.shape == (5, 10)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_artifacts_of_the_wrong_kind_are_refused(tiny_model, tiny_onnx, tmp_path):
    with pytest.raises(ConfigError, match="ort-cpu"):
        get_backend("torch-cpu").load(tiny_onnx)
    with pytest.raises(ConfigError, match="torch-cpu"):
        get_backend("ort-cpu").load(tiny_model)
    with pytest.raises(NotFoundError, match="does not exist"):
        get_backend("ort-cpu").load(tmp_path / "missing.onnx")


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("name", ["torch-cuda-fp32", "torch-cuda-fp16"])
def test_cuda_backends_measure_and_predict(name, tiny_model):
    backend = get_backend(name)
    assert backend.available() == (True, "")
    runner = backend.load(tiny_model)
    _check(backend.measure(runner, 4, IMG, warmup=2, runs=5), 5)
    x = torch.randn(3, 3, IMG, IMG)
    expected = get_backend("torch-cpu").load(tiny_model).predict(x)
    tol = 1e-2 if name.endswith("fp16") else 1e-4
    torch.testing.assert_close(runner.predict(x), expected, rtol=tol, atol=tol)
    assert "channels_last" in runner.settings


@pytest.mark.cuda
@needs_cuda
def test_ort_cuda_never_times_a_cpu_fallback(tiny_onnx):
    backend = get_backend("ort-cuda")
    ok, _ = backend.available()
    if not ok:
        pytest.skip("onnxruntime's CUDA provider does not run here (reason recorded by available())")
    runner = backend.load(tiny_onnx)
    assert runner.session.get_providers()[0] == "CUDAExecutionProvider"
    _check(backend.measure(runner, 2, IMG, warmup=1, runs=3), 3)


def test_importing_the_suite_loads_no_optional_runtime():
    import subprocess
    import sys

    code = ("import sys, fa_compress.bench.backends, fa_compress.report.bench_stage, fa_compress.report; "
            "print(sorted(m for m in ('onnxruntime', 'tensorrt', 'matplotlib', 'onnx', 'openvino') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_openvino_cpu_runs_an_onnx_file_or_says_why_not(tiny_onnx, tiny_model):
    backend = get_backend("openvino-cpu")
    ok, reason = backend.available()
    if not ok:
        assert "openvino" in reason and "facompress[openvino]" in reason
        with pytest.raises(MissingDependencyError, match="openvino-cpu is unavailable"):
            backend.measure(tiny_onnx, 1, IMG)
        return
    runner = backend.load(tiny_onnx)
    assert "f32 precision" in runner.settings
    _check(backend.measure(runner, 2, IMG, warmup=1, runs=3), 3)
    x = torch.randn(5, 3, IMG, IMG)
    with torch.no_grad():
        torch.testing.assert_close(runner.predict(x), tiny_model(x), rtol=1e-4, atol=1e-4)
    with pytest.raises(ConfigError, match="openvino-cpu runs .onnx files"):
        backend.load(tiny_model)
