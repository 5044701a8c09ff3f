"""A hand-made benchmark report covering every field (no measuring needed)."""

import pytest

from fa_compress.bench.results import (
    ArtifactResult,
    BenchReport,
    BenchSettings,
    Environment,
    LatencyResult,
    SkippedBackend,
)


def sample_report() -> BenchReport:
    env = Environment(python="3.11.7", platform="linux-x86_64", torch="2.14.1", onnxruntime="1.32.0",
                      torch_pruning="1.6.1", torch_threads=2, cpu_name="Test CPU", cpu_count=2, gpu_name=None,
                      cuda=None)
    lat = LatencyResult("torch-cpu", 1, 10.0, 12.5, 10.5, 9.0, 30, 100.0, "threads=2")
    dense = ArtifactResult("finetuned", "torch", "finetuned.safetensors", 44.8, 11_000_000, 1_800_000_000,
                           91.25, 99.5, 2000, (lat, LatencyResult("torch-cpu", 8, 40.0, 44.0, 41.0, 39.0, 30, 200.0)))
    pruned = ArtifactResult("pruned", "torch", "pruned.safetensors", 18.1, 4_500_000, 700_000_000,
                            90.5, 99.25, 2000, (LatencyResult("torch-cpu", 1, 5.0, 6.0, 5.2, 4.9, 30, 200.0),))
    onnx = ArtifactResult("model.int8.onnx", "onnx", "model.int8.onnx", 4.6, None, None, None, None, 0, (),
                          source="pruned")
    skipped = (SkippedBackend("tensorrt", "tensorrt is not importable | here"),
               SkippedBackend("ort-cpu", "load failed: boom", "model.int8.onnx"))
    return BenchReport(env, (dense, pruned, onnx), skipped, "2026-01-01T12:00:00+0000",
                       BenchSettings((1, 8), 5, 30, 64, None), "r1", ("a note",))


@pytest.fixture
def report() -> BenchReport:
    return sample_report()
