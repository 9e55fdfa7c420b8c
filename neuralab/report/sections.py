"""The task-specific parts of `report.html`, each called by its task's `report_section`:
the per-class picture of a classifier, the largest errors of a regressor, the latent map of
an autoencoder, generated samples, text continuations and translations."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from sklearn.decomposition import PCA

from neuralab.calibration import reliability
from neuralab.card import Card
from neuralab.data import DataBundle
from neuralab.models.generative import generate
from neuralab.report.figures import (
    confusion_figure,
    latent_figure,
    reliability_figure,
    sample_grid,
    samples_figure,
)
from neuralab.report.html import image, table, tables
from neuralab.report.reuse import heads_table
from neuralab.report.samples import GRID_SEED, GRID_SIZE
from neuralab.train import predict_outputs

if TYPE_CHECKING:
    from neuralab.tasks import Regression

NUM_WRONG = 12
NUM_RECONSTRUCTIONS = 6
LATENT = "latent.png"


def _class_balance(labels: tuple[str, ...], bundle: DataBundle) -> str:
    counts = [
        torch.bincount(y, minlength=len(labels)).tolist()
        for y in (bundle.y_train, bundle.y_val, bundle.y_test)
    ]
    balance = [[name, *(c[i] for c in counts)] for i, name in enumerate(labels)]
    return "<h2>Class balance</h2>" + table(["class", "train", "val", "test"], balance)


def heads_section(card: Card) -> str:
    return tables([heads_table(card)])


def generation_section(model, bundle: DataBundle) -> str:
    """A continuation of the first test window's opening, sampled at temperature 0.8."""
    vocab = bundle.meta.vocab
    prompt = bundle.x_test[0, :40]
    generated = model.generate(
        prompt, 300, temperature=0.8, top_k=20, generator=torch.Generator().manual_seed(0)
    )
    shown = "".join(vocab[i] for i in prompt) + "▌" + "".join(vocab[i] for i in generated)
    return (
        "<h2>Sample</h2><p>The first 40 characters of the test text (up to ▌), continued by "
        "the model for 300 characters (temperature 0.8, top-k 20, seed 0).</p>"
        f"<pre>{html.escape(shown)}</pre>"
    )


def translation_section(model, bundle: DataBundle) -> str:
    """Test sources, their targets and the model's decoding (with its beam), first wrong."""
    from neuralab.data.text import decode

    vocab, count = bundle.meta.vocab, 12
    predicted = model.decode(bundle.x_test)
    rows = [
        [
            decode(s, vocab),
            decode(t, vocab),
            decode(p, vocab),
            "✓" if decode(t, vocab) == decode(p, vocab) else "✗",
        ]
        for s, t, p in zip(
            bundle.x_test.tolist(), bundle.y_test.tolist(), predicted.tolist(), strict=True
        )
    ]
    rows.sort(key=lambda row: row[3] == "✓")
    return "<h2>Test translations</h2><p>Wrong ones first.</p>" + table(
        ["source", "target", "decoded", ""], rows[:count]
    )


def classification_section(card: Card, model, bundle: DataBundle) -> str:
    output = predict_outputs(model, bundle.x_test)
    labels = card.data.label_names
    confusion = card.confusion_matrix or []
    matrix = np.asarray(confusion)
    true_counts, predicted_counts = matrix.sum(axis=1), matrix.sum(axis=0)
    rows = []
    for i, name in enumerate(labels):
        precision = matrix[i, i] / predicted_counts[i] if predicted_counts[i] else 0.0
        recall = matrix[i, i] / true_counts[i] if true_counts[i] else 0.0
        rows.append([name, f"{precision:.3f}", f"{recall:.3f}", int(true_counts[i])])
    text = (
        _class_balance(labels, bundle)
        + "<h2>Test errors</h2>"
        + image(confusion_figure(confusion, labels), "confusion matrix")
    )
    text += "<h3>Per class</h3>" + table(["class", "precision", "recall", "support"], rows)
    return (
        text
        + _calibration(card, bundle, output)
        + _confident_mistakes(card, bundle, output, labels)
    )


def _calibration(card: Card, bundle: DataBundle, output) -> str:
    """The reliability diagram of the test split, before and after temperature scaling."""
    curves = {"as trained": reliability(output, bundle.y_test)}
    note = "Run <code>neuralab calibrate RUN_DIR</code> to fit temperature scaling on val."
    if card.calibration is not None:
        temperature = card.calibration.temperature
        curves[f"T = {temperature:.2f}"] = reliability(output / temperature, bundle.y_test)
        note = f"Temperature T = {temperature:.3f}, fitted on the validation split."
    return (
        "<h3>Calibration (test split)</h3>"
        + image(reliability_figure(curves), "reliability diagram")
        + f"<p class='muted'>{note}</p>"
    )


def _confident_mistakes(card: Card, bundle: DataBundle, output, labels) -> str:
    probabilities = output.softmax(dim=1)
    confidence, predicted = probabilities.max(dim=1)
    wrong = (predicted != bundle.y_test).nonzero().flatten()
    if len(wrong) == 0:
        return "<p>No test sample is misclassified.</p>"
    order = wrong[confidence[wrong].argsort(descending=True)][:NUM_WRONG]
    captions = [
        f"#{i}: true {labels[bundle.y_test[i]]}, said {labels[predicted[i]]} ({confidence[i]:.0%})"
        for i in order.tolist()
    ]
    heading = "<h3>Most confidently wrong test samples</h3>"
    meta = card.data
    raw = bundle.x_test[order].numpy() * np.asarray(meta.x_std) + np.asarray(meta.x_mean)
    if meta.kind == "tabular":
        names = meta.feature_names()
        rows = [[c, *(f"{v:.3g}" for v in r)] for c, r in zip(captions, raw, strict=True)]
        return heading + table(["sample", *names], rows)
    return heading + image(samples_figure(raw, captions, meta.kind), "mistakes")


def regression_section(task: Regression, model, bundle: DataBundle) -> str:
    output = predict_outputs(model, bundle.x_test)
    errors = task.per_sample_errors(output, bundle.y_test)
    worst = errors.argsort(descending=True)[:NUM_WRONG]
    rows = [[f"#{i}", f"{errors[i]:.4g}"] for i in worst.tolist()]
    return "<h2>Largest test errors</h2>" + table(["sample", "mean absolute error"], rows)


def reconstruction_section(run_dir: Path, card: Card, model, bundle: DataBundle) -> str:
    """The latent map (2-D codes, coloured by the dataset's labels) and, for images, a few
    test originals above their reconstructions. The map is also saved as `latent.png`."""
    output = predict_outputs(model, bundle.x_test)
    text = "<h2>Latent map</h2>"
    if card.model["latent_size"] == 2:
        with torch.no_grad():
            model.eval()
            latent = model.encode(bundle.x_test).numpy()
        labels = bundle.labels_test
        if card.data.task != "classification" or labels is None:
            labels = None  # regression targets or no labels: no colouring
        png = latent_figure(
            latent, None if labels is None else labels.numpy(), card.data.label_names
        )
        (run_dir / LATENT).write_bytes(png)
        text += image(png, "latent map")
    else:
        text += f"<p>Drawn for latent_size 2; this model has {card.model['latent_size']}.</p>"
    meta = card.data
    if meta.kind == "image":
        shown = slice(0, NUM_RECONSTRUCTIONS)
        pairs = torch.cat([bundle.x_test[shown], output[shown]]).numpy()
        raw = pairs * np.asarray(meta.x_std) + np.asarray(meta.x_mean)
        count = len(raw) // 2
        captions = [f"original #{i}" for i in range(count)] + [
            f"reconstruction #{i}" for i in range(count)
        ]
        text += "<h3>Test originals and reconstructions</h3>"
        text += image(samples_figure(raw, captions, "image"), "reconstructions")
    if card.model.get("variational"):
        samples = generate(model, bundle.meta, GRID_SIZE, seed=GRID_SEED)
        text += "<h3>Decoded draws from the prior N(0, I)</h3>"
        text += image(sample_grid(samples, meta.kind), "samples from the prior")
    return text


def clustering_section(num_clusters: int, model, bundle: DataBundle) -> str:
    """Test samples per cluster, and the test samples on their first two principal
    components, coloured by cluster."""
    inputs = bundle.x_test.reshape(len(bundle.x_test), -1).numpy()
    clusters = predict_outputs(model, bundle.x_test).argmax(dim=1).numpy()
    sizes = np.bincount(clusters, minlength=num_clusters)
    names = tuple(f"cluster {i}" for i in range(num_clusters))
    rows = [[name, int(size)] for name, size in zip(names, sizes, strict=True)]
    points = PCA(min(2, *inputs.shape)).fit_transform(inputs)
    points = np.pad(points, ((0, 0), (0, 2 - points.shape[1])))  # one feature: a line
    scatter = latent_figure(
        points, clusters, names, axis_name="principal component", title="test samples"
    )
    return (
        "<h2>Clusters</h2>"
        + table(["cluster", "test samples"], rows)
        + image(scatter, "test samples by cluster")
    )


def adversarial_section(model, bundle: DataBundle) -> str:
    samples = generate(model, bundle.meta, GRID_SIZE, seed=GRID_SEED)
    return (
        "<h2>Generated samples</h2><p>From the final generator, noise seed "
        f"{GRID_SEED} (as in <code>samples.png</code>; <code>neuralab generate</code> "
        "draws more).</p>" + image(sample_grid(samples, bundle.meta.kind), "generated samples")
    )
