"""What a benchmark measures besides latency: accuracy, parameters, MACs, size on disk.

MACs come from `fa_compress.models.complexity` (`torch.utils.flop_counter.FlopCounterMode`,
MACs = FLOPs / 2), which sees every convolution, subclasses of nn.Conv2d included; torch-pruning's
counter under-counts EfficientNet-Lite0's same-padding convs about 18-fold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..accuracy import Accuracy
from ..errors import ConfigError
from ..models.complexity import count_macs, count_params

__all__ = ["Evaluation", "accuracy", "count_macs", "count_params", "size_mb"]


@dataclass(frozen=True)
class Evaluation:
    """Top-1 (and top-5 where there are more than 5 classes) on `n_images` images, and which images
    top-1 got right (in the order seen), so two models on the same images can be compared pairwise."""

    top1_pct: float
    top5_pct: float | None
    n_images: int
    correct: tuple[bool, ...] = ()

    @property
    def top1(self) -> Accuracy:
        """Top-1 with its 95% Wilson interval."""
        return Accuracy.of(sum(self.correct), self.n_images)


def size_mb(path: Path) -> float:
    """Bytes on disk / 1e6; an ONNX file's external-data sidecar (`<name>.data`) is counted too."""
    path = Path(path)
    total = path.stat().st_size
    sidecar = path.with_name(path.name + ".data")
    if sidecar.is_file():
        total += sidecar.stat().st_size
    return round(total / 1e6, 6)


def accuracy(predict: Callable[[torch.Tensor], torch.Tensor],
             batches: Iterable[tuple[torch.Tensor, torch.Tensor]], limit: int | None = None) -> Evaluation:
    """Top-1/top-5 of `predict` (images -> logits) over (images, labels) batches, first `limit` images."""
    correct1: list[bool] = []
    correct5 = seen = 0
    num_classes = 0
    with torch.inference_mode():
        for images, labels in batches:
            if limit is not None and seen >= limit:
                break
            if limit is not None:
                images, labels = images[: limit - seen], labels[: limit - seen]
            logits = predict(images)  # (N, classes)
            num_classes = logits.shape[1]
            labels = labels.to(logits.device).view(-1, 1)  # (N,) -> (N, 1)
            topk = logits.topk(min(5, num_classes), dim=1).indices  # (N, k)
            # top-1 from argmax (the first of tied classes), as training and export score: topk orders ties
            # its own way, and quantized logits tie often
            correct1 += (logits.argmax(1, keepdim=True) == labels).view(-1).tolist()  # (N, 1) -> (N,)
            correct5 += int((topk == labels).any(dim=1).sum())
            seen += labels.shape[0]
    if seen == 0:
        raise ConfigError("no images to measure accuracy on; the test split is empty or eval_limit is 0")
    top5 = round(100.0 * correct5 / seen, 4) if num_classes > 5 else None
    return Evaluation(top1_pct=round(100.0 * sum(correct1) / seen, 4), top5_pct=top5, n_images=seen,
                      correct=tuple(bool(c) for c in correct1))
