"""A hand-made benchmark report covering every field (no measuring needed)."""

import pytest

from fa_compress.bench.results import (
    AccuracyDiff,
    ArtifactResult,
    BenchReport,
    BenchSettings,
    Environment,
    LatencyResult,
    SkippedBackend,
)
from fa_compress.bench.stats import RatioStats


def sample_report() -> BenchReport:
    env = Environment(python="3.11.7", platform="linux-x86_64", torch="2.14.1", onnxruntime="1.32.0",
                      torch_pruning="1.6.1", torch_threads=2, cpu_name="Test CPU", cpu_count=2, gpu_name=None,
                      cuda=None, cpu_flags=("avx2", "avx512_vnni"), load_avg_before=(1.0, 0.5, 0.25),
                      load_avg_after=(2.0, 1.0, 0.5), torch_interop_threads=2, thread_env={"OMP_NUM_THREADS": "2"})
    lat = LatencyResult("torch-cpu", 1, 10.0, 12.5, 10.5, 9.0, 30, 100.0, "threads=2", reference="finetuned")
    dense = ArtifactResult("finetuned", "torch", "finetuned.safetensors", 44.8, 11_000_000, 1_800_000_000,
                           91.25, 99.5, 2000,
                           (lat, LatencyResult("torch-cpu", 8, 40.0, 44.0, 41.0, 39.0, 30, 200.0, reference="finetuned")),
                           top1_low_pct=89.92, top1_high_pct=92.42)
    half = RatioStats(median=0.5, low=0.48, high=0.53, n_rounds=30, noisy=False)
    wide = RatioStats(median=0.8, low=0.6, high=1.1, n_rounds=30, noisy=True)
    pruned = ArtifactResult("pruned", "torch", "pruned.safetensors", 18.1, 4_500_000, 700_000_000,
                            90.5, 99.25, 2000,
                            (LatencyResult("torch-cpu", 1, 5.0, 6.0, 5.2, 4.9, 30, 200.0, reference="finetuned",
                                           ratio=half),
                             LatencyResult("torch-cpu", 8, 32.0, 40.0, 33.0, 30.0, 30, 250.0, reference="finetuned",
                                           ratio=wide)),
                            top1_low_pct=89.16, top1_high_pct=91.72,
                            accuracy_vs=(AccuracyDiff("finetuned", -0.75, 10, 25, 2000, 0.0167, False),))
    onnx = ArtifactResult("model.int8.onnx", "onnx", "model.int8.onnx", 4.6, None, None, None, None, 0, (),
                          source="pruned")
    skipped = (SkippedBackend("tensorrt", "tensorrt is not importable | here"),
               SkippedBackend("ort-cpu", "load failed: boom", "model.int8.onnx"))
    return BenchReport(env, (dense, pruned, onnx), skipped, "2026-01-01T12:00:00+0000",
                       BenchSettings((1, 8), 5, 30, 64, None), "r1", ("a note",))


@pytest.fixture
def report() -> BenchReport:
    return sample_report()
