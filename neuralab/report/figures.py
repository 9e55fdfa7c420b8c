"""Figures for the HTML report, drawn to PNG bytes: confusion matrix, gradient norms, the
samples a model got most confidently wrong, latent maps, grids of generated samples, the
reliability diagram and attributions."""

from __future__ import annotations

import io
import math
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def to_png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()


def confusion_figure(matrix: list[list[int]], labels: tuple[str, ...]) -> bytes:
    counts = np.asarray(matrix)
    size = max(3.5, 0.45 * len(labels) + 1.5)
    figure, axis = plt.subplots(figsize=(size, size), constrained_layout=True)
    axis.imshow(counts, cmap="Blues")
    ticks = range(len(labels))
    axis.set_xticks(ticks, labels, rotation=90 if len(labels) > 12 else 0)
    axis.set_yticks(ticks, labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    if len(labels) <= 20:
        threshold = counts.max() / 2
        for (row, column), value in np.ndenumerate(counts):
            color = "white" if value > threshold else "black"
            axis.text(column, row, str(value), ha="center", va="center", color=color, fontsize=8)
    return to_png(figure)


def gradient_norm_figure(norms: dict[str, list[float]]) -> bytes:
    """One line per layer, input side dark to output side light, log scale."""
    figure, axis = plt.subplots(figsize=(7, 3.8), constrained_layout=True)
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(norms)))
    for (name, values), color in zip(norms.items(), colors, strict=True):
        axis.plot(range(1, len(values) + 1), np.maximum(values, 1e-30), color=color, label=name)
    axis.set_yscale("log")
    axis.set_xlabel("epoch")
    axis.set_ylabel("mean gradient norm")
    if len(norms) <= 12:
        axis.legend(fontsize=7)
    axis.grid(alpha=0.3)
    return to_png(figure)


def samples_figure(samples: np.ndarray, captions: list[str], kind: str) -> bytes:
    """Images as pictures, sequences as line plots, one panel per sample."""
    columns = min(len(samples), 6)
    rows = -(-len(samples) // columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(2.1 * columns, 2.2 * rows), constrained_layout=True, squeeze=False
    )
    for axis in axes.ravel():
        axis.axis("off")
    for axis, sample, caption in zip(axes.ravel(), samples, captions, strict=False):
        if kind == "image":
            picture = sample[0] if sample.shape[0] == 1 else np.moveaxis(sample[:3], 0, -1)
            axis.imshow(picture, cmap="gray_r")
        else:
            axis.axis("on")
            for channel in sample:
                axis.plot(channel, linewidth=1)
            axis.set_xticks([])
            axis.set_yticks([])
        axis.set_title(caption, fontsize=8)
    return to_png(figure)


def latent_figure(
    latent: np.ndarray,
    labels: np.ndarray | None,
    names: tuple[str, ...],
    *,
    axis_name: str = "latent",
    title: str = "test samples in latent space",
) -> bytes:
    """2-D points (latent codes, principal components) as a scatter, one colour per class
    or cluster when labels are known."""
    figure, axis = plt.subplots(figsize=(5.5, 4.5), constrained_layout=True)
    if labels is None:
        axis.scatter(latent[:, 0], latent[:, 1], s=8, alpha=0.7)
    else:
        cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
        for i, name in enumerate(names):
            chosen = labels == i
            axis.scatter(
                latent[chosen, 0],
                latent[chosen, 1],
                s=8,
                alpha=0.7,
                color=cmap(i % cmap.N),
                label=name,
            )
        axis.legend(markerscale=2, fontsize=8, loc="best")
    axis.set_xlabel(f"{axis_name} 1")
    axis.set_ylabel(f"{axis_name} 2")
    axis.set_title(title)
    return to_png(figure)


def reliability_figure(curves: dict[str, Any]) -> bytes:
    """Accuracy against confidence per bin, one line per named `Reliability` (e.g. before
    and after temperature scaling); the diagonal is perfect calibration."""
    figure, axis = plt.subplots(figsize=(4.8, 4.3), constrained_layout=True)
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="calibrated")
    for name, bins in curves.items():
        used = bins.counts > 0
        axis.plot(
            bins.confidence[used],
            bins.accuracy[used],
            marker="o",
            label=f"{name}, ECE {bins.ece:.3f}",
        )
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.set_xlabel("confidence (top-class probability)")
    axis.set_ylabel("accuracy")
    axis.legend(fontsize=8, loc="upper left")
    axis.grid(alpha=0.3)
    return to_png(figure)


def attribution_figure(
    samples: np.ndarray,
    attributions: np.ndarray,
    captions: list[str],
    kind: str,
    feature_names: list[str],
) -> bytes:
    """One panel per sample: images with the attribution as a red (for) / blue (against)
    overlay, sequences with a bar per step under the signal, tabular rows as a bar per
    feature."""
    columns = min(len(samples), 4 if kind == "tabular" else 6)
    rows = -(-len(samples) // columns)
    figure = plt.figure(figsize=(2.6 * columns, 2.6 * rows), constrained_layout=True)
    panels = figure.subfigures(rows, columns, squeeze=False).ravel()
    for panel, sample, values, caption in zip(
        panels, samples, attributions, captions, strict=False
    ):
        _attribution_panel(panel, sample, values, kind, feature_names)
        panel.suptitle(caption, fontsize=8)
    return to_png(figure)


def _attribution_panel(panel, sample, values, kind: str, feature_names: list[str]) -> None:
    if kind == "image":
        axis = panel.subplots()
        heat = values.sum(axis=0)  # over channels
        limit = float(np.abs(heat).max()) or 1.0
        picture = sample[0] if sample.shape[0] == 1 else np.moveaxis(sample[:3], 0, -1)
        axis.imshow(picture, cmap="gray_r")
        axis.imshow(heat, cmap="bwr", vmin=-limit, vmax=limit, alpha=0.6)
        axis.axis("off")
    elif kind == "sequence":
        signal, bars = panel.subplots(2, 1, sharex=True, height_ratios=[2, 1])
        for channel in sample:
            signal.plot(channel, linewidth=1)
        per_step = values.sum(axis=0)
        bars.bar(range(len(per_step)), per_step, color=np.where(per_step >= 0, "C3", "C0"))
        for axis in (signal, bars):
            axis.set_yticks([])
    else:
        axis = panel.subplots()
        positions = range(len(values))
        axis.barh(positions, values, color=np.where(values >= 0, "C3", "C0"))
        axis.set_yticks(positions, feature_names, fontsize=7)
        axis.invert_yaxis()
        axis.axvline(0, color="grey", linewidth=0.8)


MAX_BARS = 20  # the most important columns drawn; the JSON holds every one


def importance_figure(features: list[str], mean: np.ndarray, std: np.ndarray, metric: str) -> bytes:
    """Permutation importance as horizontal bars, most important on top, with the spread
    over repeats as error bars."""
    order = np.argsort(-mean, kind="stable")[:MAX_BARS][::-1]
    figure, axis = plt.subplots(figsize=(6, 1.2 + 0.3 * len(order)), constrained_layout=True)
    axis.barh(range(len(order)), mean[order], xerr=std[order], color="#4c78a8", capsize=3)
    axis.set_yticks(range(len(order)), [features[i] for i in order], fontsize=8)
    axis.axvline(0.0, color="#888888", linewidth=0.8)
    axis.set_xlabel(f"how much worse test {metric} gets when the column is shuffled")
    axis.set_title("permutation importance (mean ± sd over repeats)", fontsize=10)
    return to_png(figure)


def sample_grid(samples: np.ndarray, kind: str) -> bytes:
    """Many samples at a glance, without captions: images tiled into one square-ish picture
    (one pixel of gap), sequences as small line plots."""
    if kind != "image":
        return samples_figure(samples, [""] * len(samples), kind)
    columns = math.ceil(math.sqrt(len(samples)))
    rows = -(-len(samples) // columns)
    channels, height, width = samples.shape[1:]
    # Shade between the 1st and 99th percentiles, so a few stray values do not wash out the
    # picture; gaps and empty cells take the low end, white in gray_r.
    low, high = np.percentile(samples, [1, 99])
    canvas = np.full((rows * (height + 1) - 1, columns * (width + 1) - 1, channels), low)
    for i, sample in enumerate(samples):
        top, left = (i // columns) * (height + 1), (i % columns) * (width + 1)
        canvas[top : top + height, left : left + width] = np.moveaxis(sample, 0, -1)
    size = min(8.0, 0.5 * columns + 1)
    figure, axis = plt.subplots(figsize=(size, size * rows / columns), constrained_layout=True)
    axis.axis("off")
    picture = np.clip((canvas - low) / max(high - low, 1e-12), 0.0, 1.0)
    axis.imshow(
        picture[..., 0] if channels == 1 else picture[..., :3], cmap="gray_r", vmin=0, vmax=1
    )
    return to_png(figure)
