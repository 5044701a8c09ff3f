"""Benchmarks: latency on each backend, accuracy, parameters, MACs and size, as frozen results.

Light to import: the backends, measurement and run-level helpers live in submodules
(`fa_compress.bench.backends`, `.measure`, `.run_bench`) and load torch only when imported.

>>> from fa_compress.bench.backends import get_backend
>>> stats = get_backend("torch-cpu").measure(model, batch_size=1, img_size=224)
"""

from .results import ArtifactResult, BenchReport, BenchSettings, Environment, LatencyResult, SkippedBackend
from .stats import LatencyStats, summarize, throughput_ips

__all__ = ["ArtifactResult", "BenchReport", "BenchSettings", "Environment", "LatencyResult",
           "LatencyStats", "SkippedBackend", "summarize", "throughput_ips"]
