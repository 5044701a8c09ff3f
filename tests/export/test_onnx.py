"""ONNX export: one runnable self-contained file, simplified, with metadata, no gates, safe on failure."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from fa_compress.errors import ConfigError, NotFoundError
from fa_compress.export import export_onnx, read_metadata
from fa_compress.export._ort import open_session

IMG = 32  # px, as in conftest.py


def test_runs_in_onnxruntime_at_batch_1_and_5(exported):
    model, result = exported
    session = open_session(result.path)
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [o.name for o in session.get_outputs()] == ["logits"]
    for batch in (1, 5):
        x = torch.randn(batch, 3, IMG, IMG)  # (B, 3, H, W)
        got = session.run(None, {"input": x.numpy()})[0]
        with torch.no_grad():
            want = model(x).numpy()
        assert got.shape == (batch, 10)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_one_checked_file_with_dynamic_batch_and_requested_opset(exported):
    _, result = exported
    assert sorted(p.name for p in result.path.parent.iterdir()) == ["resnet18.onnx"]  # no .onnx.data, no temp
    proto = onnx.load(str(result.path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [17]
    assert result.opset == 17 and result.size_mb > 40  # resnet18: 11.2 M float32 parameters


def test_simplification_removes_nodes(exported, tmp_path, meta, make_block):
    # The exporter writes ReLU6 as Clip with Constant bounds and duplicates shared initializers via
    # Identity; onnxslim folds both (a mobilenet-style block: 12 -> 7 nodes; mobilenet_v2 209 -> 100).
    block = make_block()
    result = export_onnx(block, tmp_path / "block.onnx", img_size=IMG, metadata=meta)
    assert result.nodes_after < result.nodes_before
    assert len(onnx.load(str(result.path)).graph.node) == result.nodes_after
    _, resnet = exported  # resnet18 with folded BatchNorm is already minimal: never more nodes after
    assert resnet.nodes_after <= resnet.nodes_before


def test_metadata_is_written(exported):
    meta = read_metadata(exported[1].path)
    assert json.loads(meta["classes"]) == [f"c{i}" for i in range(10)]
    assert json.loads(meta["input_shape"]) == ["batch", 3, IMG, IMG]
    assert json.loads(meta["normalization_mean"]) == [0.5, 0.5, 0.5]
    assert json.loads(meta["normalization_std"]) == [0.5, 0.5, 0.5]
    assert meta["source_run"] == "runs/test"


def test_folded_gates_leave_no_gate_in_the_graph(tmp_path, make_resnet18, meta):
    from fa_compress.gates import fold_gates, insert_gates, iter_gates

    gated = insert_gates(make_resnet18()).eval()
    with torch.no_grad():
        for _, module in iter_gates(gated):
            module.gate.uniform_(0.2, 1.5)
    x = torch.randn(4, 3, IMG, IMG)  # (B, 3, H, W)
    with torch.no_grad():
        want = gated(x).numpy()
    result = export_onnx(fold_gates(gated), tmp_path / "folded.onnx", img_size=IMG, metadata=meta)
    graph = onnx.load(str(result.path)).graph
    names = [t.name for t in graph.initializer] + [n.name for n in graph.node] + [o for n in graph.node for o in n.output]
    assert not [n for n in names if "gate" in n.lower()]
    np.testing.assert_allclose(open_session(result.path).run(None, {"input": x.numpy()})[0], want, rtol=1e-4, atol=1e-4)


def test_gated_model_is_refused_and_nothing_written(tmp_path, make_resnet18, meta):
    from fa_compress.gates import insert_gates

    with pytest.raises(ConfigError, match="fold_gates"):
        export_onnx(insert_gates(make_resnet18()), tmp_path / "m.onnx", img_size=IMG, metadata=meta)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("opset", [12, 21])
def test_opset_outside_13_to_20_is_refused(resnet18, tmp_path, opset, meta):
    with pytest.raises(ConfigError, match="13-20"):
        export_onnx(resnet18, tmp_path / "m.onnx", img_size=IMG, opset=opset, metadata=meta)
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_is_refused_and_not_created(resnet18, tmp_path, meta):
    target = tmp_path / "missing" / "m.onnx"
    with pytest.raises(NotFoundError, match="does not exist"):
        export_onnx(resnet18, target, img_size=IMG, metadata=meta)
    assert not target.parent.exists()


def test_failure_after_tracing_leaves_no_partial_file(make_block, tmp_path, monkeypatch, meta):
    def broken_check(*args, **kwargs):
        raise onnx.checker.ValidationError("simulated checker failure")

    monkeypatch.setattr(onnx.checker, "check_model", broken_check)
    with pytest.raises(onnx.checker.ValidationError):
        export_onnx(make_block(), tmp_path / "m.onnx", img_size=IMG, metadata=meta)
    assert list(tmp_path.iterdir()) == []


def test_training_mode_is_restored_and_non_string_metadata_refused(tmp_path, make_block):
    model = make_block().train()
    export_onnx(model, tmp_path / "m.onnx", img_size=IMG, metadata={}, simplify=False)
    assert model.training
    with pytest.raises(ConfigError, match="strings"):
        export_onnx(model, tmp_path / "n.onnx", img_size=IMG, metadata={"classes": ["a"]})  # type: ignore[dict-item]
