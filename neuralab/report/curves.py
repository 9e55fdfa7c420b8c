"""Learning curves: train and validation loss, and the task's main metric, per epoch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402


def plot_curves(
    history: list[dict[str, float]],
    panels: Sequence[str],
    path: Path,
    *,
    title: str,
    best_epoch: int | None = None,
) -> None:
    """Write a PNG with one panel per metric in `panels` (e.g. loss and accuracy), train
    vs val, with the epoch whose weights were kept marked when early stopping chose one."""
    epochs = [record["epoch"] for record in history]
    figure, axes = plt.subplots(
        1, len(panels), figsize=(5 * len(panels), 3.8), constrained_layout=True, squeeze=False
    )
    for axis, name in zip(axes[0], panels, strict=True):
        for split, style in (("train", "-"), ("val", "--")):
            key = f"{split}_{name}"
            if all(key in record for record in history):
                axis.plot(epochs, [r[key] for r in history], style, marker=".", label=split)
        if best_epoch is not None:
            axis.axvline(
                best_epoch, color="grey", linestyle=":", label=f"kept (epoch {best_epoch})"
            )
        axis.set_xlabel("epoch")
        axis.set_ylabel(name)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.savefig(path, dpi=100)
    plt.close(figure)
