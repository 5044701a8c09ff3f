"""Pruning does not depend on deployment: prune/ imports neither export/ nor onnx; the searches that
need a deployed model live in search/, and prune_run takes them injected."""

import json
import subprocess
import sys


def test_prune_stage_imports_no_export_code():
    code = ("import json, sys, fa_compress.prune.stage, fa_compress.prune.pruner; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('fa_compress.export', "
            "'fa_compress.search', 'fa_compress.bench', 'onnx', 'onnxruntime')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_old_sweep_module_name_still_imports():
    from fa_compress import sweep
    from fa_compress.search import sweep as moved

    assert sweep.sweep_run is moved.sweep_run
