import json

import pytest

from fa_compress.bench.results import BenchReport
from fa_compress.errors import CheckpointError


def test_json_round_trip_is_exact(report):
    again = BenchReport.from_json(report.to_json())
    assert again == report
    assert again.to_json() == report.to_json()
    assert again.artifact("pruned").latency("torch-cpu", 1).median_ms == 5.0
    assert again.artifact("pruned").latency("torch-cpu", 8) is None


def test_json_is_plain_and_versioned(report):
    data = json.loads(report.to_json())
    assert data["format"] == 1
    assert data["artifacts"][0]["latencies"][0]["p90_ms"] == 12.5
    assert data["skipped"][0] == {"backend": "tensorrt", "reason": "tensorrt is not importable | here",
                                  "artifact": None}


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"format": 99}', '{"format": 1, "env": {}}'])
def test_bad_reports_are_checkpoint_errors(text):
    with pytest.raises(CheckpointError, match="facompress bench"):
        BenchReport.from_json(text)
