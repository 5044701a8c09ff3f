"""Recovery after pruning: each phase trains what it says, leaves no gate, and refuses unknown phases."""

import copy

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from fa_compress.errors import NotFoundError
from fa_compress.gates import has_gates, insert_gates
from fa_compress.models import get_head
from fa_compress.pruning.pruner import PruneSettings, prune_model
from fa_compress.pruning.recover import recover
from fa_compress.train import TrainConfig
from fa_compress.train.distributed import Context
from fa_compress.train.progress import phase_bar
from tests.conftest import random_gates

CTX = Context(device=torch.device("cpu"))


@pytest.fixture
def pruned18(resnet18_10):
    model = random_gates(insert_gates(resnet18_10))
    prune_model(model, get_head(model, "resnet18"), PruneSettings(gate_score="value", keep=0.5), torch.zeros(1, 3, 32, 32))
    return model


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(64, 3, 32, 32, generator=g), torch.randint(0, 10, (64,), generator=g))


def _recover(model, images, phase, epochs=1):
    with phase_bar(False) as bar:
        return recover(model, get_head(model, "resnet18"), images, None, epochs, TrainConfig(batch_size=16), CTX,
                       bar, phase=phase)


def _changed(before: nn.Module, after: nn.Module) -> set[str]:
    a, b = before.state_dict(), after.state_dict()
    return {k for k in a if a[k].dtype.is_floating_point and not torch.equal(a[k], b[k])}


@pytest.mark.parametrize("phase", ["all", "gates", "bn"])
def test_recovery_trains_its_parts_and_leaves_a_plain_model(pruned18, images, phase):
    before = copy.deepcopy(pruned18)
    result = _recover(pruned18, images, phase)
    assert [p.phase for p in result.phases] == [phase]
    assert not has_gates(pruned18)
    assert set(pruned18.state_dict()) == set(before.state_dict())  # same architecture, same names
    changed = _changed(before, pruned18)
    conv_weights = {k for k in changed if k.endswith("conv1.weight") or k.endswith("conv2.weight")}
    bn_stats = {k for k in changed if k.endswith("running_mean")}
    assert "fc.weight" in changed
    if phase == "all":
        assert conv_weights and bn_stats
    else:  # convolutions and BatchNorm statistics are frozen; only scales/shifts (gates fold into them) move
        assert not conv_weights and not bn_stats
        assert any(k.endswith("bn1.weight") for k in changed)


def test_no_epochs_leaves_the_model_untouched(pruned18, images):
    before = copy.deepcopy(pruned18)
    assert _recover(pruned18, images, "all", epochs=0) is None
    assert not _changed(before, pruned18)


def test_unknown_phase_is_refused(pruned18, images):
    with pytest.raises(NotFoundError, match="head"):
        _recover(pruned18, images, "head")


@pytest.mark.parametrize("batch_size, expected", [(8, [8] * 8), (None, [16] * 4)])
def test_recovery_steps_in_its_own_batch_size(pruned18, images, batch_size, expected):
    seen = []
    pruned18.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[0]))
    with phase_bar(False) as bar:  # None: the fine-tuning's batch size (TrainConfig(batch_size=16) here)
        recover(pruned18, get_head(pruned18, "resnet18"), images, None, 1, TrainConfig(batch_size=16), CTX, bar,
                phase="gates", batch_size=batch_size)
    assert seen == expected  # 64 images: 8 steps of 8, or 4 of 16
