import pytest
import torch

from fa_compress.bench.results import BenchReport
from fa_compress.bench.suite import Artifact, bench_artifacts
from fa_compress.errors import ConfigError, NotFoundError

IMG = 16
FAST = {"warmup": 1, "rounds": 3, "img_size": IMG}


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
    ({"backends": ["torch-gpu"]}, NotFoundError, "known: openvino-cpu, ort-cpu"),
    ({"batch_sizes": (1, 0)}, ConfigError, "batch size"),
    ({"batch_sizes": ()}, ConfigError, "no batch size"),
])
def test_bad_options_fail_before_measuring(tiny_model, kwargs, error, match):
    with pytest.raises(error, match=match):
        bench_artifacts([Artifact("dense", "torch", model=tiny_model)], **{"batch_sizes": (1,), **FAST, **kwargs})


def test_nothing_to_benchmark():
    with pytest.raises(NotFoundError, match="nothing to benchmark"):
        bench_artifacts([], **FAST)


def test_artifacts_of_a_backend_share_rounds_and_carry_ratios_and_intervals(tiny_model, tiny_onnx, eval_set,
                                                                            tmp_path):
    from tests.bench.conftest import export_onnx, tiny_cnn

    wide = tiny_cnn(width=16)  # more MACs: the dense reference
    wide_onnx = export_onnx(wide, tmp_path / "wide.onnx")
    artifacts = [Artifact("dense", "torch", model=wide), Artifact("small", "torch", model=tiny_model),
                 Artifact("wide.onnx", "onnx", wide_onnx, source="dense"),
                 Artifact("tiny.onnx", "onnx", tiny_onnx, source="small")]
    report = bench_artifacts(artifacts, backends=["torch-cpu", "ort-cpu"], batch_sizes=(1,), eval_data=eval_set,
                             seed=7, **FAST)
    dense, small, wide_o, tiny_o = report.artifacts
    assert dense.latency("torch-cpu", 1).reference == "dense" and dense.latency("torch-cpu", 1).ratio is None
    ratio = small.latency("torch-cpu", 1).ratio
    assert small.latency("torch-cpu", 1).reference == "dense"  # same backend, same rounds
    assert ratio.n_rounds == 5 and ratio.low <= ratio.median <= ratio.high  # 3 rounds over 5 loads: 1 each
    assert tiny_o.latency("ort-cpu", 1).reference == "wide.onnx"  # never compared across backends
    assert (report.settings.order, report.settings.seed, report.settings.rounds) == ("interleaved", 7, 3)
    # accuracy: n, the Wilson interval, and paired tests against the dense model and the source
    assert small.eval_images == 24 and small.top1_low_pct <= small.top1_pct <= small.top1_high_pct
    assert [d.reference for d in small.accuracy_vs] == ["dense"]
    assert [d.reference for d in tiny_o.accuracy_vs] == ["dense", "small"]
    same = tiny_o.accuracy_vs[1]  # the ONNX file of `small`: same predictions
    assert (same.only_this, same.only_reference, same.diff_points, same.within_noise) == (0, 0, 0.0, True)
    env = report.env
    assert env.load_avg_before is not None and len(env.load_avg_after) == 3
    assert env.torch_threads >= 1 and isinstance(env.cpu_flags, tuple)


def test_an_artifact_made_for_one_backend_is_measured_only_there(tiny_model, tiny_onnx):
    artifacts = [Artifact("o", "onnx", tiny_onnx), Artifact("trt-form", "onnx", tiny_onnx, backends=("tensorrt",))]
    report = bench_artifacts(artifacts, backends=["ort-cpu"], batch_sizes=(1,), **FAST)
    assert report.artifacts[0].latencies and report.artifacts[1].latencies == ()


@pytest.mark.parametrize("kwargs, match", [({"rounds": 0}, "rounds"), ({"warmup": 0}, "warmup"),
                                           ({"order": "shuffled"}, "order must be")])
def test_rounds_warmup_and_order_are_checked(tiny_model, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        bench_artifacts([Artifact("dense", "torch", model=tiny_model)], **{"batch_sizes": (1,), **FAST, **kwargs})


@pytest.mark.parametrize("fmt", ["channels_last", "contiguous"])
def test_the_memory_format_asked_reaches_the_torch_cpu_model_and_the_report(tiny_model, eval_set, fmt, monkeypatch):
    """Asked of `bench_artifacts`: every conv of torch-cpu's copy sees its input and weight in that layout,
    for the latency rounds and the accuracy pass; the settings and the environment record the choice."""
    from fa_compress.bench.backends import torch_eager
    from fa_compress.train.memory_format import is_in_format

    seen: list[tuple[bool, bool]] = []
    hook = lambda conv, args: seen.append((is_in_format(args[0], fmt), is_in_format(conv.weight, fmt)))  # noqa: E731
    load = torch_eager.TorchRunner.__init__

    def hooked(self, *args, **kwargs):
        load(self, *args, **kwargs)
        for m in self.model.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.register_forward_pre_hook(hook)

    monkeypatch.setattr(torch_eager.TorchRunner, "__init__", hooked)
    report = bench_artifacts([Artifact("dense", "torch", model=tiny_model)], backends=["torch-cpu"],
                             batch_sizes=(2,), eval_data=eval_set, memory_format=fmt, **FAST)
    assert len(seen) > 3 * 2 and all(x and w for x, w in seen)  # warm-up, rounds and accuracy batches
    (latency,) = report.artifacts[0].latencies
    assert fmt in latency.settings
    assert report.settings.memory_format == fmt
    assert report.env.memory_format.startswith(f"{fmt}: asked for")
    assert BenchReport.from_json(report.to_json()).settings.memory_format == fmt


def test_auto_memory_format_is_recorded_with_what_it_picks_here(tiny_model):
    from fa_compress.train.memory_format import describe_auto_cpu

    report = bench_artifacts([Artifact("dense", "torch", model=tiny_model)], backends=["torch-cpu"],
                             batch_sizes=(1,), **FAST)
    assert report.settings.memory_format == "auto" and report.env.memory_format == describe_auto_cpu()


def test_unknown_memory_format_fails_before_measuring(tiny_model):
    with pytest.raises(ConfigError, match="unknown memory_format 'nhwc'; choose one of auto, channels_last"):
        bench_artifacts([Artifact("dense", "torch", model=tiny_model)], batch_sizes=(1,), memory_format="nhwc",
                        **FAST)


def test_rounds_are_spread_over_independent_loads_of_each_artifact(tiny_model, tiny_onnx, tmp_path, monkeypatch):
    from fa_compress.bench.backends.ort import OrtCpuBackend
    from tests.bench.conftest import export_onnx, tiny_cnn

    loads = []
    original = OrtCpuBackend.load
    monkeypatch.setattr(OrtCpuBackend, "load", lambda self, a: loads.append(a) or original(self, a))
    wide_onnx = export_onnx(tiny_cnn(width=16), tmp_path / "wide.onnx")
    artifacts = [Artifact("dense", "torch", model=tiny_cnn(width=16)), Artifact("wide.onnx", "onnx", wide_onnx,
                 source="dense"), Artifact("tiny.onnx", "onnx", tiny_onnx)]
    report = bench_artifacts(artifacts, backends=["ort-cpu"], batch_sizes=(1,), sessions=3,
                             **{**FAST, "rounds": 5})
    assert sorted(map(str, loads)) == sorted([str(wide_onnx)] * 3 + [str(tiny_onnx)] * 3)  # 3 sessions each
    r = report.artifacts[2].latency("ort-cpu", 1)
    assert r.reference == "wide.onnx" and r.n_runs == 6  # ceil(5 / 3) = 2 rounds per session
    assert (r.ratio.sessions, r.ratio.n_rounds) == (3, 6) and r.ratio.low <= r.ratio.median <= r.ratio.high
    assert report.settings.sessions == 3
    with pytest.raises(ConfigError, match="sessions"):
        bench_artifacts(artifacts, backends=["ort-cpu"], batch_sizes=(1,), sessions=0, **FAST)
