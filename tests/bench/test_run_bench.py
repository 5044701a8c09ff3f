"""`bench_run` on a hand-built run: the manifest lists a gated model, an ONNX export and a prune record."""

import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch

from fa_compress.bench.results import BenchReport
from fa_compress.report.bench_stage import bench_run, discover_artifacts, report_inputs
from fa_compress.errors import ConfigError, NotFoundError
from fa_compress.gates import fold_gates, gate_ranking, has_gates, insert_gates
from fa_compress.models import build_model
from fa_compress.run import Run
from fa_compress.models.saved import model_meta

IMG = 16
FAST = {"warmup": 1, "rounds": 2, "batch_sizes": (1, 2)}


def export_onnx(model, path, img):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), torch.randn(1, 3, img, img), str(path), dynamo=False,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})


@pytest.fixture(scope="module")
def template_run(tmp_path_factory) -> Run:
    """A run as finetune + prune + export leave it, made in a second (no training)."""
    from fa_compress.bench.backends import get_backend  # noqa: F401 - keeps imports out of the timings

    run = Run.create(path=tmp_path_factory.mktemp("template") / "r1")
    torch.manual_seed(0)
    model = insert_gates(build_model("resnet18", num_classes=10, weights="none")).eval()
    norm = {"mean": [0.5] * 3, "std": [0.5] * 3}
    run.save_model("finetuned", model, model_meta(model, arch="resnet18", classes=[f"c{i}" for i in range(10)],
                                                  img_size=IMG, normalization=norm))
    run.write_json("gates.json", [r.to_dict() for r in gate_ranking(model, IMG)])
    options = {"model": "resnet18", "data": "fake", "data_root": None, "img_size": IMG, "limit_train": 10,
               "limit_test": 20, "train": {"seed": 0, "schedule": ["head"]}}
    run.record("finetune", {"status": "done", "options": options, "dataset": {"classes": [f"c{i}" for i in range(10)]},
                            "artifacts": {"model": "finetuned.safetensors", "gates": "gates.json"}})
    run.record("prune", {"status": "done", "artifacts": {},
                         "metrics": {"channels_before": {"conv1": 64}, "channels_after": {"conv1": 48}}})
    export_onnx(fold_gates(model), run.path / "model.onnx", IMG)
    run.record("export", {"status": "done", "artifacts": {"onnx": {"path": "model.onnx", "source": "finetuned"},
                                                          "log": "export.json"}})
    return run


@pytest.fixture
def run(template_run, tmp_path) -> Run:
    """A fresh copy of the template run for each test."""
    return Run.open(Path(shutil.copytree(template_run.path, tmp_path / "r1")))


def test_discovers_model_files_and_exports_once_each(run):
    found = discover_artifacts(run)
    assert [(n, k, p.name, s, t) for n, k, p, s, t in found] == [
        ("finetuned", "torch", "finetuned.safetensors", None, None),
        ("model.onnx", "onnx", "model.onnx", "finetuned", None)]


def test_report_inputs_come_from_the_run(run):
    inputs = report_inputs(run)
    assert sum(len(v) for v in inputs["gate_values"].values()) == 4800  # resnet18's BatchNorm channels
    assert inputs["channels_after"] == {"conv1": 48}


def test_bench_run_measures_writes_and_records(run):
    report = bench_run(run, backends=["torch-cpu", "ort-cpu", "tensorrt"], **FAST)
    dense, onnx = report.artifacts
    assert dense.latencies and onnx.latencies
    assert dense.eval_images == onnx.eval_images == 20
    assert dense.top1_pct == pytest.approx(onnx.top1_pct)
    assert (onnx.params, onnx.macs) == (dense.params, dense.macs)
    assert any("gates folded" in n for n in report.notes)
    assert report.settings.img_size == IMG
    stored = BenchReport.from_json((run.path / "report.json").read_text())
    assert stored == report
    for name in ("report.md", "report.html", "report_accuracy_latency.png", "report_gates.png",
                 "report_channels.png"):
        assert (run.path / name).stat().st_size > 0
    entry = run.stage("bench")
    assert entry["artifacts"]["report_md"] == "report.md"
    assert set(entry["summary"]) == {"finetuned", "model.onnx"}
    assert entry["summary"]["finetuned"]["latency_ms"]["torch-cpu@1"] > 0
    if not torch.cuda.is_available():
        assert any(s.startswith("tensorrt: ") for s in entry["skipped"])
    # the model file on disk is untouched: still gated
    from fa_compress.models.saved import load_model
    assert has_gates(load_model(run.path / "finetuned.safetensors")[0])
    # a second bench does not pick up the report files as artifacts
    assert [n for n, *_ in discover_artifacts(run)] == ["finetuned", "model.onnx"]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"backends": ["tensorrt-fp8"]}, NotFoundError, "unknown backend"),
    ({"batch_sizes": (0,)}, ConfigError, "batch size"),
    ({"eval_limit": 0}, ConfigError, "eval_limit"),
])
def test_bad_options_fail_before_loading(run, kwargs, error, match):
    with pytest.raises(error, match=match):
        bench_run(run, **{**FAST, **kwargs})
    assert run.stage("bench") is None


def test_a_run_with_nothing_to_benchmark(tmp_path):
    empty = Run.create(path=tmp_path / "empty")
    empty.record("export", {"status": "running", "artifacts": {"log": "gates.json"}})
    with pytest.raises(NotFoundError, match="nothing to benchmark"):
        bench_run(empty, **FAST)
    assert json.loads((empty.path / "run.json").read_text())["stages"].keys() == {"export"}


def test_cli_bench_then_report(run):
    from fa_compress.cli.app import app
    from typer.testing import CliRunner

    cli = CliRunner()
    args = ["bench", "--run", str(run.path), "--backend", "torch-cpu,ort-cpu", "--backend", "tensorrt",
            "--backend", "openvino-cpu", "--batch-sizes", "1", "--warmup", "1", "--rounds", "2",
            "--eval-limit", "10", "--quiet"]
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Headline" in result.output and "finetuned" in result.output
    assert f"report: {run.path / 'report.md'}" in " ".join(result.output.split())
    if not torch.cuda.is_available():
        assert "skipped tensorrt" in result.output
    from fa_compress._deps import available

    if not available("openvino"):  # the install hint printed whole, not eaten as console markup
        assert "pip install 'facompress[openvino]'" in " ".join(result.output.split())
    md = (run.path / "report.md").read_text()
    assert BenchReport.from_json((run.path / "report.json").read_text()).artifacts[0].eval_images == 10
    result = cli.invoke(app, ["report", "--run", str(run.path)])
    assert result.exit_code == 0, result.output
    assert str(run.path / "report.html") in result.output
    assert (run.path / "report.md").read_text() == md


@pytest.mark.parametrize("args, message", [
    (["bench", "--backend", "ort-gpu"], "error: unknown backend 'ort-gpu'; known: openvino-cpu, ort-cpu"),
    (["bench", "--batch-sizes", "1,0"], "error: batch size must be >= 1, got 0"),
    (["bench", "--batch-sizes", "one"], "error: --batch-sizes must be comma-separated"),
    (["bench", "--rounds", "0"], "error: --rounds (timed runs of each artifact) must be >= 1, got 0"),
    (["bench", "--warmup", "0"], "error: --warmup (untimed rounds before timing) must be >= 1, got 0"),
    (["bench", "--order", "random"], "error: order must be one of interleaved, sequential"),
    (["report"], "error: "),
])
def test_cli_errors_are_one_line_and_exit_2(run, args, message):
    from fa_compress.cli.app import app
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, [*args, "--run", str(run.path)])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
