"""Repeatable pruning: the same `prune` on two copies of one fine-tuned run gives the same metrics and
the same weights (scoring batches, recovery and its dropout are all seeded from the run's seed)."""

import shutil

import pytest
import torch

from fa_compress.cli.app import main
from fa_compress.run import Run
from fa_compress.models.saved import load_run_model

TIMINGS = ("prune_s", "recover_s")


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    from fa_compress.train import TrainConfig
    from fa_compress.train.stage import FinetuneOptions, finetune_run

    run, _ = finetune_run(FinetuneOptions(  # mobilenet_v2: its classifier has dropout, which recovery samples
        model="mobilenet_v2", weights="none", data="fake:4", img_size=32, limit_train=48, limit_test=32,
        run=tmp_path_factory.mktemp("repeat") / "run", show_progress=False,
        train=TrainConfig(schedule=("head", "gates"), batch_size=16, seed=3)))
    return run.path


def _prune_copy(finetuned, path, *extra: str) -> tuple[dict, dict[str, torch.Tensor]]:
    shutil.copytree(finetuned, path)
    with pytest.raises(SystemExit) as exit_info:
        main(["prune", "--run", str(path), "--keep", "0.5", "--importance", "taylor", "--recover-phase", "all",
              "--quiet", *extra])  # `all`: dropout and BatchNorm statistics move too
    assert exit_info.value.code == 0
    run = Run.open(path)
    metrics = {k: v for k, v in run.stage("prune")["metrics"].items() if k not in TIMINGS}
    return metrics, load_run_model(run, "pruned")[0].state_dict()


def test_two_prunes_of_the_same_run_give_identical_metrics_and_weights_and_the_seed_matters(finetuned, tmp_path):
    first, weights_a = _prune_copy(finetuned, tmp_path / "a")
    torch.rand(1000)  # whatever the global generator did in between must not matter
    second, weights_b = _prune_copy(finetuned, tmp_path / "b")
    assert first == second
    assert first["seed"] == 3 and first["val_recovered"] is not None  # the run's seed; recovery ran
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert Run.open(tmp_path / "a").stage("prune")["seed"] == 3
    other, weights_c = _prune_copy(finetuned, tmp_path / "c", "--seed", "11")
    assert other["seed"] == 11 and Run.open(tmp_path / "c").stage("prune")["seed"] == 11
    assert any(not torch.equal(weights_a[k], weights_c[k]) for k in weights_a)
