"""`export_run` and `facompress export` on a hand-built run (a gated resnet18 on the synthetic dataset)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest
import torch

from fa_compress.errors import ConfigError, MissingDependencyError, NotFoundError, ParityError
from fa_compress.export import read_metadata
from fa_compress.export import pipeline
from fa_compress.export.pipeline import ExportOptions, export_run
from fa_compress.export.tensorrt import check_trt_available
from fa_compress.run import Run
from fa_compress.models.saved import model_meta
from fa_compress.models.saved import load_run_model

IMG = 32


def _trt_missing() -> bool:
    try:
        check_trt_available()
    except MissingDependencyError:
        return True
    return False


@pytest.fixture(scope="module")
def template_run(tmp_path_factory, make_resnet18) -> Run:
    """A run as `finetune` leaves it: a gated model (gates away from 1) and the options of its dataset."""
    from fa_compress.gates import insert_gates, iter_gates

    run = Run.create(path=tmp_path_factory.mktemp("template") / "r1")
    model = insert_gates(make_resnet18()).eval()
    with torch.no_grad():
        for _, module in iter_gates(model):
            module.gate.uniform_(0.3, 1.5, generator=torch.Generator().manual_seed(1))
    norm = {"mean": [0.5] * 3, "std": [0.5] * 3}
    run.save_model("finetuned", model, model_meta(model, arch="resnet18", classes=[f"c{i}" for i in range(10)],
                                                  img_size=IMG, normalization=norm))
    options = {"model": "resnet18", "data": "fake", "data_root": None, "img_size": IMG, "limit_train": 32,
               "limit_test": 24, "train": {"seed": 0, "schedule": ["head"]}}
    run.record("finetune", {"status": "done", "options": options, "artifacts": {"model": "finetuned.safetensors"},
                            "dataset": {"classes": [f"c{i}" for i in range(10)]}})
    return run


@pytest.fixture
def run(template_run, tmp_path) -> Run:
    return Run.open(Path(shutil.copytree(template_run.path, tmp_path / "r1")))


def test_exports_folded_model_and_int8_checks_parity_and_records(run):
    result = export_run(run, ExportOptions(int8=True, calib_samples=16, parity_images=16))
    assert result.model_name == "finetuned" and result.onnx.path == run.path / "finetuned.onnx"
    assert result.parity.passed and result.parity.n_images == 16
    graph = onnx.load(str(result.onnx.path)).graph
    assert not [t.name for t in graph.initializer if "gate" in t.name.lower()]
    meta = read_metadata(result.onnx.path)
    assert meta["model_name"] == "finetuned" and meta["source_run"] == str(run.path)
    assert result.int8 is not None and result.int8.calib_images == 16 and result.int8.size_ratio <= 0.3
    accuracy = result.int8_accuracy
    assert accuracy is not None and accuracy.n_images == 24  # the run's test split (limit_test)
    assert accuracy.drop_points == pytest.approx(accuracy.fp32_top1_pct - accuracy.top1_pct, abs=1e-3)

    entry = run.stage("export")
    assert entry["status"] == "done"
    assert entry["artifacts"] == {"onnx": {"path": "finetuned.onnx", "source": "finetuned"},
                                  "int8_onnx": {"path": "finetuned.int8-ort.onnx", "source": "finetuned",
                                                "backends": ["ort-cpu"]}}
    assert result.int8.form.activations == "u8"  # the onnxruntime CPU form, not TensorRT's
    assert [f.target for f in result.int8_files] == ["ort-cpu"]
    lo, hi = accuracy.interval_pct
    assert lo <= accuracy.top1_pct <= hi and 0.0 <= accuracy.p_value <= 1.0
    assert entry["parity"]["onnx"]["passed"] and entry["parity"]["onnx"]["batch_sizes"] == [1, 8]
    assert entry["parity"]["int8_onnx"]["passed"]
    assert entry["metrics"]["onnx"]["nodes_after"] == result.onnx.nodes_after
    assert entry["metrics"]["int8_accuracy"]["n_images"] == 24


def test_newest_model_is_chosen_and_unknown_ones_refused(run):
    model, meta = load_run_model(run, "finetuned")
    run.save_model("pruned", model, meta)
    assert pipeline.pick_model(run, None) == "pruned"
    with pytest.raises(NotFoundError, match="finetuned, pruned"):
        pipeline.pick_model(run, "recovered")
    run.model_path("pruned").unlink()
    run.model_path("finetuned").unlink()
    with pytest.raises(NotFoundError, match="finetune"):
        export_run(run)


def test_bad_options_fail_before_anything_is_written(run, tmp_path):
    before = sorted(p.name for p in run.path.iterdir())
    for options, match in ((ExportOptions(opset=21), "13-20"), (ExportOptions(min_batch=4, opt_batch=2), "min <= opt"),
                           (ExportOptions(out=tmp_path / "nope"), "does not exist"),
                           (ExportOptions(calib_samples=0), "calib"),
                           (ExportOptions(int8=True, int8_format="qdq-u9"), "unknown INT8 format")):
        with pytest.raises((ConfigError, NotFoundError), match=match):
            export_run(run, options)
    assert sorted(p.name for p in run.path.iterdir()) == before


def test_parity_failure_deletes_the_file_and_records_the_figures(run, monkeypatch):
    real = pipeline.check_parity

    def against_a_perturbed_model(model, path, images, **kwargs):
        with torch.no_grad():
            model.fc.bias.add_(1.0)  # the PyTorch side no longer matches what was exported
        return real(model, path, images, **kwargs)

    monkeypatch.setattr(pipeline, "check_parity", against_a_perturbed_model)
    with pytest.raises(ParityError, match="not kept"):
        export_run(run, ExportOptions(parity_images=8))
    assert not (run.path / "finetuned.onnx").exists()
    entry = run.stage("export")
    assert entry["status"] == "failed" and not entry["parity"]["onnx"]["passed"]
    assert entry["parity"]["onnx"]["max_rel_err"] > 1e-4 and "onnx" not in entry["artifacts"]


def test_cli_bad_opset_and_trt_without_tensorrt_exit_2_with_one_line(run, capsys):
    from fa_compress.cli.app import main

    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--run", str(run.path), "--opset", "21"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: opset 21") and "\n" not in err
    if not _trt_missing():
        pytest.skip("TensorRT and a GPU are present")
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--run", str(run.path), "--trt", "--fp16"])
    captured = capsys.readouterr()
    assert exit_info.value.code == 2
    assert captured.err.startswith("error: TensorRT") and captured.err.count("\n") == 1
    assert "pip install 'facompress[tensorrt]'" in captured.err and "ONNX files were written" in captured.err
    assert "finetuned.onnx" in captured.out and "finetuned.fp16.onnx" in captured.out
    assert (run.path / "finetuned.onnx").is_file() and (run.path / "finetuned.fp16.onnx").is_file()
    entry = json.loads((run.path / "run.json").read_text())["stages"]["export"]
    assert entry["status"] == "done" and entry["tensorrt"]["status"] == "missing"
    assert entry["parity"]["fp16_onnx"]["passed"] and set(entry["artifacts"]) == {"onnx", "fp16_onnx"}



def test_int8_with_trt_writes_both_forms_named_apart(run):
    """--int8 --trt: the onnxruntime CPU form and TensorRT's symmetric int8 form, each recorded with the
    backend it is measured on; without TensorRT the files are still written and checked."""
    options = ExportOptions(int8=True, trt=True, calib_samples=16, parity_images=8)
    try:
        result = export_run(run, options)
    except MissingDependencyError as exc:
        result = exc.partial_result
    by_target = {f.target: f for f in result.int8_files}
    assert set(by_target) == {"ort-cpu", "tensorrt"}
    ort_file, trt_file = by_target["ort-cpu"].quantized, by_target["tensorrt"].quantized
    assert (ort_file.path.name, trt_file.path.name) == ("finetuned.int8-ort.onnx", "finetuned.int8-trt.onnx")
    assert ort_file.form.activations == "u8" and trt_file.form.name == "qdq"
    assert trt_file.form.activations == "s8" and trt_file.form.symmetric_activations
    artifacts = run.stage("export")["artifacts"]
    assert artifacts["int8_onnx"]["backends"] == ["ort-cpu"]
    assert artifacts["int8_trt_onnx"] == {"path": "finetuned.int8-trt.onnx", "source": "finetuned",
                                          "backends": ["openvino-cpu"]}
    assert all(f.parity.passed and f.accuracy.n_images == 24 for f in result.int8_files)
