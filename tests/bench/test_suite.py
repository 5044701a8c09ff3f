import pytest
import torch

from fa_compress.bench.suite import Artifact, bench_artifacts
from fa_compress.errors import ConfigError, NotFoundError

IMG = 16
FAST = {"warmup": 1, "runs": 3, "img_size": IMG}


def test_every_artifact_on_every_usable_backend(tiny_model, tiny_onnx, eval_set, tmp_path):
    artifacts = [Artifact("dense", "torch", model=tiny_model),
                 Artifact("tiny.onnx", "onnx", tiny_onnx, source="dense")]
    report = bench_artifacts(artifacts, batch_sizes=(1, 4), eval_data=eval_set, root=tmp_path, **FAST)
    dense, onnx = report.artifacts
    assert [(r.backend, r.batch_size) for r in dense.latencies][:2] == [("torch-cpu", 1), ("torch-cpu", 4)]
    assert {r.backend for r in onnx.latencies} >= {"ort-cpu"}
    assert all(r.median_ms > 0 and r.throughput_ips > 0 for a in report.artifacts for r in a.latencies)
    assert (onnx.params, onnx.macs) == (dense.params, dense.macs)  # taken from its source
    assert onnx.path == "tiny.onnx" and onnx.size_mb > 0
    assert dense.top1_pct == onnx.top1_pct and dense.eval_images == onnx.eval_images == 24
    assert dense.top5_pct is not None  # 10 classes
    assert report.settings.batch_sizes == (1, 4)
    if not torch.cuda.is_available():
        skipped = {s.backend: s.reason for s in report.skipped}
        assert {"torch-cuda-fp32", "torch-cuda-fp16", "tensorrt"} <= set(skipped)
        assert all(reason for reason in skipped.values())


def test_only_the_named_backends_run(tiny_model, tiny_onnx):
    report = bench_artifacts([Artifact("dense", "torch", model=tiny_model), Artifact("o", "onnx", tiny_onnx)],
                             backends=["ort-cpu"], batch_sizes=(2,), **FAST)
    assert report.artifacts[0].latencies == ()
    assert [r.backend for r in report.artifacts[1].latencies] == ["ort-cpu"]
    assert report.artifacts[0].top1_pct is None and report.skipped == ()


def test_a_failing_artifact_is_recorded_not_fatal(tiny_model, tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    report = bench_artifacts([Artifact("dense", "torch", model=tiny_model), Artifact("broken", "onnx", broken)],
                             backends=["torch-cpu", "ort-cpu"], batch_sizes=(1,), **FAST)
    assert report.artifacts[0].latencies
    (skip,) = report.skipped
    assert (skip.backend, skip.artifact) == ("ort-cpu", "broken") and "load failed" in skip.reason


@pytest.mark.parametrize("kwargs, error, match", [
    ({"backends": ["torch-gpu"]}, NotFoundError, "known: ort-cpu"),
    ({"batch_sizes": (1, 0)}, ConfigError, "batch size"),
    ({"batch_sizes": ()}, ConfigError, "no batch size"),
])
def test_bad_options_fail_before_measuring(tiny_model, kwargs, error, match):
    with pytest.raises(error, match=match):
        bench_artifacts([Artifact("dense", "torch", model=tiny_model)], **{"batch_sizes": (1,), **FAST, **kwargs})


def test_nothing_to_benchmark():
    with pytest.raises(NotFoundError, match="nothing to benchmark"):
        bench_artifacts([], **FAST)
