"""Learning curves of several settings on one figure: train and validation loss, and the
validation metric, per epoch. Each setting is a mean line over its seeds with a band from
the lowest to the highest seed, so a difference between settings can be told from noise."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_overlaid_curves(
    histories: dict[str, list[list[dict[str, float]]]], metric: str, path: Path, *, title: str
) -> None:
    """`histories` maps a setting's label to one epoch-history per seed."""
    figure, (loss_axis, metric_axis) = plt.subplots(
        1, 2, figsize=(12, 4.5), constrained_layout=True
    )
    for index, (label, runs) in enumerate(histories.items()):
        color = f"C{index % 10}"
        for axis, key, style, name in (
            (loss_axis, "train_loss", ":", None),
            (loss_axis, "val_loss", "-", label),
            (metric_axis, f"val_{metric}", "-", label),
        ):
            _band(axis, runs, key, color=color, style=style, label=name)
    loss_axis.set_ylabel("loss (dotted: train, solid: val)")
    metric_axis.set_ylabel(f"val {metric}")
    for axis in (loss_axis, metric_axis):
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    metric_axis.legend(fontsize=8)
    seeds = max(len(runs) for runs in histories.values())
    figure.suptitle(f"{title} (mean over {seeds} seed(s); band: lowest to highest seed)")
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _band(axis, runs, key: str, *, color: str, style: str, label: str | None) -> None:
    """Mean and min-max over the seeds that reached each epoch (early stopping varies)."""
    by_epoch: dict[int, list[float]] = {}
    for history in runs:
        for record in history:
            if key in record:
                by_epoch.setdefault(int(record["epoch"]), []).append(record[key])
    if not by_epoch:
        return
    epochs = sorted(by_epoch)
    values = [np.asarray(by_epoch[e]) for e in epochs]
    axis.plot(epochs, [v.mean() for v in values], style, color=color, label=label)
    if any(len(v) > 1 for v in values):
        low, high = [v.min() for v in values], [v.max() for v in values]
        axis.fill_between(epochs, low, high, color=color, alpha=0.15, linewidth=0)
