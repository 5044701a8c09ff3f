#!/usr/bin/env bash
# GPU check for the benchmark suite: resnet50 dense vs keep 0.6 on PyTorch CUDA FP32/FP16,
# channels_last, batch 1 and 64, plus an AMP training step; results in benchmarks/results/.
# A few minutes end to end on an H100. Extra arguments go to gpu_check.py (e.g. --runs 100).
#
# The CUDA machine has torch and torchvision but not torch-pruning. The caller brings torch-pruning
# as its pure-python wheel in .whl/ (on the dev machine: `pip download torch-pruning==1.6.1 --no-deps
# -d .whl`; `.whl/` is git-ignored, so carry it to the GPU machine). This script puts every
# .whl/*.whl on PYTHONPATH (pure-python wheels import straight from the zip), and the repository root
# too, so `fa_compress` imports without being installed.
set -euo pipefail
cd "$(dirname "$0")/.."
for wheel in .whl/*.whl; do
    [ -e "$wheel" ] && PYTHONPATH="$PWD/$wheel${PYTHONPATH:+:$PYTHONPATH}"
done
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import torch_pruning" 2>/dev/null || {
    echo "error: torch_pruning is not importable; put torch_pruning-1.6.1-py3-none-any.whl in .whl/" >&2
    exit 2
}
exec python3 benchmarks/gpu_check.py "$@"
