"""The gate histogram per stage: the interpretability view of the ranking."""

from __future__ import annotations

from pathlib import Path

from .._deps import require


def plot_gate_histograms(stage_gates: dict[str, list[float]], path: Path, title: str = "Gate values per stage") -> Path:
    """One histogram panel per stage (values at 1 = unchanged; >1 amplified; ~0 noise)."""
    require("matplotlib", "plots")
    import matplotlib.pyplot as plt
    n = max(len(stage_gates), 1)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 2.8), squeeze=False)
    for ax, (stage, values) in zip(axes[0], stage_gates.items()):
        ax.hist(values, bins=40, color="#3b75af")
        ax.axvline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_title(stage, fontsize=9)
        ax.set_xlabel("gate")
    axes[0][0].set_ylabel("channels")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
