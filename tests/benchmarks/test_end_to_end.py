"""benchmarks/end_to_end.py: its table from a result, and the targets it refuses before any work."""

import sys

import pytest

from benchmarks import end_to_end


def _ratio(median, low, high, noisy=False):
    return {"median": median, "low": low, "high": high, "noisy": noisy, "rounds": 90, "sessions": 5, "ms": 1.0}


def test_the_table_gives_each_target_its_accuracy_and_both_batches():
    doc = {"command": "python -m benchmarks end-to-end", "finetune": "facompress finetune", "bench_args": "",
           "load_before": [0.1, 0.1, 0.1], "load_after": [0.2, 0.2, 0.2],
           "rows": [{"target_macs": 0.5, "macs_fraction": 0.498, "size_mb": {"dense": 13.49, "int8": 1.25},
                     "top1": {"dense": 86.55, "int8": 86.15, "n": 2000, "int8_low": 84.57, "int8_high": 87.59},
                     "vs_dense": {"reference": "finetuned", "points": -0.40, "p_value": 0.56, "within_noise": True},
                     "ratio": {"1": _ratio(0.36, 0.34, 0.38), "8": _ratio(0.25, 0.20, 0.31, noisy=True)},
                     "chain_s": 201.4}]}
    table = end_to_end.render(doc)
    [line] = [x for x in table.splitlines() if x.startswith("| 0.5 |")]
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[1] == "0.498"
    assert cells[2] == "1.25 (13.49)"
    assert cells[3:5] == ["86.55", "86.15 [84.57, 87.59]"]
    assert cells[5] == "-0.40 (p=0.56)"
    assert cells[6] == "0.360 [0.340, 0.380] (2.78× faster)"
    assert cells[7] == "0.250 [0.200, 0.310] (4.00× faster, noisy)"
    assert "latency × dense, batch 1 | latency × dense, batch 8" in table


@pytest.mark.parametrize("targets", ["1.5", "0", "x", ","])
def test_targets_outside_zero_one_exit_2_before_any_work(targets, monkeypatch, tmp_path, capsys):
    work = tmp_path / "work"
    monkeypatch.setattr(sys, "argv", ["end_to_end.py", "--targets", targets, "--work", str(work)])
    with pytest.raises(SystemExit) as exc:
        end_to_end.main()
    assert exc.value.code == 2
    assert "--targets must be numbers in (0, 1)" in capsys.readouterr().err
    assert not work.exists()
