"""load_dataset dispatch, balanced subsets and make_loader."""

import pytest
import torch

from fa_compress.data import dataset_names, is_in_memory, load_dataset, make_loader
from fa_compress.data._subset import balanced_subset
from fa_compress.errors import ConfigError, NotFoundError
from fa_compress.models import IMAGENET_NORMALIZATION


@pytest.fixture(scope="module")
def fake():
    return load_dataset("fake:4", img_size=8, normalization=IMAGENET_NORMALIZATION, limit_train=40, limit_test=20)


def test_unknown_dataset_lists_known_specs():
    with pytest.raises(NotFoundError) as info:
        load_dataset("fashion-mnst", normalization=IMAGENET_NORMALIZATION)
    message = str(info.value)
    assert "unknown dataset 'fashion-mnst'" in message
    for name in dataset_names():
        assert name in message
    assert "Did you mean fashion-mnist" in message


@pytest.mark.parametrize("img_size", [0, 4, 5000, True])
def test_bad_image_size_is_config_error(img_size):
    with pytest.raises(ConfigError, match="img_size"):
        load_dataset("fake", img_size=img_size, normalization=IMAGENET_NORMALIZATION)


def test_balanced_subset_interleaves_classes_and_is_seeded():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 5)
    keep = balanced_subset(labels, 15, seed=0)
    assert keep.tolist() == sorted(keep.tolist()) and len(set(keep.tolist())) == 15
    assert torch.bincount(labels[keep]).tolist() == [5, 5, 5]
    keep = balanced_subset(labels, 30, seed=0)
    assert torch.bincount(labels[keep]).tolist() == [13, 12, 5]  # the small class gives all it has
    assert torch.equal(balanced_subset(labels, 20, seed=1), balanced_subset(labels, 20, seed=1))
    assert not torch.equal(balanced_subset(labels, 20, seed=1), balanced_subset(labels, 20, seed=2))
    assert balanced_subset(labels, None, seed=0) is None and balanced_subset(labels, 85, seed=0) is None
    with pytest.raises(ConfigError, match="positive integer"):
        balanced_subset(labels, 0, seed=0)


def test_in_memory_loader_uses_no_workers_and_batches(fake):
    loader = make_loader(fake.train, 16, shuffle=True, seed=0)
    assert loader.num_workers == 0 and loader.pin_memory is False
    batches = list(loader)
    assert [x.shape for x, _ in batches] == [(16, 3, 8, 8), (16, 3, 8, 8), (8, 3, 8, 8)]
    assert all(y.dtype == torch.int64 for _, y in batches)
    assert len(make_loader(fake.train, 16, shuffle=True, drop_last=True)) == 2
    assert make_loader(fake.train, 16, shuffle=False, device="cuda:0").pin_memory is True


def test_batched_and_single_item_access_agree_without_flip(fake):
    batch, labels = next(iter(make_loader(fake.test, 20, shuffle=False)))
    for i in (0, 7, 19):
        x, y = fake.test[i]
        torch.testing.assert_close(batch[i], x)
        assert labels[i].item() == y


def test_shuffle_order_follows_the_seed(fake):
    def first_labels(seed):
        return next(iter(make_loader(fake.train, 40, shuffle=True, seed=seed)))[1].tolist()

    assert first_labels(0) == first_labels(0)
    assert first_labels(0) != first_labels(1)
    assert sorted(first_labels(0)) == sorted(fake.train.labels.tolist())


def test_file_datasets_get_persistent_workers(tmp_path, fake):
    from fa_compress.data.files import ImageFileDataset

    files = ImageFileDataset([(tmp_path / "x.png", 0)], transform=lambda image: image)
    loader = make_loader(files, 4, shuffle=False)  # not iterated: no worker is started
    assert loader.num_workers >= 1 and loader.persistent_workers is True
    assert is_in_memory(torch.utils.data.Subset(fake.train, [0, 1])) is True
    assert is_in_memory(files) is False


def test_loader_argument_errors(fake):
    with pytest.raises(ConfigError, match="batch_size"):
        make_loader(fake.train, 0, shuffle=False)
    with pytest.raises(ConfigError, match="sampler"):
        make_loader(fake.train, 4, shuffle=True, sampler=torch.utils.data.SequentialSampler(fake.train))
    with pytest.raises(ConfigError, match="workers"):
        make_loader(fake.train, 4, shuffle=False, workers=-1)
