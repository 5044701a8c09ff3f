"""Tables, verdicts and the plot of benchmarks/prune_pareto.py, from its JSON rows.

Rows are grouped by method *and* by the training the method spent after fine-tuning (fade steps
before the cut plus recovery steps after it; rows from before step budgets give epochs), so methods are
only compared at equal training: the gate ranking's fade against a recovery of as many steps. Tasks come from the zoo (benchmarks/_tasks.py): the tables say which ones the defaults
were chosen on and mark the others held out; the last table sets the two groups side by side.
"""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

from ._pareto_methods import TORCH_PRUNING
from ._tasks import CHOOSE, HELD_OUT, TASKS, ZOO

OURS = ("gate", "gate-r8", "gate-cut", "gate-until60", "gate-r16-until60", "gate-fade", "gate-fade-rec")  # the gate-guided methods the verdicts compare


def epochs(row: dict) -> str:
    """The training after fine-tuning, fade (before the cut) + recovery (after it): in optimizer steps
    where the row records them, else in epochs (rows written before step budgets)."""
    if "train_steps" in row:
        return f"{row['train_steps']} steps"
    e = int(row.get("fade_epochs", 0)) + int(row.get("recover_epochs", 1))
    return f"{e} epoch" if e == 1 else f"{e} epochs"


def label(row: dict) -> str:
    """The method, with its budget when an epoch-budget row ran at another budget than one epoch."""
    e = epochs(row)
    plain = e == "1 epoch" or "train_steps" in row or row["method"] == "gate-fade-rec"
    return row["method"] if plain else f"{row['method']} ({e})"


def task_info(row: dict) -> tuple[str, int, str]:
    """(role, px, model) of a row's task; rows written before the zoo carry none and take the zoo's."""
    task = TASKS.get(row["task"])
    return (row.get("role") or (task.role if task else "?"), row.get("img_size") or (task.img_size if task else 0),
            row.get("model") or (task.model if task else "efficientnet_lite0"))


def role_note(doc: dict) -> str:
    """Which tasks chose the defaults, and that the others did not."""
    chose = doc.get("chose_defaults") or [t.name for t in ZOO if t.role == CHOOSE]
    return (f"The compression defaults were chosen on {', '.join(f'`{n}`' for n in chose)} (role `choose`); tasks "
            f"marked *held out* took no part in choosing them, so they show how far the defaults carry.")


def mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    m = 100 * statistics.fmean(values)
    sd = 100 * statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{m:.2f} ± {sd:.2f}" if len(values) > 1 else f"{m:.2f}"


def revisions(rows: list[dict]) -> str:
    """Which code revision wrote the rows (`row["revision"]`; rows from before it was recorded: unknown)."""
    count = Counter((r.get("revision") or "not recorded") + (" (uncommitted changes)" if r.get("dirty") else "")
                    for r in rows)
    return ", ".join(f"`{rev}` ({n} rows)" for rev, n in count.items())


def render(doc: dict) -> str:
    """The Markdown tables: per task, method x target, mean ± sd over seeds, then the verdicts."""
    rows = doc["rows"]
    lines = ["# Gate-guided compression vs torch-pruning at equal MACs", "",
             f"Command: `{doc['command']}`", "",
             "Each method prunes the same fine-tuned model to the same fraction of the dense MACs. `training` is "
             "what it spent after fine-tuning: the fade's steps before the cut plus the recovery's steps after "
             "it (facompress's default `gates` recovery); a recovery is kept or undone on the validation split. "
             "Accuracy on the task's full test split (n below), mean ± standard deviation over seeds.", "",
             role_note(doc), ""]
    for task in dict.fromkeys(r["task"] for r in rows):
        tr = [r for r in rows if r["task"] == task]
        t0 = tr[0]
        dense = {}
        for r in tr:
            dense.setdefault((r["start"], r["seed"]), r["dense"]["test"]["value"])
        gated_dense = [v for (s, _), v in dense.items() if s == "gated"]
        role, px, model = task_info(t0)
        mark = " (held out)" if role == HELD_OUT else " (defaults chosen here)" if role == CHOOSE else ""
        lines += [f"## {task}{mark}: {t0['train_images']} train / {t0['val_images']} val / {t0['test_images']} test "
                  f"images, {px} px, {model}; dense gated {mean_sd(gated_dense)}%", "",
                  f"Code revision of the rows: {revisions(tr)}.", "",
                  "| method | training | target MACs | MACs reached | params | right after the cut % | "
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
    lines += by_role(rows)
    lines += goals(rows)
    if doc.get("unfinished"):
        lines += [f"**Stopped before the end** (`--deadline-min`): the units {', '.join(doc['unfinished'])} did not "
                  "finish; their finished rows are in the tables above, the rest were not run.", ""]
    return "\n".join(lines) + "\n"


def allowed_drop(task: str, train_images: int, target: float) -> float | None:
    """Points below dense the default may lose at `target` (the accuracy goals the report checks); None: no goal."""
    if target == 0.5:
        return 0.5 if train_images >= 1000 else 1.5
    if target == 0.35:
        return 1.0 if task == "default" else 2.5
    if target == 0.25:
        return 3.0 if task == "default" else 5.0
    return None


def goals(rows: list[dict], ours: str = "gate") -> list[str]:
    """The default (`gate`) against its goals, per task and target: within so many points of dense (mean over
    seeds), and at or above the best torch-pruning method (mean over the seeds both ran)."""
    found = {(v["task"], v["target"]): v for v in _verdicts(rows) if v["ours"] == ours}
    out = [f"## Goals of the default (`{ours}`): points from dense and from the best torch-pruning method", "",
           "Within: 0.5 point of dense at 0.5 of the MACs on tasks with at least 1,000 training images, 1.5 on smaller "
           "ones; 1 point at 0.35 on `default`, 2.5 elsewhere; 3 points at 0.25 on `default`, 5 elsewhere. And at or "
           "above the best torch-pruning method (its iterative pruning included) at every target. Mean over seeds.", "",
           "| task | role | train images | target | seeds | dense % | default % | vs dense | goal | met | "
           "best torch-pruning | vs it | met |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---|"]
    met = total = 0
    for task in dict.fromkeys(r["task"] for r in rows):
        mine = [r for r in rows if r["task"] == task and r["method"] == ours]
        for target in sorted({r["target_macs"] for r in mine}, reverse=True):
            sel = [r for r in mine if r["target_macs"] == target]
            dense = 100 * statistics.fmean(r["dense"]["test"]["value"] for r in sel)
            acc = 100 * statistics.fmean(r["final_test"]["value"] for r in sel)
            limit = allowed_drop(task, sel[0]["train_images"], target)
            near = None if limit is None else acc - dense >= -limit
            v = found.get((task, target))
            ahead = None if v is None else v["us"] >= v["theirs"]
            lead = "-" if v is None else f"{100 * (v['us'] - v['theirs']):+.2f}"
            for check in (near, ahead):
                if check is not None:
                    met, total = met + check, total + 1
            out.append(f"| {task} | {task_info(sel[0])[0]} | {sel[0]['train_images']} | {target} | {len(sel)} | "
                       f"{dense:.2f} | {acc:.2f} | {acc - dense:+.2f} | {'-' if limit is None else f'-{limit:g}'} | "
                       f"{'-' if near is None else 'yes' if near else '**no**'} | "
                       f"{'-' if v is None else v['best']} | "
                       f"{lead} | "
                       f"{'-' if ahead is None else 'yes' if ahead else '**no**'} |")
    return out + ["", f"Goals met: {met} of {total}.", ""] if total else []


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
    out = ["## Gate-guided vs the best torch-pruning method at equal training (final accuracy, mean over "
           "the seeds both ran)", "",
           "| task | role | target | training | gate-guided | seeds | its % | best torch-pruning | its % | ahead by |",
           "|---|---|---:|---:|---|---|---:|---|---:|---:|"]
    for v in _verdicts(rows):
        out.append(f"| {v['task']} | {v['role']} | {v['target']} | {v['epochs']} | {v['ours']} | "
                   f"{','.join(map(str, v['seeds']))} | {100 * v['us']:.2f} | {v['best']} | {100 * v['theirs']:.2f} | "
                   f"{100 * (v['us'] - v['theirs']):+.2f} |")
    return out + [""]


def by_role(rows: list[dict]) -> list[str]:
    """The verdicts' lead (gate-guided minus the best torch-pruning method, points of final accuracy) over the
    tasks of each role: mean, worst, and on how many tasks the gate-guided method was ahead."""
    found = _verdicts(rows)
    roles = [r for r in (CHOOSE, HELD_OUT) if any(v["role"] == r for v in found)]
    if not roles:
        return []
    out = ["## Chosen-on tasks against held-out tasks (lead over the best torch-pruning method, points)", "",
           "| gate-guided | training | target | role | tasks | mean lead | worst lead | ahead on |",
           "|---|---:|---:|---|---:|---:|---:|---:|"]
    for key in dict.fromkeys((v["ours"], v["epochs"], v["target"]) for v in found):
        for role in roles:
            leads = [v["us"] - v["theirs"] for v in found if (v["ours"], v["epochs"], v["target"]) == key
                     and v["role"] == role]
            if leads:
                ahead = sum(lead > 0 for lead in leads)
                out.append(f"| {key[0]} | {key[1]} | {key[2]} | {role} | {len(leads)} | "
                           f"{100 * statistics.fmean(leads):+.2f} | {100 * min(leads):+.2f} | "
                           f"{ahead} of {len(leads)} |")
    return out + [""]


def _verdicts(rows: list[dict]) -> list[dict]:
    """Every verdict: task, role, target, epochs, the gate-guided method and the best torch-pruning one."""
    found = []
    for task in dict.fromkeys(r["task"] for r in rows):
        tr = [r for r in rows if r["task"] == task]
        for target in sorted({r["target_macs"] for r in tr}, reverse=True):
            for ours in OURS:
                for e in sorted({epochs(r) for r in tr if r["method"] == ours}):
                    v = _verdict(tr, target, ours, e)
                    if v:
                        found.append({"task": task, "role": task_info(tr[0])[0], "target": target, "epochs": e,
                                      "ours": ours, **v})
    return found


def _verdict(rows: list[dict], target: float, ours: str, e: str) -> dict | None:
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
        return None
    best = max(peers, key=lambda m: peers[m][1])
    seeds, theirs, us = peers[best]
    return {"seeds": seeds, "us": us, "best": best, "theirs": theirs}


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
        role = task_info(tr[0])[0]
        ax.set_title(task + (" (held out)" if role == HELD_OUT else ""))
        ax.set_xlabel("MACs, fraction of dense")
        ax.set_ylabel("test accuracy % (val-chosen, mean ± sd over seeds)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
