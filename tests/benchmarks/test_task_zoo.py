"""The task zoo (benchmarks/_tasks.py): its make-up, its splits, `python -m benchmarks tasks`, and the pareto
suite run over two zoo tasks (`benchmarks/configs/pareto-zoo-smoke.toml`)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks import _tasks
from benchmarks._tasks import CHOOSE, HELD_OUT, TASKS, ZOO, Task, load_task, resolve, task_indices
from fa_compress.data import load_dataset
from fa_compress.data.fashion_mnist import CLASSES
from fa_compress.errors import ConfigError
from fa_compress.models import get_spec, registered_names

ROOT = Path(__file__).resolve().parents[2]
TEST_PER_CLASS = 1000  # Fashion-MNIST's test split: 1,000 images of each class


def test_zoo_has_enough_tasks_and_at_most_half_choose():
    assert len(ZOO) >= 8 and len(TASKS) == len(ZOO)
    roles = [t.role for t in ZOO]
    assert set(roles) <= {CHOOSE, HELD_OUT}
    assert 1 <= roles.count(CHOOSE) <= len(ZOO) // 2
    assert {"default", "tops4", "shoes3"} <= {t.name for t in ZOO if t.role == CHOOSE}


def test_zoo_varies_classes_images_size_and_model():
    assert {len(t.classes) for t in ZOO} >= {2, 3, 4, 10}
    assert min(t.train_per_class for t in ZOO) <= 30 and max(t.train_per_class for t in ZOO) >= 1000
    assert min(t.img_size for t in ZOO) == 32 and max(t.img_size for t in ZOO) == 128
    assert {t.model for t in ZOO} == {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"}
    assert {t.model for t in ZOO} <= set(registered_names())
    assert any(t.classes == (0, 6) for t in ZOO) and any(t.classes == (0, 2, 4, 6) for t in ZOO)


@pytest.mark.parametrize("task", ZOO, ids=lambda t: t.name)
def test_splits_have_the_declared_counts_and_never_overlap(task):
    ix = task_indices(task, seed=0)
    k = len(task.classes)
    assert torch.equal(ix.train_labels.bincount(minlength=k), torch.full((k,), task.train_per_class))
    assert torch.equal(ix.test_labels.bincount(minlength=k), torch.full((k,), TEST_PER_CLASS))
    val = ix.val_labels.bincount(minlength=k)
    assert int(val.min()) >= 1 and int(val.max() - val.min()) <= 1  # stratified: every class alike
    assert ix.val.numel() < ix.train.numel()
    assert set(ix.train.tolist()).isdisjoint(ix.val.tolist())  # both index the 60,000 training images
    for split in (ix.train, ix.val, ix.test):
        assert split.unique().numel() == split.numel()
        assert torch.equal(split, split.sort().values)
    assert int(ix.train.max()) < 60000 and int(ix.val.max()) < 60000 and int(ix.test.max()) < 10000
    fm_train, fm_test = _tasks._labels()
    classes = torch.tensor(task.classes)
    assert torch.equal(classes[ix.train_labels], fm_train[ix.train])  # relabelled in the declared order
    assert torch.equal(classes[ix.val_labels], fm_train[ix.val])
    assert torch.equal(classes[ix.test_labels], fm_test[ix.test])


def test_splits_are_seeded():
    task = TASKS["shirt2"]
    a, b, c = task_indices(task, seed=0), task_indices(task, seed=0), task_indices(task, seed=1)
    assert torch.equal(a.train, b.train) and torch.equal(a.val, b.val)
    assert not torch.equal(a.train, c.train)
    assert torch.equal(a.test, c.test)  # the whole test split of the classes, whatever the seed


def test_default_task_is_the_clis_data():
    norm = get_spec("efficientnet_lite0").normalization
    ours = load_task(TASKS["default"], norm, seed=0)
    lib = load_dataset("fashion-mnist", img_size=64, normalization=norm, limit_train=6000, seed=0)
    for split in ("train", "val", "test"):
        a, b = getattr(ours, split), getattr(lib, split)
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert ours.classes == list(CLASSES)


def test_load_task_resizes_and_caps_the_test_split():
    task = TASKS["mixed3-few"]
    data = load_task(task, get_spec(task.model).normalization, seed=0, test_per_class=25)
    x, y = data.train[0]
    assert tuple(x.shape) == (3, task.img_size, task.img_size) and 0 <= y < 3
    assert len(data.train) == 3 * task.train_per_class and len(data.test) == 75
    assert torch.equal(data.test.labels.bincount(), torch.tensor([25, 25, 25]))
    assert data.classes == ["Trouser", "Sneaker", "Bag"]


def test_resolve_groups_and_unknown_names():
    assert [t.name for t in resolve("tops4,shoes3")] == ["tops4", "shoes3"]
    assert resolve("zoo") == list(ZOO)
    assert {t.role for t in resolve("held_out")} == {HELD_OUT}
    with pytest.raises(ConfigError, match="not in the zoo; known: default"):
        resolve("tops5")


def test_task_refuses_bad_declarations():
    with pytest.raises(ConfigError, match="role must be one of"):
        Task("x", (0, 6), 30, 32, role="tune")
    with pytest.raises(ConfigError, match="classes must be 2 to 10"):
        Task("x", (0,), 30, 32)


def test_tasks_command_prints_the_zoo():
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "tasks"], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("| ") and not ln.startswith("| task ")]
    assert len(lines) == len(ZOO)
    row = next(ln for ln in lines if ln.startswith("| shirt2 |")).split(" | ")
    assert row[2] == "60 (30/class)" and row[4] == "2000" and row[5] == "32" and row[7] == HELD_OUT
    assert "Defaults chosen on: default, tops4, shoes3" in proc.stdout


def test_pareto_suite_refuses_unknown_tasks():
    proc = subprocess.run([sys.executable, "-m", "benchmarks.prune_pareto", "--tasks", "tops5", "--seeds", "0"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2 and "task 'tops5' is not in the zoo" in proc.stderr


@pytest.mark.slow
def test_pareto_smoke_over_two_zoo_tasks(tmp_path):
    config = ROOT / "benchmarks" / "configs" / "pareto-zoo-smoke.toml"
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "pareto", "--config", str(config),
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [result] = tmp_path.glob("pareto-zoo-smoke.*.json")
    doc = json.loads(result.read_text())
    assert doc["experiment"] == "pareto-zoo-smoke" and doc["suite"] == "pareto"
    rows = doc["result"]["rows"]
    assert sorted((r["task"], r["method"]) for r in rows) == [
        ("mixed3-few", "gate"), ("mixed3-few", "taylor"), ("shirt2", "gate"), ("shirt2", "taylor")]
    for r in rows:
        task = TASKS[r["task"]]
        assert (r["target_macs"], r["seed"], r["role"]) == (0.5, 0, HELD_OUT)
        assert (r["model"], r["img_size"]) == (task.model, task.img_size)
        assert r["train_images"] == len(task.classes) * task.train_per_class
        assert r["test_images"] == 40 * len(task.classes) == r["final_test"]["n"]
        assert abs(r["macs_fraction"] - 0.5) < 0.05 and 0 <= r["final_test"]["value"] <= 1
        assert r["train_steps"] == 20  # the same training after fine-tuning for every method: a fade or a recovery
        assert len(r["finetune"]["phase_steps"]) == 4 and max(r["finetune"]["phase_steps"]) < 100  # finetune-steps 0
    assert doc["result"]["chose_defaults"] == ["default", "tops4", "shoes3"]
    assert doc["result"]["jobs"] == 2
    md = (tmp_path / f"pareto-zoo-smoke.{doc['cpu_kind']}.md").read_text()
    assert "## shirt2 (held out)" in md and "## mixed3-few (held out)" in md
    assert "chosen on `default`, `tops4`, `shoes3`" in md
