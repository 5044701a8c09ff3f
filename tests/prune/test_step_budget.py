"""Training around the cut is counted in optimizer steps: given steps are exact, given epochs become steps,
and by default one epoch but at least the floor; a cut that loses too much validation accuracy is flagged."""

import json

import pytest
import torch

import fa_compress.pruning.stage as stage
import fa_compress.pruning.steps as steps_module
from fa_compress.accuracy import Accuracy
from fa_compress.errors import ConfigError
from fa_compress.gates import insert_gates, iter_gates
from fa_compress.models import build_model, get_head
from fa_compress.pruning.chain import ChainOptions, prune_chain
from fa_compress.pruning.depth import TOO_DEEP_POINTS, DepthCheck
from fa_compress.pruning.fade import fade_out
from fa_compress.pruning.pruner import PruneSettings
from fa_compress.pruning.recover import recover
from fa_compress.pruning.result import Scores
from fa_compress.pruning.budget import Budget
from fa_compress.pruning.steps import FLOOR_STEPS, depth_factor, step_budget
from fa_compress.train.config import TrainConfig
from fa_compress.train.distributed import init_context
from fa_compress.train.evaluate import Evaluation
from fa_compress.train.progress import phase_bar
from tests.conftest import random_gates, randomize_batchnorm, run_cli

pytestmark = pytest.mark.real_floor  # these tests are about the floor itself

IMG = 32
IMAGES = 40  # one epoch at the default batch of 8: 5 steps
CTX = init_context("cpu")
CFG = TrainConfig(seed=0, memory_format="contiguous")


def _data(n: int = IMAGES, classes: int = 4):
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(3, IMG, IMG, generator=g), i % classes) for i in range(n)]


def _gated():
    torch.manual_seed(0)
    model = randomize_batchnorm(build_model("resnet18", num_classes=4, weights="none"))
    return random_gates(insert_gates(model)).eval()


# ---- the rule ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("steps, epochs, epoch_steps, expected", [
    (None, None, 34, (FLOOR_STEPS, "floor")),       # a small task: one epoch is too few steps
    (None, None, 750, (750, "one epoch")),          # a large one: one epoch is above the floor
    (None, 2, 34, (68, "epochs")),                  # epochs asked for become steps, floor or not
    (7, None, 34, (7, "steps")),                    # steps asked for are exact
    (1000, None, 34, (1000, "steps")),
])
def test_the_budget_rule(steps, epochs, epoch_steps, expected):
    budget = step_budget("fade_steps", steps, epochs, epoch_steps=epoch_steps)
    assert (budget.steps, budget.rule) == expected and budget.epoch_steps == epoch_steps


def test_the_budget_says_why():
    assert step_budget("fade_steps", None, None, epoch_steps=34, floor=200).describe() == \
        "200 steps (floor; one epoch is 34)"
    assert step_budget("fade_steps", None, None, epoch_steps=750, floor=200).describe() == \
        "750 steps (one epoch, above the floor of 200)"
    assert step_budget("fade_steps", 50, None, epoch_steps=34).describe() == "50 steps (as asked; one epoch is 34)"


@pytest.mark.parametrize("field, value", [("fade_steps", 0), ("fade_steps", -3), ("fade_steps", 2.5),
                                          ("fade_steps", True), ("recover_steps", 0), ("recover_steps", "10")])
def test_steps_below_one_or_not_whole_are_refused_by_name(field, value):
    with pytest.raises(ConfigError) as caught:
        ChainOptions(**{field: value})
    assert f"{field} must be a whole number >= 1" in str(caught.value) and "--" not in str(caught.value)


@pytest.mark.parametrize("kind", ["fade", "recover"])
def test_steps_and_epochs_together_are_refused_naming_both(kind):
    with pytest.raises(ConfigError) as caught:
        ChainOptions(**{f"{kind}_steps": 10, f"{kind}_epochs": 1})
    assert f"{kind}_steps" in str(caught.value) and f"{kind}_epochs" in str(caught.value)


def test_whether_each_training_runs_follows_the_ranking():
    gate, l1 = ChainOptions().resolved("gate"), ChainOptions().resolved("l1")
    assert (gate.fades, gate.recovers, l1.fades, l1.recovers) == (True, False, False, True)
    assert ChainOptions(fade_steps=5, recover_steps=5).resolved("gate").recovers
    assert not ChainOptions(fade_epochs=0).resolved("gate").fades
    assert ChainOptions(fade_epochs=0).resolved("gate").recovers  # a plain cut recovers
    assert gate.resolved("gate") == gate and l1.resolved("l1") == l1  # resolving twice changes nothing
    with pytest.raises(ConfigError, match="fade_steps"):
        ChainOptions(fade_steps=5).resolved("l1")


# ---- exact steps ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("steps", [3, 13])  # inside one epoch of 5; across two epoch boundaries
def test_the_fade_runs_exactly_its_steps_in_full_batches(optimizer_steps, steps):
    model = _gated()
    masks = {name: torch.arange(g.num_features) < 4 for name, g in iter_gates(model)}
    seen = []
    model.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[0]))
    with phase_bar(False) as bar:
        fade_out(model, get_head(model, "resnet18"), masks, _data(), CFG, CTX, bar, steps=steps)
    assert len(optimizer_steps) == steps and seen == [8] * steps
    assert all(torch.all(g.gate[masks[name]] == 0) for name, g in iter_gates(model))  # faded out on time


def test_the_fade_refuses_steps_below_one():
    model = _gated()
    with phase_bar(False) as bar, pytest.raises(ConfigError, match="fade_steps"):
        fade_out(model, model.fc, {}, _data(), CFG, CTX, bar, steps=0)


@pytest.mark.parametrize("epochs, steps, expected", [(None, 7, 7), (2, None, 10), (0, None, 0)])
def test_the_recovery_runs_exactly_its_steps(optimizer_steps, epochs, steps, expected):
    model = _gated()
    with phase_bar(False) as bar:
        result = recover(model, get_head(model, "resnet18"), _data(), None, epochs, CFG, CTX, bar, steps=steps)
    assert len(optimizer_steps) == expected and (result is None) == (expected == 0)


def _chain(options: ChainOptions, importance: str):
    settings = PruneSettings(importance=importance, keep=0.75, score_images=16, round_to=1)
    model = _gated()
    return prune_chain(model, get_head(model, "resnet18"), settings, torch.zeros(1, 3, IMG, IMG), None, _data(),
                       CFG, CTX, options=options.resolved(importance), seed=0)


@pytest.mark.parametrize("importance, trained", [("gate", "fade"), ("l1", "recovery")])
def test_by_default_the_chain_trains_up_to_the_floor(optimizer_steps, monkeypatch, importance, trained):
    monkeypatch.setattr(steps_module, "FLOOR_STEPS", 12)  # above one epoch of 5, not a multiple of it
    result = _chain(ChainOptions(), importance)
    record = result.fade if trained == "fade" else result.recovery
    assert len(optimizer_steps) == 12
    assert (record["steps"], record["rule"], record["epoch_steps"], record["floor_steps"]) == (12, "floor", 5, 12)
    assert (result.fade is None) == (trained == "recovery") and (result.recovery is None) == (trained == "fade")


@pytest.mark.parametrize("options, expected", [(ChainOptions(fade_steps=7), (7, "steps")),
                                               (ChainOptions(fade_epochs=2), (10, "epochs"))])
def test_asked_steps_or_epochs_override_the_floor(optimizer_steps, options, expected):
    result = _chain(options, "gate")
    assert len(optimizer_steps) == expected[0] and (result.fade["steps"], result.fade["rule"]) == expected


# ---- deep cuts: the default budget grows ----------------------------------------------------------------
@pytest.mark.parametrize("macs, most, expected", [(None, 2.0, 1.0), (0.75, 2.0, 1.0), (0.5, 2.0, 1.0),
                                                  (0.425, 2.0, 1.5), (0.35, 2.0, 2.0), (0.25, 2.0, 2.0),
                                                  (0.25, 1.0, 1.0), (0.4, 3.0, 2.333)])
def test_the_depth_factor(macs, most, expected):
    assert depth_factor(macs, most) == pytest.approx(expected)


def test_depth_grows_the_default_rules_only():
    grown = step_budget("fade_steps", None, None, epoch_steps=34, factor=2.0, macs_fraction=0.3)
    assert (grown.steps, grown.rule, grown.factor) == (2 * FLOOR_STEPS, "floor", 2.0)
    assert grown.describe() == f"{2 * FLOOR_STEPS} steps (floor x2 for a cut to 0.30 of the MACs; one epoch is 34)"
    assert step_budget("fade_steps", None, None, epoch_steps=750, factor=1.5, macs_fraction=0.425).steps == 1125
    assert step_budget("fade_steps", 50, None, epoch_steps=34, factor=2.0).steps == 50        # asked: exact
    assert step_budget("fade_steps", None, 2, epoch_steps=34, factor=2.0).steps == 68         # asked in epochs


def _deep_chain(options: ChainOptions, importance: str, target: float):
    settings = PruneSettings(importance=importance, score_images=16, round_to=1)
    model = _gated()
    return prune_chain(model, get_head(model, "resnet18"), settings, torch.zeros(1, 3, IMG, IMG),
                       Budget(target_macs=target), _data(), CFG, CTX, options=options.resolved(importance), seed=0)


@pytest.mark.parametrize("importance, trained", [("gate", "fade"), ("l1", "recovery")])
@pytest.mark.parametrize("factor, target, expected", [(2.0, 0.3, 24), (1.0, 0.3, 12), (2.0, 0.6, 12)])
def test_a_deep_cut_trains_the_grown_budget(optimizer_steps, monkeypatch, importance, trained, factor, target,
                                            expected):
    monkeypatch.setattr(steps_module, "FLOOR_STEPS", 12)  # above one epoch of 5
    result = _deep_chain(ChainOptions(deep_cut_factor=factor), importance, target)
    record = result.fade if trained == "fade" else result.recovery
    assert len(optimizer_steps) == expected == record["steps"]
    assert record["factor"] == (factor if target < 0.35 else 1.0)
    assert result.budget.macs_fraction <= target + 0.01


@pytest.mark.parametrize("value", [0.5, 0.0, 11.0, True])
def test_a_deep_cut_factor_out_of_range_is_refused_by_name(value):
    with pytest.raises(ConfigError, match=r"deep_cut_factor must be in \[1, 10\]"):
        ChainOptions(deep_cut_factor=value)


@pytest.mark.parametrize("factor, suggested", [([], False), (["--deep-cut-factor", "1"], True)])
def test_a_too_deep_budget_below_the_default_factor_suggests_the_default(gated_run, monkeypatch, capsys, factor,
                                                                          suggested):
    scores = iter([0.90, 0.60])  # dense, then right after the cut (validation)
    monkeypatch.setattr(stage, "_score", lambda *args: Scores(_evaluation(next(scores)), _evaluation(0.5)))
    monkeypatch.setattr(steps_module, "FLOOR_STEPS", 4)
    code, out, err = run_cli(["prune", "--run", str(gated_run.path), "--target-macs", "0.3", "--score-images", "16",
                              "--quiet", *factor], capsys)
    assert code == 0, err
    steps = 6 if factor else 12  # one epoch of 48 images at batch 8, doubled by the default factor at 0.3
    assert f"fade: {steps} steps (one epoch" in out
    line = next(x for x in out.splitlines() if "too deep" in x)
    assert f"--fade-steps {2 * steps}" in line
    assert ("(or --deep-cut-factor 2)" in line) == suggested


# ---- too deep ------------------------------------------------------------------------------------------
def test_the_depth_check():
    assert DepthCheck(0.80, 0.62).too_deep and DepthCheck(0.80, 0.62).val_drop_points == 18.0
    assert not DepthCheck(0.80, 0.80 - TOO_DEEP_POINTS / 100).too_deep  # exactly the threshold passes
    assert not DepthCheck(0.80, 0.85).too_deep


def _right(n: int, wrong: set[int]) -> list[bool]:
    return [i not in wrong for i in range(n)]


def test_a_drop_within_the_noise_of_a_small_split_is_not_flagged():
    # 60 validation images: the cut got 6 wrong that dense got right and 2 the other way round, 6.7 points
    # down (the false alarm a 400-step cut at 0.5 raised, whose test accuracy was 5.9 points above dense)
    small = DepthCheck.of(_right(60, {0, 1}), _right(60, {2, 3, 4, 5, 6, 7}))
    assert small.val_drop_points == pytest.approx(6.67) and small.p_value > 0.05 and not small.too_deep
    # the same 6.7 points on 600 images (60 against 20 disagreements) is beyond noise
    large = DepthCheck.of(_right(600, set(range(20))), _right(600, set(range(20, 80))))
    assert large.val_drop_points == pytest.approx(6.67) and large.p_value < 0.05 and large.too_deep
    # a collapse on a small split is flagged
    assert DepthCheck.of(_right(30, set()), _right(30, set(range(20)))).too_deep
    assert set(small.to_dict()) >= {"too_deep", "val_drop_points", "threshold_points", "p_value", "alpha"}


@pytest.fixture(scope="module")
def gated_run(tmp_path_factory):
    from fa_compress.train.stage import FinetuneOptions, finetune_run

    run, _ = finetune_run(FinetuneOptions(
        model="resnet18", weights="none", data="fake", img_size=32, limit_train=48, limit_test=32,
        run=tmp_path_factory.mktemp("steps") / "r", show_progress=False,
        train=TrainConfig(schedule=("head", "gates"), batch_size=16)))
    return run


def _evaluation(acc: float, n: int = 100) -> Evaluation:
    correct = torch.arange(n) < round(acc * n)  # (n,) the first acc*n images right
    return Evaluation(Accuracy.of(int(correct.sum()), n), correct)


@pytest.mark.parametrize("pruned_val, too_deep", [(0.60, True), (0.88, False)])
def test_a_cut_that_loses_validation_is_flagged_printed_and_recorded(gated_run, monkeypatch, capsys, pruned_val,
                                                                     too_deep):
    scores = iter([0.90, pruned_val])  # dense, then right after the cut (validation; test is not read here)
    monkeypatch.setattr(stage, "_score", lambda *args: Scores(_evaluation(next(scores)), _evaluation(0.5)))
    code, out, err = run_cli(["prune", "--run", str(gated_run.path), "--keep", "0.75", "--fade-steps", "3",
                              "--score-images", "16", "--quiet"], capsys)
    assert code == 0, err
    assert "fade: 3 steps (as asked; one epoch is 6)" in out
    assert ("the cut may be too deep" in out) == too_deep
    if too_deep:
        line = next(x for x in out.splitlines() if "too deep" in x)
        assert "30.0 points" in line and "--fade-steps 6" in line and "--keep" in line and "McNemar p=" in line
        assert "--deep-cut-factor" not in line  # steps given: no default budget to grow
    stored = json.loads((gated_run.path / "run.json").read_text())["stages"]["prune"]
    assert stored["too_deep"] is too_deep and stored["fade_steps"] == 3
    depth = stored["metrics"]["depth"]
    assert (depth["too_deep"], depth["val_drop_points"], depth["threshold_points"]) == \
        (too_deep, round(100 * (0.90 - pruned_val), 2), TOO_DEEP_POINTS)
    assert stored["metrics"]["fade"]["steps"] == 3 and stored["metrics"]["fade"]["rule"] == "steps"


@pytest.mark.parametrize("flags, named", [(["--fade-steps", "0"], "--fade-steps"),
                                          (["--recover-steps", "-2"], "--recover-steps"),
                                          (["--fade-steps", "5", "--fade-epochs", "1"], "--fade-epochs"),
                                          (["--deep-cut-factor", "0.5"], "--deep-cut-factor")])
def test_bad_steps_exit_2_naming_the_flag_and_write_nothing(gated_run, capsys, flags, named):
    before = (gated_run.path / "run.json").read_text()
    code, out, err = run_cli(["prune", "--run", str(gated_run.path), "--quiet", *flags], capsys)
    assert code == 2 and named in err and len(err.strip().splitlines()) == 1
    assert (gated_run.path / "run.json").read_text() == before
