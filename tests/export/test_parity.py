"""The parity gate: passes a faithful export on real images, refuses a wrong one with its figures."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from fa_compress.errors import ConfigError, MissingDependencyError, ParityError
from fa_compress.export import FP32_TOLERANCE, check_parity, enforce, to_record
from fa_compress.export.parity import INT8_TOLERANCE, Tolerance, compare_logits


def test_float32_export_passes_on_real_images(exported, real_images):
    model, result = exported
    report = enforce(check_parity(model, result.path, real_images, batch_sizes=(1, 8)))
    assert report.passed and report.top1_agreement == 1.0
    assert report.max_rel_err <= FP32_TOLERANCE.max_rel_err and report.max_abs_err < 1e-3
    assert report.n_images == 16 and report.batch_sizes == (1, 8)
    assert to_record(report)["tolerance"] == {"max_rel_err": 1e-4, "min_top1_agreement": 1.0, "tie_margin": 0.0}
    assert report.near_ties == 0


def test_perturbed_model_is_refused_with_its_figures(exported, tmp_path):
    model, result = exported
    wrong = copy.deepcopy(model)
    with torch.no_grad():
        wrong.fc.weight.add_(torch.randn_like(wrong.fc.weight) * 0.05)  # the file no longer matches `wrong`
    images = torch.randn(8, 3, 32, 32)  # (N, 3, H, W)
    report = check_parity(wrong, result.path, images, batch_sizes=(1, 4))
    assert not report.passed and report.max_rel_err > 1e-3
    with pytest.raises(ParityError, match=r"max relative error .* top-1 agreement .* left in place"):
        enforce(report)
    assert result.path.exists()
    copy_path = tmp_path / "copy.onnx"
    copy_path.write_bytes(result.path.read_bytes())
    with pytest.raises(ParityError, match="not kept"):
        enforce(check_parity(wrong, copy_path, images, batch_sizes=(4,)), discard_file=True)
    assert not copy_path.exists()


def test_relative_error_is_against_the_largest_logit():
    ref = np.array([[10.0, -2.0], [1.0, 0.5]], dtype=np.float32)  # max |ref| = 10
    got = ref + np.array([[0.0, 0.5], [0.0, 0.0]], dtype=np.float32)  # max |diff| = 0.5
    report = compare_logits([ref], [got], path=Path("x.onnx"), batch_sizes=(2,),
                            tolerance=Tolerance(max_rel_err=0.06, min_top1_agreement=1.0))
    assert report.max_abs_err == pytest.approx(0.5) and report.max_rel_err == pytest.approx(0.05)
    assert report.top1_agreement == 1.0 and report.passed
    flipped = compare_logits([ref], [ref[:, ::-1].copy()], path=Path("x.onnx"), batch_sizes=(2,),
                             tolerance=Tolerance(max_rel_err=10.0, min_top1_agreement=1.0))
    assert flipped.top1_agreement == 0.0 and not flipped.passed


def test_bad_inputs_are_refused(exported):
    model, result = exported
    with pytest.raises(ConfigError, match="non-empty"):
        check_parity(model, result.path, torch.empty(0, 3, 32, 32))
    with pytest.raises(ConfigError, match="positive"):
        check_parity(model, result.path, torch.randn(2, 3, 32, 32), batch_sizes=(0,))
    with pytest.raises(MissingDependencyError, match="NoSuchExecutionProvider.*available here"):
        check_parity(model, result.path, torch.randn(2, 3, 32, 32), providers=["NoSuchExecutionProvider"])


def test_a_class_change_between_near_ties_is_not_held_against_an_int8_file():
    # 10 images; the reference scores classes 0 and 1 within 2% of its largest logit (10) on images 0-2,
    # and decisively (class 0 by 8) on the rest. The candidate swaps the top class on images 0-2 only.
    ref = np.tile(np.array([[10.0, 9.8, -5.0]], dtype=np.float32), (10, 1))  # (10, 3)
    ref[3:, 1] = 2.0
    got = ref.copy()
    got[:3, 1] = 10.5
    strict = compare_logits([ref], [got], path=Path("x.onnx"), batch_sizes=(1,),
                            tolerance=Tolerance(max_rel_err=1.0, min_top1_agreement=0.8))
    assert strict.top1_agreement == pytest.approx(0.7) and strict.near_ties == 0 and not strict.passed
    tied = compare_logits([ref], [got], path=Path("x.onnx"), batch_sizes=(1,), tolerance=INT8_TOLERANCE)
    assert tied.top1_agreement == pytest.approx(0.7) and tied.near_ties == 3 and tied.passed
    decisive = got.copy()
    decisive[3:6, 1] = 11.0  # three decisive images flipped too: 4 of 10 agree, 3 near-ties
    report = compare_logits([ref], [decisive], path=Path("x.onnx"), batch_sizes=(1,), tolerance=INT8_TOLERANCE)
    assert report.near_ties == 3 and not report.passed
    with pytest.raises(ParityError, match=r"top-1 agreement 40\.00% plus 3 change\(s\) between classes .* within 5%"):
        enforce(report)
