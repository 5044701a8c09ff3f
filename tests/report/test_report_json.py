import json

import pytest

from fa_compress.bench.results import BenchReport
from fa_compress.errors import CheckpointError


def test_json_round_trip_is_exact(report):
    again = BenchReport.from_json(report.to_json())
    assert again == report
    assert again.to_json() == report.to_json()
    assert again.artifact("pruned").latency("torch-cpu", 1).median_ms == 5.0
    assert again.artifact("pruned").latency("torch-cpu", 8).ratio.noisy is True  # nested dataclasses come back
    assert again.artifact("pruned").latency("torch-cpu", 64) is None
    assert again.env.cpu_flags == ("avx2", "avx512_vnni") and again.env.load_avg_after == (2.0, 1.0, 0.5)


def test_json_is_plain_and_versioned(report):
    data = json.loads(report.to_json())
    assert data["format"] == 2
    assert data["artifacts"][0]["latencies"][0]["p90_ms"] == 12.5
    assert data["skipped"][0] == {"backend": "tensorrt", "reason": "tensorrt is not importable | here",
                                  "artifact": None}


def test_a_format_1_report_still_reads(report):
    data = json.loads(report.to_json())
    data["format"] = 1
    data["settings"]["runs"] = data["settings"].pop("rounds")  # format 1's name
    for key in ("cpu_flags", "load_avg_before", "load_avg_after", "torch_interop_threads", "thread_env"):
        del data["env"][key]
    old = BenchReport.from_dict(data)
    assert old.settings.rounds == 30 and old.env.cpu_flags == ()


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"format": 99}', '{"format": 1, "env": {}}'])
def test_bad_reports_are_checkpoint_errors(text):
    with pytest.raises(CheckpointError, match="facompress bench"):
        BenchReport.from_json(text)
