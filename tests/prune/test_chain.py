"""The chain is composed once: the run-directory stage and the Python API make the same model."""

import pytest
import torch

import fa_compress as fc
from fa_compress.data import dataset_of_run
from fa_compress.errors import ConfigError
from fa_compress.models.saved import load_run_model
from fa_compress.pruning.budget import Budget
from fa_compress.pruning.chain import ChainOptions
from fa_compress.pruning.pruner import PruneSettings
from fa_compress.pruning.stage import PruneOptions, prune_run
from tests.conftest import tiny_finetuned_run


@pytest.fixture(scope="module")
def gated_run(tmp_path_factory):
    return tiny_finetuned_run(tmp_path_factory.mktemp("chain") / "r", limit_train=96, limit_test=48,
                              schedule=("head", "gates"))


@pytest.mark.parametrize("importance", ["gate", "l1"])
def test_stage_and_api_make_the_same_model(gated_run, importance):
    """Same run, seed and settings: `facompress prune`'s stage and `fc.prune` give identical weights
    (the gate ranking through plan, fade and exact cut; l1 through the cut and a recovery)."""
    _, result, _ = prune_run(PruneOptions(settings=PruneSettings(importance=importance, round_to=1),
                                          budget=Budget(target_macs=0.6), run=gated_run.path,
                                          output=f"chain-{importance}", show_progress=False, device="cpu"))
    staged = load_run_model(gated_run, f"chain-{importance}")[0]
    dense, meta = load_run_model(gated_run, "finetuned")
    bundle = dataset_of_run(gated_run)
    seed = gated_run.stage("finetune")["options"]["train"]["seed"]
    api = fc.prune(dense, torch.zeros(1, 3, 32, 32), target_macs=0.6, importance=importance, round_to=1,
                   train_data=bundle.train, val_data=bundle.val, seed=seed, device="cpu")
    assert result.fade is not None if importance == "gate" else result.fade is None
    ours, theirs = staged.state_dict(), api.state_dict()
    assert sorted(ours) == sorted(theirs)
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key


def test_options_resolve_by_ranking():
    # None: runs with the default budget (one epoch, at least steps.FLOOR_STEPS); 0: does not run
    assert (ChainOptions().resolved("gate").fade_epochs, ChainOptions().resolved("gate").recover_epochs) == (None, 0)
    assert (ChainOptions().resolved("taylor").fade_epochs, ChainOptions().resolved("taylor").recover_epochs) == (0, None)
    with pytest.raises(ConfigError, match="fade_epochs"):
        ChainOptions(fade_epochs=1).resolved("l1")


@pytest.mark.parametrize("field, value", [("recover_lr", 0.0), ("recover_batch_size", 0), ("fade_epochs", -1),
                                          ("recover_phase", "everything"), ("fade_until", 1.5)])
def test_library_errors_name_the_parameter_not_a_flag(field, value):
    with pytest.raises(ConfigError) as caught:
        ChainOptions(**{field: value})
    assert field in str(caught.value) and "--" not in str(caught.value)
