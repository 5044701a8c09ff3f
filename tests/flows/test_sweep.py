"""The sweep on a tiny real run: prune + export + bench per keep ratio, frontier plot."""

import json

import pytest

from fa_compress.pruning.pruner import PruneSettings
from fa_compress.search.sweep import model_name_for, parse_keeps, sweep_run
from fa_compress.errors import ConfigError


@pytest.mark.slow
def test_sweep_on_a_tiny_run(tmp_path):
    from fa_compress.train import TrainConfig
    from fa_compress.train.stage import FinetuneOptions, finetune_run

    run, _ = finetune_run(FinetuneOptions(model="resnet18", weights="none", data="fake", img_size=32,
                                          limit_train=64, limit_test=32, run=tmp_path / "r", show_progress=False,
                                          train=TrainConfig(schedule=("head", "gates"), batch_size=32)))
    result = sweep_run(run, (0.75, 0.5), base=PruneSettings(), recover_epochs=0, batch_sizes=(1,), runs=3,
                       show_progress=False)
    assert [p.keep for p in result.points] == [0.75, 0.5]
    assert result.dense.params > result.points[0].params > result.points[1].params
    assert all(p.onnx_median_ms.get("ort-cpu@1", 0) > 0 for p in (result.dense, *result.points))
    assert all(p.val_final is not None and p.test_final.n == 32 for p in (result.dense, *result.points))
    stored = json.loads((run.path / "sweep.json").read_text())
    assert [p["model"] for p in stored["points"]] == [model_name_for(0.75), model_name_for(0.5)]
    png = (run.path / result.plot).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_parse_keeps():
    assert parse_keeps("0.9, 0.5") == (0.9, 0.5)
    with pytest.raises(ConfigError):
        parse_keeps("0.9,1.5")
    with pytest.raises(ConfigError):
        parse_keeps("a,b")


@pytest.mark.slow
def test_criteria_sweep_at_equal_macs_writes_table_and_plot(tmp_path):
    from fa_compress.train import TrainConfig
    from fa_compress.train.stage import FinetuneOptions, finetune_run

    run, _ = finetune_run(FinetuneOptions(model="resnet18", weights="none", data="fake", img_size=32,
                                          limit_train=64, limit_test=32, run=tmp_path / "r", show_progress=False,
                                          train=TrainConfig(schedule=("head", "gates"), batch_size=32)))
    result = sweep_run(run, importances=("gate", "l1"), target_macs=(0.6,), base=PruneSettings(score_images=32),
                       recover_epochs=0, batch_sizes=(1,), runs=3, show_progress=False)
    assert [(p.importance, p.target_macs) for p in result.points] == [("gate", 0.6), ("l1", 0.6)]
    assert all(abs(p.macs_fraction - 0.6) <= 0.03 for p in result.points)  # equal compute, round_to 8 at 32 px
    stored = json.loads((run.path / "sweep.json").read_text())
    assert [p["model"] for p in stored["points"]] == ["pruned-gate-m060", "pruned-l1-m060"]
    assert (run.path / result.plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_needs_one_kind_of_budget():
    with pytest.raises(ConfigError, match="either keep ratios"):
        sweep_run(None, (0.5,), target_macs=(0.5,))
