"""The prune stage on a tiny run: keep-or-undo reads the validation split, never the test split."""

import pytest
import torch

import fa_compress.pruning.chain as chain
import fa_compress.pruning.stage as stage
from fa_compress.accuracy import Accuracy
from fa_compress.errors import ConfigError
from fa_compress.pruning.pruner import PruneSettings
from fa_compress.pruning.result import Scores
from fa_compress.pruning.stage import PruneOptions, prune_run
from tests.conftest import tiny_finetuned_run
from fa_compress.train.evaluate import Evaluation
from fa_compress.models.saved import load_run_model


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return tiny_finetuned_run(tmp_path_factory.mktemp("prune_stage") / "r", limit_train=64, limit_test=64,
                              schedule=("head", "head"))


def _fake_recovery(effect):
    def recover(model, head, *args, **kwargs):
        with torch.no_grad():
            effect(head)
        return object()  # anything but None: "recovery ran"
    return recover


def _evaluation(acc: float, n: int = 100) -> Evaluation:
    correct = torch.arange(n) < round(acc * n)  # (n,) the first acc*n images right
    return Evaluation(Accuracy.of(int(correct.sum()), n), correct)


def _prune(run, monkeypatch, effect, val, test):
    """Prune with a stand-in recovery (`effect` on the classifier) and scripted accuracies, validation
    and test: before pruning, right after, after recovery."""
    monkeypatch.setattr(chain, "recover", _fake_recovery(effect))
    scripted = iter([Scores(_evaluation(v), _evaluation(t)) for v, t in zip(val, test)])
    monkeypatch.setattr(stage, "_score", lambda *args, **kwargs: next(scripted))
    _, result, _ = prune_run(PruneOptions(settings=PruneSettings(keep=0.75, importance="l1"), run=run.path,
                                          output="pruned-test", show_progress=False))
    return result, load_run_model(run, "pruned-test")[0]


def test_a_recovery_that_hurts_on_validation_is_undone_whatever_the_test_says(tiny_run, monkeypatch):
    result, saved = _prune(tiny_run, monkeypatch, lambda head: head.weight.zero_(), val=(0.9, 0.8, 0.5),
                           test=(0.1, 0.2, 0.99))  # test says the opposite: it must not be read
    assert result.kept == "pruned" and result.acc_final == 0.2 and result.acc_recovered == 0.99
    assert result.val_final.value == 0.8 and result.val_recovered.value == 0.5
    assert saved.fc.weight.abs().sum() > 0  # the saved classifier is the one from before "recovery"


def test_a_recovery_that_does_not_hurt_on_validation_is_kept(tiny_run, monkeypatch):
    result, saved = _prune(tiny_run, monkeypatch, lambda head: head.weight.zero_(), val=(0.9, 0.8, 0.8),
                           test=(0.9, 0.95, 0.1))
    assert result.kept == "recovered" and result.acc_final == 0.1
    assert saved.fc.weight.abs().sum() == 0  # the recovered classifier was saved
    stored = tiny_run.manifest["stages"]["prune:pruned-test"]
    assert stored["metrics"]["kept"] == "recovered" and stored["metrics"]["acc_final"] == result.acc_final
    assert stored["selected_on"] == "validation" and stored["seed"] == 0
    assert stored["metrics"]["val_before"]["n"] == 100 and stored["metrics"]["test_before"]["n"] == 100
    assert stored["metrics"]["vs_dense"]["only_b"] == 80  # dense right on 90 test images, saved on 10


def test_the_results_carry_image_counts_and_intervals(tiny_run):
    _, result, _ = prune_run(PruneOptions(settings=PruneSettings(keep=0.75, importance="l1"), run=tiny_run.path,
                                          output="pruned-real", recover_epochs=0, show_progress=False))
    assert result.test_before.n == 64 and result.val_before.n == len(stage.dataset_of_run(tiny_run).val)
    assert result.test_pruned.low <= result.acc_pruned <= result.test_pruned.high
    assert result.val_recovered is None and result.kept == "pruned"
    assert result.vs_dense.n == 64


class _HalfKeep:
    """A stand-in `SettingsSearch`: always picks keep 0.5 and says what it saw."""

    record_key = "test_search"

    def __init__(self):
        self.seen = None

    def __call__(self, model, head_name, settings, img_size, *, gradient_fn=None, score_fn=None):
        self.seen = (next(model.parameters()).device.type, head_name, img_size)

        class Record:
            def to_dict(self):
                return {"picked": 0.5}

        return PruneSettings(keep=0.5, importance=settings.importance), Record()


def test_an_injected_search_picks_the_settings_and_is_recorded(tiny_run):
    search = _HalfKeep()
    _, result, record = prune_run(PruneOptions(settings=PruneSettings(keep=0.9, importance="l1"), run=tiny_run.path,
                                               output="pruned-search", recover_epochs=0, show_progress=False),
                                  search=search)
    assert search.seen == ("cpu", "fc", 32) and result.keep == 0.5 and record.to_dict() == {"picked": 0.5}
    assert tiny_run.manifest["stages"]["prune:pruned-search"]["test_search"] == {"picked": 0.5}


def test_a_latency_target_runs_as_an_injected_search_with_gradient_scores(tiny_run):
    from fa_compress.search.latency import LatencyTarget

    _, result, search = prune_run(PruneOptions(settings=PruneSettings(keep=0.9, importance="taylor"),
                                               run=tiny_run.path, output="pruned-latency", recover_epochs=0,
                                               show_progress=False),
                                  search=LatencyTarget(1e9, backend="torch-cpu"))
    assert search.best_keep == 1.0 and result.keep == 1.0 and search.steps[0].meets_target
    stored = tiny_run.manifest["stages"]["prune:pruned-latency"]["latency_search"]
    assert stored["best_keep"] == 1.0 and stored["target_ms"] == 1e9


def test_fade_epochs_fade_the_planned_cut_out_and_are_recorded(tmp_path):
    from fa_compress.train import TrainConfig
    from fa_compress.train.stage import FinetuneOptions, finetune_run

    run, _ = finetune_run(FinetuneOptions(
        model="resnet18", weights="none", data="fake", img_size=32, limit_train=64, limit_test=64,
        run=tmp_path / "r", show_progress=False, train=TrainConfig(schedule=("head", "gates"), batch_size=32)))
    _, result, _ = prune_run(PruneOptions(settings=PruneSettings(keep=0.75, score_images=32), run=run.path,
                                          output="pruned-fade", show_progress=False, recover_epochs=0,
                                          fade_epochs=1))
    assert result.fade["epochs"] == 1 and result.fade["channels"] > 0
    assert result.macs_after < result.macs_before
    stored = run.manifest["stages"]["prune:pruned-fade"]
    assert stored["fade_epochs"] == 1 and stored["metrics"]["fade"]["channels"] == result.fade["channels"]
    assert "policy" in stored["openmp_wait"] and "policy" in run.manifest["stages"]["finetune"]["openmp_wait"]


@pytest.mark.parametrize("given, expected", [
    ({}, (None, 0)),                                       # gate ranking: the default budget fades, no recovery
    ({"importance": "taylor"}, (0, None)),                 # no gates to fade: the default budget recovers
    ({"fade_epochs": 0}, (0, None)),                       # a plain cut recovers
    ({"fade_epochs": 2}, (2, 0)),
    ({"fade_epochs": 1, "recover_epochs": 1}, (1, 1)),     # both, as asked
    ({"importance": "l1", "recover_epochs": 0}, (0, 0)),
])
def test_one_epoch_after_fine_tuning_by_default_spent_fading_with_the_gate_ranking(given, expected):
    importance = given.pop("importance", "gate")
    opts = PruneOptions(settings=PruneSettings(importance=importance), **given)
    assert (opts.fade_epochs, opts.recover_epochs) == expected


def test_asking_a_fade_of_a_ranking_without_gates_is_refused():
    with pytest.raises(ConfigError, match="importance gate"):
        PruneOptions(settings=PruneSettings(importance="taylor"), fade_epochs=1)
