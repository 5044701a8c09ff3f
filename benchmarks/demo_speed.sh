#!/usr/bin/env bash
# `make demo` with the old CPU settings and with today's, on the same machine, one after the other: the
# whole chain as facompress ran it before (--memory-format contiguous, OpenMP always PASSIVE), then
# with today's defaults (memory format `auto`, OpenMP waiting chosen by fa_compress/wait_policy.py).
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
  if [ "$fmt" = contiguous ]; then
    OMP_WAIT_POLICY=PASSIVE DEMO_MEMORY_FORMAT=contiguous bash examples/demo.sh > "$log" 2>&1
  else
    DEMO_MEMORY_FORMAT=auto bash examples/demo.sh > "$log" 2>&1
  fi
  total[$fmt]=$(echo "$(date +%s.%N) - $t0" | bc)
  finetune[$fmt]=$(python -c "from fa_compress.run import Run; print(round(Run.resolve(None).stage('finetune')['metrics']['total_s'], 1))")
  echo "$fmt: demo ${total[$fmt]} s, finetune ${finetune[$fmt]} s (load before: $load)"
  loads[$fmt]=$load
  tail -n 12 "$log"
done
ratio=$(echo "scale=3; ${total[contiguous]} / ${total[auto]}" | bc)
ft_ratio=$(echo "scale=3; ${finetune[contiguous]} / ${finetune[auto]}" | bc)
{
  echo "# make demo: before (contiguous, OpenMP PASSIVE) vs today's CPU defaults"
  echo
  echo "Command: \`bash benchmarks/demo_speed.sh\` ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores)"
  echo
  echo "| settings | make demo chain, s | facompress finetune, s |"
  echo "|---|---:|---:|"
  echo "| before: contiguous, OMP_WAIT_POLICY=PASSIVE | ${total[contiguous]} | ${finetune[contiguous]} |"
  echo "| today's defaults: memory format auto, wait policy by load | ${total[auto]} | ${finetune[auto]} |"
  echo
  echo "Chain speed-up: ${ratio}x; finetune speed-up: ${ft_ratio}x. Run one after the other; load average before each: contiguous ${loads[contiguous]}, auto ${loads[auto]}."
} > "$out"
cat "$out"
