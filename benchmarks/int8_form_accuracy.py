"""Top-1 of every INT8 form against FP32 on this CPU, on the real-image classifier of the INT8 tests.

    python benchmarks/int8_form_accuracy.py

The classifier is `tests/export/conftest.py`'s `fitted_cnn` (random conv filters, exact BatchNorm
statistics and a ridge-regression head on 1,000 Fashion-MNIST training images at 32 px); each form is
calibrated on 128 training images and scored on 300 test images through onnxruntime's CPU provider.
It shows what the CPU does to each form: without VNNI, onnxruntime's int8 x int8 and full-range
uint8 x int8 kernels saturate, and `ort_cpu_form` picks 7-bit weights ("qdq-u8-rr") there.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from fa_compress.machine import cpu_flags
from fa_compress.data import load_dataset
from fa_compress.export import INT8_FORMS, export_onnx, quantize_int8
from fa_compress.export._ort import open_session, run_batches
from fa_compress.export.quantize import VNNI_FLAGS, ort_cpu_form
from fa_compress.models import Normalization

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests/
from tests.export.conftest import fitted_cnn, metadata  # noqa: E402


def main() -> None:
    data = load_dataset("fashion-mnist", img_size=32, normalization=Normalization((0.5,) * 3, (0.5,) * 3),
                        limit_train=1000, limit_test=300, seed=0)
    model = fitted_cnn.__wrapped__(data)  # the fixture's function, called directly
    x = torch.stack([image for image, _ in data.test]).numpy()  # (300, 3, 32, 32)
    y = np.array([label for _, label in data.test])
    calib = torch.stack([data.train[i][0] for i in range(128)])  # (128, 3, 32, 32)
    top1 = lambda path: 100 * float(np.mean(run_batches(open_session(path), x, 64).argmax(1) == y))  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(model, Path(tmp) / "cnn.onnx", img_size=32, metadata=metadata())
        vnni = [f for f in VNNI_FLAGS if f in cpu_flags()]
        print(f"CPU VNNI flags: {vnni or 'none'}; the form export --int8 writes here: {ort_cpu_form().name}")
        base = top1(fp32.path)
        print(f"| form | top-1 % (n={len(y)}) | drop vs FP32 |\n|---|---:|---:|\n| fp32 | {base:.1f} | |")
        for name, form in INT8_FORMS.items():
            acc = top1(quantize_int8(fp32.path, Path(tmp) / f"{name}.onnx", calib, form=form).path)
            print(f"| {name} | {acc:.1f} | {base - acc:.1f} |")


if __name__ == "__main__":
    main()
