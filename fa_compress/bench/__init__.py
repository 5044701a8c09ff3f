"""Benchmarks: latency on each backend, accuracy, parameters, MACs and size, as frozen results.

Light to import: the backends, measurement and run-level helpers live in submodules
(`fa_compress.bench.backends`, `.measure`, `.suite`) and load torch only when imported; the `bench`
stage on a run (measure, then write the report) is `fa_compress.report.bench_stage`.

>>> from fa_compress.bench.backends import get_backend
>>> stats = get_backend("torch-cpu").measure(model, batch_size=1, img_size=224)

Comparing artifacts (what `facompress bench` and the benchmark scripts do): time them in the same
interleaved rounds and take the ratio per round, with a 95% interval.

>>> from fa_compress.bench.compare import compare_steps
>>> timings = compare_steps({"dense": dense_step, "pruned": pruned_step}, warmup=5, rounds=30)
>>> timings["pruned"].ratio_to(timings["dense"])      # RatioStats(median=0.62, low=0.6, high=0.65, ...)
"""

from .results import (
    AccuracyDiff,
    ArtifactResult,
    BenchReport,
    BenchSettings,
    Environment,
    LatencyResult,
    SkippedBackend,
)
from .stats import LatencyStats, RatioStats, ratio_stats, summarize, throughput_ips

__all__ = ["AccuracyDiff", "ArtifactResult", "BenchReport", "BenchSettings", "Environment", "LatencyResult",
           "LatencyStats", "RatioStats", "SkippedBackend", "ratio_stats", "summarize", "throughput_ips"]
