"""Selection never reads the test split: the best fine-tuning phase and the keep-or-undo decision
come from the validation split, and scrambling the test labels changes neither."""

import shutil

import pytest
import torch
from torch import nn

import fa_compress.data
import fa_compress.data.of_run
import fa_compress.train.stage
import fa_compress.train.loop as loop
from fa_compress.accuracy import Accuracy
from fa_compress.train import TrainConfig
from fa_compress.train.distributed import Context
from fa_compress.train.evaluate import Evaluation
from fa_compress.train.progress import phase_bar

TINY = dict(model="resnet18", weights="none", data="fake:4", img_size=32, limit_train=48, limit_test=48)


def _scripted(accuracies: dict[str, list[float]]):
    """An `evaluate_detailed` stand-in: the loader ("val" or "test") picks the next scripted accuracy."""
    queues = {k: iter(v) for k, v in accuracies.items()}

    def evaluate(model, loader, ctx, cfg=None):
        acc = next(queues[loader])
        correct = torch.arange(100) < round(100 * acc)  # (100,)
        return Evaluation(Accuracy.of(int(correct.sum()), 100), correct)

    return evaluate


def test_best_phase_is_the_best_on_validation_not_on_test(monkeypatch):
    monkeypatch.setattr(loop, "train_head_on_features", lambda *args, **kwargs: (1.0, 0.5, 10.0))
    monkeypatch.setattr(loop, "evaluate_detailed", _scripted({"val": [0.5, 0.7, 0.6], "test": [0.9, 0.1, 0.2]}))
    saved = []
    with phase_bar(False) as bar:
        result = loop.finetune(nn.Linear(2, 2), nn.Linear(2, 2), range(32), "val", TrainConfig(schedule=("head",) * 3),
                               Context(torch.device("cpu")), bar, test_loader="test",
                               on_best=lambda model, phase: saved.append(phase.index))
    assert result.best_index == 1 and saved == [0, 1]
    assert result.best_val.value == 0.7 and result.best_test_acc == 0.1 and result.best_test.n == 100
    assert [p.test_acc for p in result.phases] == [0.9, 0.1, 0.2]  # reported for every phase
    assert result.to_dict()["selected_on"] == "validation"


def _scramble_test_labels(monkeypatch):
    """Make every later `load_dataset` return test labels shifted by one class (all of them wrong)."""
    real = fa_compress.data.load_dataset

    def scrambled(*args, **kwargs):
        bundle = real(*args, **kwargs)
        bundle.test.labels = (bundle.test.labels + 1) % bundle.num_classes
        return bundle

    for module in (fa_compress.data, fa_compress.data.of_run, fa_compress.train.stage):  # each binds its own name
        monkeypatch.setattr(module, "load_dataset", scrambled)


def _finetune(path, schedule=("head", "gates", "gates")):
    from fa_compress.train.stage import FinetuneOptions, finetune_run

    return finetune_run(FinetuneOptions(**TINY, run=path, show_progress=False,
                                        train=TrainConfig(schedule=schedule, batch_size=16)))


def test_scrambled_test_labels_change_no_choice_of_finetune(tmp_path, monkeypatch):
    _, plain = _finetune(tmp_path / "plain")
    _scramble_test_labels(monkeypatch)
    _, scrambled = _finetune(tmp_path / "scrambled")
    assert scrambled.best_index == plain.best_index
    assert [p.val for p in scrambled.phases] == [p.val for p in plain.phases]
    assert [p.test_acc for p in scrambled.phases] != [p.test_acc for p in plain.phases]  # the scramble bit


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    run, _ = _finetune(tmp_path_factory.mktemp("selection") / "run", schedule=("head", "gates"))
    return run.path


def test_scrambled_test_labels_change_no_keep_or_undo(finetuned, tmp_path, monkeypatch):
    from fa_compress.pruning.pruner import PruneSettings
    from fa_compress.pruning.stage import PruneOptions, prune_run

    def prune(path):
        shutil.copytree(finetuned, path)
        return prune_run(PruneOptions(settings=PruneSettings(keep=0.5), run=path, show_progress=False))[1]

    plain = prune(tmp_path / "plain")
    _scramble_test_labels(monkeypatch)
    scrambled = prune(tmp_path / "scrambled")
    assert scrambled.kept == plain.kept
    assert (scrambled.val_pruned, scrambled.val_recovered) == (plain.val_pruned, plain.val_recovered)
    assert scrambled.test_before != plain.test_before  # the scramble reached the test split
