"""The comparison plot: each model's test metric (mean +- std over seeds) against its
training time, so "is the deep model worth it?" is one glance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_comparison(rows: list[Any], metric: str, path: Path) -> None:
    """Scatter with error bars: x = mean train seconds (log scale), y = mean test metric."""
    figure, axis = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    for row in rows:
        axis.errorbar(max(row.train_seconds, 1e-3), row.mean, yerr=row.std, fmt="o", capsize=4)
        axis.annotate(
            row.model,
            (max(row.train_seconds, 1e-3), row.mean),
            textcoords="offset points",
            xytext=(6, 4),
        )
    axis.set_xscale("log")
    axis.set_xlabel("train seconds (log scale)")
    axis.set_ylabel(f"test {metric}")
    axis.grid(alpha=0.3)
    axis.set_title(f"test {metric} vs training time (mean ± std over seeds)")
    figure.savefig(path, dpi=100)
    plt.close(figure)
