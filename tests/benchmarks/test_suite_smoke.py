"""`python -m benchmarks`: the smallest config end to end, and `list` naming every config."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "benchmarks" / "configs").glob("*.toml"))


def test_list_names_every_config():
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "list"], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert CONFIGS
    for config in CONFIGS:
        assert config.name in proc.stdout


def test_smoke_config_end_to_end(tmp_path):
    config = ROOT / "benchmarks" / "configs" / "smoke.toml"
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "int8-accuracy", "--config", str(config),
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=85, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [result] = [p for p in tmp_path.glob("smoke.*.json")]
    doc = json.loads(result.read_text())
    assert doc["experiment"] == "smoke" and doc["suite"] == "int8-accuracy"
    assert doc["command"].startswith("python -m benchmarks int8-accuracy --config")
    assert "revision" in doc and (doc["revision"] is None or isinstance(doc["revision"], str))
    assert isinstance(doc["cpu_flags"], list) and result.name == f"smoke.{doc['cpu_kind']}.json"
    assert set(doc["load_average"]) == {"before", "after"}
    rows = doc["result"]["rows"]
    assert rows and all(isinstance(r["top1"], float) and 0 <= r["top1"] <= 100 for r in rows)
    assert (tmp_path / f"smoke.{doc['cpu_kind']}.md").is_file()
