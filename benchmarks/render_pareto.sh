#!/usr/bin/env bash
# The Pareto tables and plot (results/prune_pareto.*) from every run behind them, with the relabels of
# rows measured under earlier method names (README, issue 10).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python benchmarks/prune_pareto.py --render --render-to prune_pareto \
 --name pareto4_until30_default,pareto4_until30_default75,pareto4_until30_small,pareto3_default,pareto3_small,pareto3_default_peers,pareto3_default_peers_s1,pareto3_default_peers_s2,pareto4_fade8_default,pareto4_fade8_small,pareto4_r16u30_default,pareto4_r16u30_small,pareto4_r16_default,pareto4_r16_small \
 --relabel pareto4_until30_default:gate-until30=gate-r8 --relabel pareto4_until30_default75:gate-until30=gate-r8 --relabel pareto4_until30_small:gate-until30=gate-r8 \
 --relabel pareto3_default:gate=gate-cut --relabel pareto3_small:gate=gate-cut \
 --relabel pareto4_fade8_default:gate-fade8=gate-until60 --relabel pareto4_fade8_small:gate-fade8=gate-until60 \
 --relabel pareto4_r16u30_default:gate-r16-until30=gate --relabel pareto4_r16u30_small:gate-r16-until30=gate \
 --relabel pareto4_r16_default:gate-fade8-r16=gate-r16-until60 --relabel pareto4_r16_small:gate-fade8-r16=gate-r16-until60
