"""The synthetic `fake` dataset: sizes, determinism, learnability."""

import pytest
import torch
from torch import nn

from fa_compress.data import load_dataset, make_loader
from fa_compress.errors import ConfigError
from fa_compress.models import Normalization

NORM = Normalization((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def test_default_sizes_classes_and_items():
    bundle = load_dataset("fake", img_size=32, normalization=NORM)
    assert (len(bundle.train), len(bundle.test)) == (512, 256)
    assert bundle.classes == [f"class_{i}" for i in range(10)]
    assert bundle.name == "fake:10"
    x, y = bundle.test[3]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert -1.0 - 1e-5 <= float(x.min()) and float(x.max()) <= 1.0 + 1e-5  # [0, 1] pixels, mean = std = 0.5
    assert torch.bincount(bundle.train.labels).tolist() == [52] * 2 + [51] * 8


def test_class_count_and_limits_set_the_sizes():
    bundle = load_dataset("fake:3", img_size=16, normalization=NORM, limit_train=30, limit_test=9)
    assert len(bundle.classes) == 3
    assert (len(bundle.train), len(bundle.test)) == (30, 9)
    assert set(bundle.test.labels.tolist()) == {0, 1, 2}


def test_same_seed_same_images_other_seed_other_images():
    a = load_dataset("fake", img_size=16, normalization=NORM, seed=5)
    b = load_dataset("fake", img_size=16, normalization=NORM, seed=5)
    c = load_dataset("fake", img_size=16, normalization=NORM, seed=6)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.labels, b.test.labels)
    assert not torch.equal(a.train.images, c.train.images)


@pytest.mark.parametrize("spec", ["fake:1", "fake:x", "fake:5000"])
def test_bad_class_counts_are_config_errors(spec):
    with pytest.raises(ConfigError, match="fake:N"):
        load_dataset(spec, normalization=NORM)


@pytest.fixture
def one_thread():
    """Tiny ops run ~50x slower with 2 threads when other processes share the 2 cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_tiny_cnn_learns_it_in_a_few_dozen_steps(one_thread):
    torch.manual_seed(0)
    bundle = load_dataset("fake", img_size=16, normalization=NORM, seed=0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(3):  # 3 x 16 = 48 steps
        for x, y in make_loader(bundle.train, 32, shuffle=True, seed=epoch):
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.inference_mode():
        x, y = next(iter(make_loader(bundle.test, len(bundle.test), shuffle=False)))
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy > 0.5  # chance is 0.1; measured 0.72
