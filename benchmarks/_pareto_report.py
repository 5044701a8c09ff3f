"""Tables, verdicts and the plot of benchmarks/prune_pareto.py, from its JSON rows.

Rows are grouped by method *and* by the training epochs the method spent after fine-tuning (fade
epochs before the cut plus recovery epochs after it), so methods are only compared at equal
training: `gate-fade` (1 fade epoch) against 1-epoch recoveries, `gate-fade-rec` (1 + 1) against
2-epoch recoveries.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from ._pareto_methods import TORCH_PRUNING
from ._tasks import TASKS

OURS = ("gate", "gate-r8", "gate-cut", "gate-until60", "gate-r16-until60", "gate-fade", "gate-fade-rec")  # the gate-guided methods the verdicts compare


def epochs(row: dict) -> int:
    """Training epochs after fine-tuning: fade (before the cut) + recovery (after it)."""
    return int(row.get("fade_epochs", 0)) + int(row.get("recover_epochs", 1))


def label(row: dict) -> str:
    """The method, with its epochs when the row ran at another budget than one epoch."""
    e = epochs(row)
    return row["method"] if e == 1 or row["method"] == "gate-fade-rec" else f"{row['method']} ({e} epochs)"


def mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    m = 100 * statistics.fmean(values)
    sd = 100 * statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{m:.2f} ± {sd:.2f}" if len(values) > 1 else f"{m:.2f}"


def render(doc: dict) -> str:
    """The Markdown tables: per task, method x target, mean ± sd over seeds, then the verdicts."""
    rows = doc["rows"]
    lines = ["# Gate-guided compression vs torch-pruning at equal MACs", "",
             f"Command: `{doc['command']}`", "",
             "Each method prunes the same fine-tuned model to the same fraction of the dense MACs. `epochs` is "
             "the training it spent after fine-tuning: fade epochs before the cut plus recovery epochs after "
             "it (facompress's default `gates` recovery); a recovery is kept or undone on the validation split. "
             "Accuracy on the task's full test split (n below), mean ± standard deviation over seeds.", ""]
    for task in dict.fromkeys(r["task"] for r in rows):
        tr = [r for r in rows if r["task"] == task]
        t0 = tr[0]
        dense = {}
        for r in tr:
            dense.setdefault((r["start"], r["seed"]), r["dense"]["test"]["value"])
        gated_dense = [v for (s, _), v in dense.items() if s == "gated"]
        lines += [f"## {task}: {t0['train_images']} train / {t0['val_images']} val / {t0['test_images']} test images, "
                  f"{TASKS[task].img_size} px; dense gated {mean_sd(gated_dense)}%", "",
                  "| method | epochs | target MACs | MACs reached | params | right after the cut % | "
                  "after recovery % | final (val-chosen) % | seeds |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name in dict.fromkeys(label(r) for r in tr):
            for target in sorted({r["target_macs"] for r in tr}, reverse=True):
                sel = [r for r in tr if label(r) == name and r["target_macs"] == target]
                if not sel:
                    continue
                macs = statistics.fmean(r["macs_fraction"] for r in sel)
                params = statistics.fmean(r["params_fraction"] for r in sel)
                shown = f"**{name}**" if sel[0]["method"] in OURS else name
                lines.append(f"| {shown} | {epochs(sel[0])} | {target} | {macs:.3f} | {params:.3f} | "
                             f"{mean_sd([r['cut_test']['value'] for r in sel])} | "
                             f"{mean_sd([r['rec_test']['value'] for r in sel])} | "
                             f"{mean_sd([r['final_test']['value'] for r in sel])} | {len(sel)} |")
        lines.append("")
    lines += recoveries(rows)
    lines += verdicts(rows)
    return "\n".join(lines) + "\n"


def recoveries(rows: list[dict]) -> list[str]:
    """Where each cut was recovered in several ways (`--recoveries`): validation and test accuracy of
    each, mean ± sd over seeds (the first one is the one the tables above report)."""
    specs = list(dict.fromkeys(k for r in rows for k in r.get("recoveries", {})))
    if len(specs) < 2:
        return []
    out = ["## Recoveries tried on the same cuts (validation % / test %, mean ± sd over seeds)", "",
           "| task | method | target MACs | " + " | ".join(f"`{s}`" for s in specs) + " | seeds |",
           "|---|---|---:|" + "---:|" * len(specs) + "---:|"]
    for task in dict.fromkeys(r["task"] for r in rows):
        for method in dict.fromkeys(r["method"] for r in rows if r["task"] == task):
            for target in sorted({r["target_macs"] for r in rows if r["task"] == task}, reverse=True):
                sel = [r for r in rows if (r["task"], r["method"], r["target_macs"]) == (task, method, target)]
                if not sel:
                    continue
                tried = [[r["recoveries"][s] for r in sel if s in r["recoveries"]] for s in specs]
                cells = [f"{mean_sd([t['val']['value'] for t in ts])} / {mean_sd([t['test']['value'] for t in ts])}"
                         if ts else "-" for ts in tried]
                out.append(f"| {task} | {method} | {target} | " + " | ".join(cells) + f" | {len(sel)} |")
    return out + [""]


def verdicts(rows: list[dict]) -> list[str]:
    """Each gate-guided method against the best torch-pruning method at the same training epochs and
    MAC target: final accuracy, mean over the seeds both ran."""
    out = ["## Gate-guided vs the best torch-pruning method at equal epochs (final accuracy, mean over "
           "the seeds both ran)", "",
           "| task | target | epochs | gate-guided | seeds | its % | best torch-pruning | its % | ahead by |",
           "|---|---:|---:|---|---|---:|---|---:|---:|"]
    for task in dict.fromkeys(r["task"] for r in rows):
        tr = [r for r in rows if r["task"] == task]
        for target in sorted({r["target_macs"] for r in tr}, reverse=True):
            for ours in OURS:
                for e in sorted({epochs(r) for r in tr if r["method"] == ours}):
                    out += _verdict(tr, task, target, ours, e)
    return out + [""]


def _verdict(rows: list[dict], task: str, target: float, ours: str, e: int) -> list[str]:
    def final(method: str) -> dict[int, float]:
        return {r["seed"]: r["final_test"]["value"] for r in rows
                if r["target_macs"] == target and r["method"] == method and epochs(r) == e}

    mine = final(ours)
    peers = {}
    for m in TORCH_PRUNING:
        theirs = final(m)
        seeds = sorted(set(theirs) & set(mine))
        if seeds:
            peers[m] = (seeds, statistics.fmean(theirs[s] for s in seeds), statistics.fmean(mine[s] for s in seeds))
    if not peers:
        return []
    best = max(peers, key=lambda m: peers[m][1])
    seeds, theirs, us = peers[best]
    return [f"| {task} | {target} | {e} | {ours} | {','.join(map(str, seeds))} | {100 * us:.2f} | {best} | "
            f"{100 * theirs:.2f} | {100 * (us - theirs):+.2f} |"]


def plot(doc: dict, path: Path) -> None:
    """Final test accuracy against MACs reached, one panel per task, one line per method and epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = doc["rows"]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        tr = [r for r in rows if r["task"] == task]
        for name in dict.fromkeys(label(r) for r in tr):
            pts = []
            for target in sorted({r["target_macs"] for r in tr}):
                sel = [r for r in tr if label(r) == name and r["target_macs"] == target]
                if sel:
                    accs = [100 * r["final_test"]["value"] for r in sel]
                    pts.append((statistics.fmean(r["macs_fraction"] for r in sel), statistics.fmean(accs),
                                statistics.stdev(accs) if len(accs) > 1 else 0.0))
            xs, ys, es = zip(*pts)
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=name,
                        lw=2.5 if name.split(" ")[0] in OURS else 1)
        ax.set_title(task)
        ax.set_xlabel("MACs, fraction of dense")
        ax.set_ylabel("test accuracy % (val-chosen, mean ± sd over seeds)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
