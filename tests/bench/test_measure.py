import pytest
import torch
from torch import nn

from fa_compress.bench.measure import accuracy, count_macs, count_params, size_mb
from fa_compress.errors import ConfigError

IMG = 16  # the tiny fixtures' image size (conftest.IMG)


def _one_hot_predictor(classes: int):
    """A fake model ranking class p first and p + 1 second, where p is the value of pixel (0, 0, 0)."""
    def predict(images: torch.Tensor) -> torch.Tensor:
        top = images[:, 0, 0, 0].long()  # (N,)
        logits = -0.01 * torch.arange(classes).float().repeat(images.shape[0], 1)  # (N, classes), no ties
        logits[torch.arange(images.shape[0]), top] = 10.0
        logits[torch.arange(images.shape[0]), (top + 1) % classes] = 5.0  # second choice
        return logits
    return predict


def _batches(predicted: list[int], labels: list[int], batch: int = 2):
    images = torch.zeros(len(labels), 3, 2, 2)
    images[:, 0, 0, 0] = torch.tensor(predicted, dtype=torch.float)
    y = torch.tensor(labels)
    return [(images[i:i + batch], y[i:i + batch]) for i in range(0, len(labels), batch)]


def test_top1_and_top5_on_known_predictions():
    # 10 classes: 2 of 4 right at top-1; a third label is the second choice (inside top-5)
    acc = accuracy(_one_hot_predictor(10), _batches([0, 1, 2, 3], [0, 1, 3, 7]))
    assert (acc.top1_pct, acc.top5_pct, acc.n_images) == (50.0, 75.0, 4)


def test_top5_is_none_with_five_classes_or_fewer():
    acc = accuracy(_one_hot_predictor(5), _batches([0, 1, 2], [0, 2, 2]))
    assert acc.top5_pct is None
    assert acc.top1_pct == pytest.approx(200 / 3, abs=1e-3)


def test_limit_counts_images_not_batches():
    acc = accuracy(_one_hot_predictor(10), _batches([0, 1, 2, 3, 4], [0, 9, 2, 9, 4], batch=2), limit=3)
    assert acc.n_images == 3
    assert acc.top1_pct == pytest.approx(200 / 3, abs=1e-3)


def test_no_images_is_a_user_error():
    with pytest.raises(ConfigError, match="no images"):
        accuracy(_one_hot_predictor(10), [])


def test_macs_count_convolutions_and_linear_layers(tiny_model):
    conv = 8 * 3 * 3 * 3 * IMG * IMG  # C_out * C_in * kH * kW * H_out * W_out
    assert count_macs(tiny_model, IMG) == conv + 8 * 10
    assert count_params(tiny_model) == (8 * 27 + 8) + 2 * 8 + (8 * 10 + 10)


def test_macs_see_conv2d_subclasses():
    class SamePadConv(nn.Conv2d):
        def forward(self, x):
            return super().forward(nn.functional.pad(x, (1, 1, 1, 1)))

    model = nn.Sequential(SamePadConv(3, 4, 3))
    assert count_macs(model, 8) == 4 * 3 * 9 * 8 * 8


def test_size_counts_the_external_data_sidecar(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"x" * 1000)
    assert size_mb(tmp_path / "m.onnx") == pytest.approx(0.001)
    (tmp_path / "m.onnx.data").write_bytes(b"x" * 2_000_000)
    assert size_mb(tmp_path / "m.onnx") == pytest.approx(2.001)


def test_top1_breaks_ties_toward_the_first_class_as_export_does():
    # quantized logits tie often: top-1 must be numpy's argmax (the first tied class), the rule export's
    # INT8 accuracy uses, or the report and run.json disagree on the same file
    gen = torch.Generator().manual_seed(0)
    logits = torch.randint(0, 3, (400, 10), generator=gen).float()  # (N, classes), many ties at the top
    labels = torch.randint(0, 10, (400,), generator=gen)
    first = logits.numpy().argmax(1)
    acc = accuracy(lambda images: logits[images[:, 0, 0, 0].long()],
                   [(torch.arange(400).float().view(-1, 1, 1, 1).expand(-1, 3, 2, 2), labels)])
    assert acc.correct == tuple(bool(c) for c in first == labels.numpy())
