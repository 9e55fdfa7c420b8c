"""The learning-rate range test's plot: loss against rate, the suggestion marked."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from neuralab.train.lr_range import LRSweep  # noqa: E402


def plot_lr_sweep(sweep: LRSweep, path: Path, *, title: str) -> None:
    """Batch losses (faint) and their moving average against the rate (log scale)."""
    figure, axis = plt.subplots(figsize=(7, 4.2), constrained_layout=True)
    axis.plot(sweep.lrs, sweep.losses, color="tab:blue", alpha=0.3, label="batch loss")
    axis.plot(sweep.lrs, sweep.smoothed, color="tab:blue", label="smoothed loss")
    axis.axvline(
        sweep.suggestion, color="tab:red", linestyle="--", label=f"suggested {sweep.suggestion:.2g}"
    )
    axis.set_xscale("log")
    finite = [v for v in sweep.smoothed if v == v and abs(v) != float("inf")]
    if finite:  # the diverging tail would squash the useful part of the curve
        low, first = min(finite), finite[0]
        axis.set_ylim(low - 0.1 * abs(first - low), first + 0.5 * abs(first - low) + 1e-9)
    axis.set_xlabel("learning rate (log scale)")
    axis.set_ylabel("training loss")
    axis.grid(alpha=0.3)
    axis.legend()
    axis.set_title(f"{title}: learning-rate range test\nsuggestion: {sweep.rule}", fontsize=10)
    figure.savefig(path, dpi=100)
    plt.close(figure)
