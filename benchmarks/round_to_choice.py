"""Channel counts in multiples of 8 or 16: the paired accuracy difference and the latency behind the default.

    .venv/bin/python benchmarks/round_to_choice.py

Reads the stored Pareto rows of the default gate method cut in 16s (`pareto4_r16u30_*`) and in 8s
(`pareto4_until30_*`): the same fine-tunings, scores and fade, 3 tasks x 3 MAC targets x 3 seeds. For
each pair it takes 16 minus 8, on the validation split (what the tool may choose on) and on the test
split (reported only), and prints the mean with a 95% t-interval over the 27 pairs; then the batch-8
onnxruntime latency of both cuts at 0.5 of dense MACs from `pareto4_latency.json`.
"""

from __future__ import annotations

import json
import math
import statistics

from ._common import RESULTS  # noqa: E402

T_975_DF26 = 2.056  # two-sided 95% Student t quantile for 27 pairs
R8 = ("gate-until30", ("pareto4_until30_default", "pareto4_until30_default75", "pareto4_until30_small"))
R16 = ("gate-r16-until30", ("pareto4_r16u30_default", "pareto4_r16u30_small"))


def rows(method: str, names: tuple[str, ...]) -> dict[tuple, dict]:
    """(task, target, seed) -> the stored row of `method`."""
    out = {}
    for name in names:
        for r in json.loads((RESULTS / f"{name}.json").read_text())["rows"]:
            if r["method"] == method:
                out[(r["task"], r["target_macs"], r["seed"])] = r
    return out


def main() -> None:
    r8, r16 = rows(*R8), rows(*R16)
    pairs = sorted(set(r8) & set(r16))
    for split, key in (("validation", "rec_val"), ("test", "final_test")):
        d = [100 * (r16[k][key]["value"] - r8[k][key]["value"]) for k in pairs]
        mean, half = statistics.mean(d), T_975_DF26 * statistics.stdev(d) / math.sqrt(len(d))
        print(f"{split}: 16 - 8 = {mean:+.2f} points [{mean - half:+.2f}, {mean + half:+.2f}] over {len(d)} pairs "
              f"(16 ahead {sum(x > 0 for x in d)}, tied {sum(x == 0 for x in d)})")
    latency = json.loads((RESULTS / "pareto4_latency.json").read_text())["rows"]
    for r in latency:
        if r["batch"] == 8 and r["model"] in ("gate-0.5", "gate-fade8-r16-0.5"):
            what = "16" if "r16" in r["model"] else "8"
            print(f"latency at 0.5 MACs, batch 8, multiples of {what}: {r['latency_ratio']:.3f}x dense "
                  f"[{r['low']:.3f}, {r['high']:.3f}]")


if __name__ == "__main__":
    main()
