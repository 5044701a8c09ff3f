"""The latency search planned for INT8: candidates timed as the INT8 files `export --int8` writes, and a
speed-up target over the dense FP32 model measured in the same search."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import onnx
import pytest
import torch
from torch.utils.data import TensorDataset

from fa_compress.bench.backends.ort import OrtCpuBackend
from fa_compress.bench.stats import LatencyStats
from fa_compress.errors import ConfigError
from fa_compress.gates import insert_gates
from fa_compress.pruning.pruner import PruneSettings
from fa_compress.search import latency
from fa_compress.search.latency import LatencyTarget, UnreachableTarget, latency_target
from tests.conftest import random_gates, run_cli
from tests.search.tiny_net import TinyNet

INT8_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul"}
SETTINGS = PruneSettings(gate_score="value", round_to=1)
TINY_NET = f"{Path(__file__).with_name('tiny_net.py').resolve()}:tiny"


@pytest.fixture
def tiny() -> TinyNet:
    torch.manual_seed(0)
    return random_gates(insert_gates(TinyNet().eval()))


@pytest.fixture
def train_images() -> TensorDataset:
    gen = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(24, 3, 32, 32, generator=gen), torch.zeros(24, dtype=torch.long))


@dataclass(frozen=True)
class _Timed:
    sha256: str
    ops: frozenset[str]
    size_bytes: int


class _SizeClock:
    """Stands in for onnxruntime's timing (deterministic: 1 ms per 1000 bytes of the file) and remembers
    every file loaded to be timed, and the warm-up and run counts each timing used."""

    def __init__(self) -> None:
        self.timed: list[_Timed] = []
        self.counts: set[tuple[int, int]] = set()

    def load(self, _backend, artifact) -> SimpleNamespace:
        data = Path(artifact).read_bytes()
        ops = frozenset(n.op_type for n in onnx.load_from_string(data).graph.node)
        self.timed.append(_Timed(hashlib.sha256(data).hexdigest(), ops, len(data)))
        return SimpleNamespace(settings="size clock", size=len(data))

    def measure(self, _backend, runner, batch_size, img_size, warmup, runs) -> LatencyStats:
        self.counts.add((warmup, runs))
        ms = runner.size / 1000
        return LatencyStats(median_ms=ms, p90_ms=ms * 1.1, mean_ms=ms, min_ms=ms, n_runs=runs)


@pytest.fixture
def clock(monkeypatch) -> _SizeClock:
    fake = _SizeClock()
    monkeypatch.setattr(OrtCpuBackend, "load", lambda self, artifact: fake.load(self, artifact))
    monkeypatch.setattr(OrtCpuBackend, "measure", lambda self, runner, b, i, warmup, runs: fake.measure(
        self, runner, b, i, warmup, runs))
    return fake


def _is_int8(timed: _Timed) -> bool:
    return bool(timed.ops & INT8_OPS)


# ---- the search itself ------------------------------------------------------------------------------------
def test_int8_search_times_int8_files_and_records_the_chosen_one(tiny, train_images, clock):
    target = LatencyTarget(target_speedup=6, int8=True, calib_samples=8)
    settings, found = target(tiny, "fc", SETTINGS, 32, train_data=train_images)

    fp32 = [t for t in clock.timed if not _is_int8(t)]
    int8 = {t.sha256: t for t in clock.timed if _is_int8(t)}
    # the dense FP32 reference before the dense INT8 step and again before every candidate, one file per keep
    assert len({t.sha256 for t in fp32}) == 1 and len(fp32) == len(found.steps) >= 4
    assert len(clock.timed) == 2 * len(found.steps)
    assert found.precision == "int8" and found.backend == "ort-cpu" and found.batch_size == 1
    assert found.dense_fp32_ms == pytest.approx(fp32[0].size_bytes / 1000)
    assert found.target_ms == pytest.approx(found.dense_fp32_ms / 6)
    for step in found.steps:
        assert step.file.precision == "int8" and step.file.form in ("qdq-u8", "qdq-u8-rr")
        assert int8[step.file.sha256].size_bytes == step.file.size_bytes
        assert step.median_ms == pytest.approx(step.file.size_bytes / 1000)
        assert step.meets_target == (step.median_ms <= step.reference_ms / 6)
        assert step.reference_ms == pytest.approx(fp32[0].size_bytes / 1000)
    assert clock.counts == {(5, 20)}  # the INT8 candidates and the FP32 reference: same warm-up and runs

    assert 0.1 < found.best_keep < 1 and settings.keep == found.best_keep
    record = json.loads(json.dumps(found.to_dict()))
    chosen = record["chosen"]
    assert chosen["keep"] == found.best_keep and chosen["meets_target"]
    assert chosen["file"]["sha256"] in int8 and chosen["file"]["precision"] == "int8"
    assert chosen["median_ms"] <= record["target_ms"]
    assert chosen["speedup_vs_dense_fp32"] == pytest.approx(record["dense_fp32_ms"] / chosen["median_ms"])
    assert chosen["speedup_vs_dense_fp32"] >= 6


def test_fp32_speedup_target_is_the_dense_step_divided(tiny, clock):
    _, found = LatencyTarget(target_speedup=2)(tiny, "fc", SETTINGS, 32)
    # the dense step is the first reference; the dense model is timed again before every other candidate
    assert not any(_is_int8(t) for t in clock.timed) and len(clock.timed) == 2 * len(found.steps) - 1
    assert found.precision == "fp32" and found.steps[0].keep == 1.0 and not found.steps[0].meets_target
    assert found.target_ms == pytest.approx(found.steps[0].median_ms / 2)
    assert found.chosen.median_ms <= found.target_ms and found.chosen.file.precision == "fp32"


def test_unreachable_speedup_names_the_fastest_latency_and_speedup(tiny, train_images, clock):
    with pytest.raises(UnreachableTarget, match=r"target_speedup 10000 .* unreachable: the fastest measured was "
                                                r"[0-9.]+ ms at keep 0.1 \(int8, [0-9.]+x the dense FP32"):
        LatencyTarget(target_speedup=10000, int8=True, calib_samples=8)(tiny, "fc", SETTINGS, 32,
                                                                         train_data=train_images)
    assert isinstance(UnreachableTarget("x"), ConfigError)


def test_a_real_int8_candidate_is_timed_by_onnxruntime(tiny, train_images, monkeypatch):
    """No stand-in clock: onnxruntime loads and times the INT8 file the record names."""
    loaded: list[_Timed] = []
    real_load = OrtCpuBackend.load

    def load(self, artifact):
        data = Path(artifact).read_bytes()
        loaded.append(_Timed(hashlib.sha256(data).hexdigest(),
                             frozenset(n.op_type for n in onnx.load_from_string(data).graph.node), len(data)))
        return real_load(self, artifact)

    monkeypatch.setattr(OrtCpuBackend, "load", load)
    _, found = LatencyTarget(1e9, int8=True, calib_samples=8)(tiny, "fc", SETTINGS, 32, train_data=train_images)
    assert found.best_keep == 1.0 and len(found.steps) == 1 and len(loaded) == 2  # INT8 dense, FP32 reference
    assert _is_int8(loaded[0]) and not _is_int8(loaded[1])
    assert found.chosen.file.sha256 == loaded[0].sha256 and 0 < found.chosen.median_ms <= found.chosen.p90_ms
    assert found.dense_fp32_ms > 0 and "CPUExecutionProvider" in found.backend_settings


@pytest.mark.parametrize("kwargs, message", [
    ({"target_speedup": 1}, "target_speedup must be > 1"),
    ({"target_speedup": 0.5}, "target_speedup must be > 1"),
    ({"target_speedup": float("nan")}, "target_speedup must be > 1"),
    ({"target_ms": 5.0, "target_speedup": 2}, "one latency target"),
    ({}, "target_latency_ms or target_speedup"),
    ({"target_speedup": 2, "int8": True, "backend": "torch-cpu"}, "int8 candidates run on"),
])
def test_bad_latency_targets_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        LatencyTarget(**kwargs)


def test_int8_needs_a_target_and_training_images(tiny):
    with pytest.raises(ConfigError, match="target_latency_ms or target_speedup"):
        latency_target(None, None, int8=True)
    assert latency_target(None, None) is None
    with pytest.raises(ConfigError, match="train_data"):
        LatencyTarget(target_speedup=2, int8=True)(tiny, "fc", SETTINGS, 32)


# ---- through the command line -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    from fa_compress.train import TrainConfig
    from fa_compress.train.stage import FinetuneOptions, finetune_run

    run, _ = finetune_run(FinetuneOptions(
        model=TINY_NET, weights="none", data="fake", img_size=32, limit_train=64, limit_test=32,
        run=tmp_path_factory.mktemp("latency_int8") / "r", show_progress=False, trust_code=True,
        train=TrainConfig(schedule=("head", "gates"), batch_size=32)))
    return run.path


@pytest.fixture
def run_copy(base_run, tmp_path) -> Path:
    return Path(shutil.copytree(base_run, tmp_path / "run"))


def _snapshot(root: Path) -> dict[str, tuple[int, int] | str]:
    return {str(p.relative_to(root)): "dir" if p.is_dir() else (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


def _prune(run: Path, *extra: str) -> list[str]:
    return ["prune", "--run", str(run), "--recover-epochs", "0", "--fade-epochs", "0", "--quiet", "--trust-code",
            *extra]


@pytest.mark.parametrize("extra, word", [
    (("--target-speedup", "1"), "--target-speedup must be > 1"),
    (("--target-speedup", "0.5", "--int8"), "--target-speedup must be > 1"),
    (("--target-speedup", "2", "--target-latency-ms", "5"), "--target-latency-ms and --target-speedup"),
    (("--target-speedup", "2", "--keep", "0.5"), "one budget, not --keep and --target-speedup"),
    (("--target-speedup", "2", "--target-macs", "0.5"), "--target-macs and --target-speedup"),
    (("--int8",), "--target-speedup"),
    (("--target-speedup", "10000", "--int8"), "unreachable"),
])
def test_bad_targets_exit_2_with_one_line_and_write_nothing(run_copy, capsys, extra, word):
    before = _snapshot(run_copy)
    code, out, err = run_cli(_prune(run_copy, *extra), capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert word in lines[0] and "Traceback" not in out + err
    assert _snapshot(run_copy) == before


def test_unreachable_speedup_says_how_fast_it_got(run_copy, capsys, clock):
    code, _, err = run_cli(_prune(run_copy, "--target-speedup", "10000", "--int8"), capsys)
    assert code == 2
    assert "--target-speedup 10000" in err and "x the dense FP32" in err and "lower --target-speedup" in err


def test_int8_speedup_prune_records_the_timed_file(run_copy, capsys, clock, monkeypatch):
    calibrated_on: list[int] = []
    real = latency.calibration_images

    def calibration_images(train_set, samples, seed):
        calibrated_on.append(len(train_set))
        return real(train_set, samples, seed)

    monkeypatch.setattr(latency, "calibration_images", calibration_images)
    code, out, err = run_cli(_prune(run_copy, "--target-speedup", "5", "--int8", "--importance", "l1"), capsys)
    assert code == 0, err
    stage = json.loads((run_copy / "run.json").read_text())["stages"]["prune"]
    record = stage["latency_search"]
    assert calibrated_on == [stage["dataset"]["train_images"]]  # the training split, not the test split
    assert record["precision"] == "int8" and record["backend"] == "ort-cpu" and record["target_speedup"] == 5
    timed = {t.sha256: t for t in clock.timed}
    assert _is_int8(timed[record["chosen"]["file"]["sha256"]])
    assert record["chosen"]["keep"] == record["best_keep"] == stage["settings"]["keep"]
    assert record["target_ms"] == pytest.approx(record["dense_fp32_ms"] / 5)
    assert f"as INT8 on ort-cpu at batch 1: {record['best_keep']}" in out
