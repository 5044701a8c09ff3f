#!/usr/bin/env bash
# `make demo` before and after the CPU memory-format choice (issue 14), on the same machine, one
# after the other: the whole chain with --memory-format contiguous, then with the default `auto`.
# Prints each wall time, the `facompress finetune` step's own time and the ratios; writes
# benchmarks/results/demo_speed.md. Wall times of whole runs cannot be interleaved: run it on a quiet
# machine (the load is recorded) and read the ratio, not the seconds.
#   bash benchmarks/demo_speed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
out=benchmarks/results/demo_speed.md
declare -A total finetune loads
for fmt in contiguous auto; do
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  log=$(mktemp)
  t0=$(date +%s.%N)
  DEMO_MEMORY_FORMAT=$fmt bash benchmarks/demo.sh > "$log" 2>&1
  total[$fmt]=$(echo "$(date +%s.%N) - $t0" | bc)
  finetune[$fmt]=$(python -c "from fa_compress.run import Run; print(round(Run.resolve(None).stage('finetune')['metrics']['total_s'], 1))")
  echo "$fmt: demo ${total[$fmt]} s, finetune ${finetune[$fmt]} s (load before: $load)"
  loads[$fmt]=$load
  tail -n 12 "$log"
done
ratio=$(echo "scale=3; ${total[contiguous]} / ${total[auto]}" | bc)
{
  echo "# make demo: contiguous vs the default memory format (issue 14)"
  echo
  echo "Command: \`bash benchmarks/demo_speed.sh\` ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores)"
  echo
  echo "| memory format | make demo chain, s | facompress finetune, s |"
  echo "|---|---:|---:|"
  echo "| contiguous | ${total[contiguous]} | ${finetune[contiguous]} |"
  echo "| auto (default) | ${total[auto]} | ${finetune[auto]} |"
  echo
  echo "Chain speed-up: ${ratio}x. Run one after the other; load average before each: contiguous ${loads[contiguous]}, auto ${loads[auto]}."
} > "$out"
cat "$out"
