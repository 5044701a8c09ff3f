"""Pruning does not depend on deployment: prune/ imports neither export/ nor onnx; the searches that
need a deployed model live in search/, and prune_run takes them injected."""

import json
import subprocess
import sys


def test_prune_stage_imports_no_export_code():
    code = ("import json, sys, fa_compress.pruning.stage, fa_compress.pruning.pruner; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('fa_compress.export', "
            "'fa_compress.search', 'fa_compress.bench', 'onnx', 'onnxruntime')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
