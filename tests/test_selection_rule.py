"""The rule every validation choice follows (`fa_compress.selection`) and the validation split's size.

A phase or a recovery the schedule was designed to reach is kept unless the other model is better on
the same validation images beyond noise; the validation split holds at least 20 images per class where
training keeps three quarters of each class, and large datasets keep the split they had.
"""

import pytest
import torch
from torch import nn

import fa_compress.train.loop as loop
from fa_compress.accuracy import Accuracy
from fa_compress.data._split import Pool, carve_validation, make_splits
from fa_compress.errors import ConfigError
from fa_compress.pruning.result import Scores, keep_recovery, recovery_decision
from fa_compress.selection import Decision, prefer
from fa_compress.train import TrainConfig
from fa_compress.train.distributed import Context
from fa_compress.train.evaluate import Evaluation
from fa_compress.train.phase_choice import first_kept, next_kept
from fa_compress.train.progress import phase_bar
from fa_compress.train.stage import FinetuneOptions

CLASSES = [f"c{i}" for i in range(10)]


def _right(n: int, *indices: range | list[int]) -> torch.Tensor:
    """(n,) bool: True on the given images."""
    correct = torch.zeros(n, dtype=torch.bool)
    for group in indices:
        correct[list(group)] = True
    return correct


# 30 validation images (the failure seen): the head phase is right on 23 (76.7%), each gate phase on 22
# (73.3%); they disagree on 5 images, 3 the head got right and 2 the gate phase got right.
HEAD_30 = _right(30, range(20), [20, 21, 22])
GATES_30 = _right(30, range(20), [23, 24])
# a clear difference on the same 30 images: the head right on 28, the gate phase on 15
GOOD_30 = _right(30, range(28))
POOR_30 = _right(30, range(15))


def _evaluation(correct: torch.Tensor) -> Evaluation:
    return Evaluation(Accuracy.of(int(correct.sum()), correct.numel()), correct)


# ---- the rule -------------------------------------------------------------------------------------

def test_one_image_more_does_not_replace_the_designed_model():
    d = prefer(designed=GATES_30, other=HEAD_30)
    assert d.keep_designed
    assert (d.images, d.other_right_only, d.designed_right_only) == (30, 3, 2)
    assert d.p_value == 1.0 and d.to_dict()["kept"] == "designed"


def test_a_clear_difference_replaces_the_designed_model():
    d = prefer(designed=POOR_30, other=GOOD_30)
    assert not d.keep_designed and d.other_right_only == 13 and d.designed_right_only == 0
    assert d.p_value == pytest.approx(2 * 0.5 ** 13)
    assert prefer(designed=GOOD_30, other=POOR_30).keep_designed  # the designed one ahead: kept


def test_ties_and_a_designed_model_ahead_keep_the_designed_model():
    assert prefer(GATES_30, GATES_30).keep_designed and prefer(GATES_30, GATES_30).images == 30
    assert prefer(HEAD_30.tolist(), GATES_30.tolist()).keep_designed  # plain lists as well as tensors


def test_the_margin_scales_with_the_validation_size():
    """The same 3-point lead is noise on 30 images and beyond noise on 3,000."""
    small = prefer(designed=_right(30, range(20)), other=_right(30, range(21)))  # 70.0% vs 66.7%
    large = prefer(designed=_right(3000, range(2000)), other=_right(3000, range(2100)))  # 70.0% vs 66.7%
    assert small.keep_designed and not large.keep_designed
    assert large.other_right_only == 100 and large.p_value < 1e-20


def test_nothing_to_compare_with_keeps_the_designed_model():
    d = prefer(GATES_30, None)
    assert d.keep_designed and d.images == 0 and "no per-image" in d.reason


def test_different_images_are_an_internal_error():
    with pytest.raises(ValueError, match="same images"):
        prefer(GATES_30, GATES_30[:20])


def test_a_decision_round_trips_through_json():
    d = prefer(POOR_30, GOOD_30)
    assert Decision.from_dict(d.to_dict()) == d
    assert d.to_dict()["rule"] == "paired-mcnemar" and d.to_dict()["alpha"] == 0.05


# ---- fine-tuning: which phase is kept ------------------------------------------------------------

def _finetune(monkeypatch, val: list[torch.Tensor], schedule=("head", "gates", "gates")):
    """`loop.finetune` with training stubbed out and each phase's validation results scripted."""
    monkeypatch.setattr(loop, "train_head_on_features", lambda *args, **kwargs: (1.0, 0.5, 10.0))
    monkeypatch.setattr(loop, "run_image_phase", lambda *args, **kwargs: (1.0, 0.5, 10.0))
    queue = iter(val)
    monkeypatch.setattr(loop, "evaluate_detailed", lambda model, loader, ctx, cfg=None: _evaluation(next(queue)))
    saved: list[int] = []
    with phase_bar(False) as bar:
        result = loop.finetune(nn.Linear(2, 2), nn.Linear(2, 2), range(32), "val", TrainConfig(schedule=schedule),
                               Context(torch.device("cpu")), bar,
                               on_best=lambda model, phase: saved.append(phase.index))
    return result, saved


def test_gate_phases_one_image_behind_the_head_phase_are_kept(monkeypatch):
    result, saved = _finetune(monkeypatch, [HEAD_30, GATES_30, GATES_30])
    assert result.best_index == 2 and saved == [0, 1, 2]
    assert result.best_val.correct == 22 and result.phases[0].val.correct == 23
    selection = result.to_dict()["selection"]
    assert selection["rule"] == "paired-mcnemar"
    assert [(d["phase"], d["against"], d["kept"]) for d in selection["decisions"]] == \
        [(1, 0, "designed"), (2, 1, "designed")]


def test_a_phase_clearly_better_on_validation_stays_kept(monkeypatch):
    result, saved = _finetune(monkeypatch, [GOOD_30, POOR_30, POOR_30])
    assert result.best_index == 0 and saved == [0]
    decisions = result.to_dict()["selection"]["decisions"]
    assert [(d["phase"], d["against"], d["kept"]) for d in decisions] == [(1, 0, "other"), (2, 0, "other")]


def test_a_checkpoint_without_per_image_results_keeps_the_newest_phase():
    legacy = {"index": 0, "acc": 0.9}  # what a checkpoint held before per-image results were recorded
    kept = next_kept(legacy, 1, _evaluation(POOR_30))
    assert kept["index"] == 1 and kept["decisions"][0]["images"] == 0
    assert next_kept(first_kept(), 0, None)["index"] == 0  # no validation split: the newest phase


# ---- pruning: keep or undo the recovery ----------------------------------------------------------

def _scores(val: torch.Tensor) -> Scores:
    return Scores(val=_evaluation(val), test=_evaluation(_right(10, range(5))))


def test_a_recovery_one_image_behind_is_kept_and_a_clearly_worse_one_undone():
    assert keep_recovery(_scores(HEAD_30), _scores(GATES_30))
    assert not keep_recovery(_scores(GOOD_30), _scores(POOR_30))
    assert not keep_recovery(_scores(GOOD_30), None)  # no recovery ran
    assert recovery_decision(_scores(GOOD_30), _scores(POOR_30)).to_dict()["kept"] == "other"


# ---- the validation split's size ------------------------------------------------------------------

def _pool(per_class: int) -> Pool:
    labels = torch.arange(10 * per_class) % 10  # (10 * per_class,) balanced
    return Pool(labels, lambda indices, augment: list(indices))


def test_a_small_dataset_gets_a_quarter_of_each_class_not_a_tenth():
    labels = torch.arange(300) % 10  # 300 images, 30 a class
    train, val = carve_validation(labels, 0.1, seed=0, classes=CLASSES)
    assert torch.bincount(labels[val]).tolist() == [7] * 10  # floor(0.25 * 30), not round(0.1 * 30) = 3
    assert train.numel() == 230 and set(train.tolist()).isdisjoint(val.tolist())
    _, plain = carve_validation(labels, 0.1, seed=0, classes=CLASSES, min_per_class=0)
    assert plain.numel() == 30


def test_a_large_dataset_keeps_the_split_the_fraction_gives():
    labels = torch.arange(60_000) % 10  # 6,000 a class, as Fashion-MNIST
    _, val = carve_validation(labels, 0.1, seed=0, classes=CLASSES)
    _, plain = carve_validation(labels, 0.1, seed=0, classes=CLASSES, min_per_class=0)
    assert val.numel() == 6000 and torch.equal(val, plain)  # the same images: results unchanged


@pytest.mark.parametrize("limit_train, with_floor, without", [(300, 100, 33), (6000, 667, 667)])
def test_limit_train_gets_the_floor_up_to_a_quarter_of_train_and_validation(limit_train, with_floor, without):
    """Fashion-MNIST's 60,000 training images, 0.1 carved, then `limit_train` of the rest for training."""
    test = _pool(10)
    splits = [make_splits(_pool(6000), test, None, classes=CLASSES, val_fraction=0.1, limit_train=limit_train,
                          limit_test=None, seed=0, val_min_per_class=m) for m in (20, 0)]
    assert [len(s.val) for s in splits] == [with_floor, without]
    assert len(splits[0].train) == limit_train and set(splits[0].train).isdisjoint(splits[0].val)
    assert splits[0].validation.min_per_class == 20 and splits[1].validation.min_per_class == 0
    if with_floor == without:
        assert splits[0].validation.fingerprint == splits[1].validation.fingerprint


def test_runs_recorded_before_the_floor_replay_the_fraction_alone():
    recorded = FinetuneOptions().to_dict()
    assert recorded["val_min_per_class"] == 20 and FinetuneOptions.from_dict(recorded).val_min_per_class == 20
    del recorded["val_min_per_class"]
    assert FinetuneOptions.from_dict(recorded).val_min_per_class == 0


@pytest.mark.parametrize("count", [-1, 2.5, True])
def test_a_bad_floor_is_refused_naming_the_parameter(count):
    with pytest.raises(ConfigError, match="val_min_per_class must be a whole number >= 0"):
        FinetuneOptions(val_min_per_class=count)
