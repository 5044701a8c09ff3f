"""The prune stage on a tiny run: a recovery that scores lower is undone, one that helps is kept."""

import pytest
import torch

import fa_compress.prune.stage as stage
from fa_compress.prune.pruner import PruneSettings
from fa_compress.prune.stage import PruneOptions, prune_run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from fa_compress.train import TrainConfig
    from fa_compress.train.stage import FinetuneOptions, finetune_run

    run, _ = finetune_run(FinetuneOptions(
        model="resnet18", weights="none", data="fake", img_size=32, limit_train=64, limit_test=64,
        run=tmp_path_factory.mktemp("prune_stage") / "r", show_progress=False,
        train=TrainConfig(schedule=("head", "head"), batch_size=32)))
    return run


def _fake_recovery(effect):
    def recover(model, head, *args, **kwargs):
        with torch.no_grad():
            effect(head)
        return object()  # anything but None: "recovery ran"
    return recover


def _prune(run, monkeypatch, effect, accuracies):
    """Prune with a stand-in recovery (`effect` on the classifier) and scripted test accuracies:
    before pruning, right after, after recovery."""
    monkeypatch.setattr(stage, "recover", _fake_recovery(effect))
    scripted = iter(accuracies)
    monkeypatch.setattr(stage, "evaluate", lambda *args, **kwargs: next(scripted))
    _, result, _ = prune_run(PruneOptions(settings=PruneSettings(keep=0.75, importance="l1"), run=run.path,
                                          output="pruned-test", show_progress=False))
    return result, run.load_model("pruned-test")[0]


def test_a_recovery_that_hurts_is_undone(tiny_run, monkeypatch):
    result, saved = _prune(tiny_run, monkeypatch, lambda head: head.weight.zero_(), (0.9, 0.8, 0.5))
    assert result.kept == "pruned" and result.acc_final == 0.8 and result.acc_recovered == 0.5
    assert saved.fc.weight.abs().sum() > 0  # the saved classifier is the one from before "recovery"


def test_a_recovery_that_does_not_hurt_is_kept(tiny_run, monkeypatch):
    result, saved = _prune(tiny_run, monkeypatch, lambda head: head.weight.zero_(), (0.9, 0.8, 0.8))
    assert result.kept == "recovered" and result.acc_final == 0.8
    assert saved.fc.weight.abs().sum() == 0  # the recovered classifier was saved
    stored = tiny_run.manifest["stages"]["prune:pruned-test"]["metrics"]
    assert stored["kept"] == "recovered" and stored["acc_final"] == result.acc_final
