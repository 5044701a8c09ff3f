"""Top-1 of every INT8 form against FP32 on this CPU, on the real-image classifier of the INT8 tests.

    .venv/bin/python -m benchmarks.int8_form_accuracy     # or: python -m benchmarks int8-accuracy

Writes benchmarks/results/int8_form_accuracy.{json,md} (rows: form, top-1 %, drop vs FP32) and prints the table.

The classifier is `tests/export/conftest.py`'s `fitted_cnn` (random conv filters, exact BatchNorm
statistics and a ridge-regression head on 1,000 Fashion-MNIST training images at 32 px); each form is
calibrated on 128 training images and scored on 300 test images through onnxruntime's CPU provider.
It shows what the CPU does to each form: without VNNI, onnxruntime's int8 x int8 and full-range
uint8 x int8 kernels saturate, and `ort_cpu_form` picks 7-bit weights ("qdq-u8-rr") there.
"""

from __future__ import annotations

import argparse
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

from tests.export.conftest import fitted_cnn, metadata  # run from the repository root (python -m)

from ._common import command_line, env_record, load_average, md_table, write_results


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--limit-train", type=int, default=1000, help="training images the classifier is fitted on")
    p.add_argument("--limit-test", type=int, default=300, help="test images scored")
    p.add_argument("--calib", type=int, default=128, help="calibration images per form")
    p.add_argument("--name", default="int8_form_accuracy", help="results/<NAME>.{json,md}")
    args = p.parse_args(argv)
    load_before = load_average()
    data = load_dataset("fashion-mnist", img_size=32, normalization=Normalization((0.5,) * 3, (0.5,) * 3),
                        limit_train=args.limit_train, limit_test=args.limit_test, seed=0)
    model = fitted_cnn.__wrapped__(data)  # the fixture's function, called directly
    x = torch.stack([image for image, _ in data.test]).numpy()  # (N, 3, 32, 32)
    y = np.array([label for _, label in data.test])
    calib = torch.stack([data.train[i][0] for i in range(min(args.calib, len(data.train)))])  # (C, 3, 32, 32)
    top1 = lambda path: 100 * float(np.mean(run_batches(open_session(path), x, 64).argmax(1) == y))  # noqa: E731
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(model, Path(tmp) / "cnn.onnx", img_size=32, metadata=metadata())
        vnni = [f for f in VNNI_FLAGS if f in cpu_flags()]
        base = top1(fp32.path)
        rows.append({"form": "fp32", "top1": base, "drop": 0.0})
        for name, form in INT8_FORMS.items():
            acc = top1(quantize_int8(fp32.path, Path(tmp) / f"{name}.onnx", calib, form=form).path)
            rows.append({"form": name, "top1": acc, "drop": base - acc})
    data_out = {"command": command_line(), "environment": env_record(), "cpu_flags": list(cpu_flags()),
                "vnni_flags": vnni, "export_int8_form": ort_cpu_form().name, "n_test": int(len(y)),
                "load_average": {"before": load_before, "after": load_average()}, "rows": rows}
    md = (f"# Top-1 of each INT8 form against FP32 (n={len(y)})\n\nCPU VNNI flags: {vnni or 'none'}; "
          f"the form `export --int8` writes here: {ort_cpu_form().name}\n\n"
          + md_table(["form", f"top-1 % (n={len(y)})", "drop vs FP32"],
                     [[r["form"], f"{r['top1']:.1f}", "" if r["form"] == "fp32" else f"{r['drop']:.1f}"] for r in rows]))
    write_results(args.name, data_out, md)


if __name__ == "__main__":
    main()
