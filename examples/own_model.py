"""Your own CNN through facompress in a short script: gates, fine-tuning, pruning, ONNX.

    .venv/bin/python examples/own_model.py        # ~1 min on 2 CPU cores

The model and the data are defined here: a small BatchNorm'd CNN and a synthetic 4-class set
(each class its own colour, plus noise), so it runs anywhere, offline, in about a minute.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import TensorDataset

import fa_compress as fc

IMG = 32  # px
COLOURS = [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (0.5, 0.5, 0.5)]  # red, green, blue, grey


class SmallNet(nn.Module):
    """conv-BN-ReLU x3, global pooling, a linear classifier."""

    def __init__(self, classes: int = 4, width: int = 32) -> None:
        super().__init__()

        def block(cin: int, cout: int, stride: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

        self.features = nn.Sequential(block(3, width, 1), block(width, 2 * width, 2), block(2 * width, 4 * width, 2))
        self.classifier = nn.Linear(4 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, 3, H, W) -> (N, 4w, H/4, W/4)
        return self.classifier(x.mean((2, 3)))  # (N, 4w) -> (N, classes)


def colour_classes(n: int, classes: int = 4, seed: int = 0) -> TensorDataset:
    """n images of shape (3, IMG, IMG): class k has its own mean colour; pixel noise twice the colour gap."""
    colours = torch.tensor(COLOURS[:classes]).view(classes, 3, 1, 1)  # (classes, 3, 1, 1)
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    images = colours[labels] + 0.5 * torch.randn(n, 3, IMG, IMG, generator=gen)  # (n, 3, H, W)
    return TensorDataset(images, labels)


def main() -> None:
    torch.manual_seed(0)
    t0 = time.perf_counter()
    train, val = colour_classes(512, seed=0), colour_classes(256, seed=1)
    model = SmallNet()
    example = torch.zeros(1, 3, IMG, IMG)  # (1, 3, H, W)

    fc.insert_gates(model)
    # A random-init network's features are weak, so its classifier gets a higher rate than the
    # default, which suits pretrained backbones (lr_head 3e-3: this set stayed at chance).
    result = fc.finetune(model, train, val, schedule="head,gates,gates", batch_size=32, lr_head=3e-2)
    print(f"fine-tuned: val accuracy {result.best_val_acc:.1%} after {len(result.phases)} phases")

    dense = fc.model_size(model, IMG)
    pruned = fc.prune(model, example, target_macs=0.5, train_data=train)
    small = fc.model_size(pruned, IMG)
    print(f"pruned to half the MACs: params {dense.params:,} -> {small.params:,}, "
          f"MACs {dense.macs / 1e6:.2f} M -> {small.macs / 1e6:.2f} M ({small.macs / dense.macs:.0%})")
    print(f"val accuracy: gated {fc.evaluate(model, val):.1%}, pruned {fc.evaluate(pruned, val):.1%}")

    fc.finetune(pruned, train, val, schedule="all", batch_size=32)  # a short recovery: one phase, 100 steps
    print(f"val accuracy after a one-phase recovery: {fc.evaluate(pruned, val):.1%}")

    with tempfile.TemporaryDirectory() as tmp:
        saved = fc.save_pruned(pruned, Path(tmp) / "pruned.safetensors")
        again = fc.load_pruned(saved, SmallNet())  # rebuilt from the channel counts in the file
        probe = torch.randn(4, 3, IMG, IMG)  # (4, 3, H, W)
        with torch.no_grad():
            diff = float((again(probe) - pruned.eval()(probe)).abs().max())
        onnx = fc.export_onnx(pruned, Path(tmp) / "small.onnx", example_input=example,
                              classes=["red", "green", "blue", "grey"])
        print(f"saved and reloaded: max |logit difference| {diff:.1e}; ONNX {onnx.size_mb:.2f} MB, "
              f"{onnx.nodes_after} nodes, checked against PyTorch by onnxruntime")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
