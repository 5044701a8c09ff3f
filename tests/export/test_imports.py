"""Importing facompress (and its export package) loads neither onnxruntime nor tensorrt."""

from __future__ import annotations

import json
import subprocess
import sys


def test_import_loads_no_heavy_runtime():
    code = ("import json, sys, fa_compress, fa_compress.export; "
            "print(json.dumps([m for m in ('tensorrt', 'onnxruntime', 'onnxslim', 'onnxconverter_common') "
            "if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
