"""`report.html`: one self-contained page per run (images embedded, no server, no
scripts) with what a careful practitioner checks: the config, the data, the curves, the
errors, the per-class picture (or, for autoencoders, the latent map; for GANs, generated
samples), training health, and timing."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuralab.calibration import reliability
from neuralab.data import DataBundle
from neuralab.report.figures import (
    confusion_figure,
    gradient_norm_figure,
    latent_figure,
    reliability_figure,
    sample_grid,
    samples_figure,
)
from neuralab.report.reuse import Table, heads_table, transfer_tables
from neuralab.report.samples import GRID_SEED, GRID_SIZE, generate
from neuralab.train import predict_outputs

NUM_WRONG = 12
NUM_RECONSTRUCTIONS = 6
LATENT = "latent.png"
STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 1080px; margin: 2em auto; padding: 0 1em;
       color: #1d232a; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
td, th { border: 1px solid #d0d7de; padding: 3px 10px; text-align: right; }
th { background: #f3f5f7; } td:first-child, th:first-child { text-align: left; }
pre { background: #f6f8fa; padding: 1em; overflow-x: auto; font-size: 13px; }
.warning { background: #fff4e5; border-left: 4px solid #f0a030; padding: 0.4em 0.8em; }
.muted { color: #5b6570; } img { max-width: 100%; }
"""


def image(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def page(title: str, sections: list[str]) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(sections)}</body></html>\n"
    )


UNREAD_OUTPUTS = ("language_model", "seq2seq", "multitask", "adversarial")


def write_run_report(
    run_dir: Path,
    card: dict[str, Any],
    config_text: str,
    model: Any,
    bundle: DataBundle,
    *,
    explanations: str = "",
) -> Path:
    """Write `run_dir/report.html` from the card, the config and the test predictions."""
    # the test outputs, for the sections that read them (a language model's are too large)
    output = None if card["task"] in UNREAD_OUTPUTS else predict_outputs(model, bundle.x_test)
    sections = [
        f"<h1>{html.escape(card['name'])}</h1>"
        f"<p class='muted'>{card['model']['family']} · {card['task']} · "
        f"{card['data']['dataset']} · seed {card['seed']}</p>",
        _summary(card),
        _data_section(card, bundle),
    ]
    curves = run_dir / "curves.png"
    if curves.is_file():
        sections.append("<h2>Learning curves</h2>" + image(curves.read_bytes(), "curves"))
    if card["task"] == "classification":
        sections.append(_classification_section(card, bundle, output))
    elif card["task"] == "reconstruction":
        sections.append(_reconstruction_section(run_dir, card, model, bundle, output))
    elif card["task"] == "language_model":
        sections.append(_generation_section(model, bundle))
    elif card["task"] == "seq2seq":
        sections.append(_translation_section(model, bundle))
    elif card["task"] == "multitask":
        sections.append(_tables([heads_table(card)]))
    elif card["task"] == "adversarial":
        sections.append(_adversarial_section(model, bundle))
    else:
        sections.append(_regression_section(card, bundle, output))
    if "transfer" in card:
        sections.append(_tables(transfer_tables(card["transfer"])))
    if "privacy" in card:
        sections.append(_privacy_section(card["privacy"]))
    sections.append(explanations)  # empty unless asked for
    sections.append(_health_section(card))
    sections.append(f"<h2>Config</h2><pre>{html.escape(config_text)}</pre>")
    sections.append(
        f"<h2>Versions</h2><pre>{html.escape(json.dumps(card['versions'], indent=2))}</pre>"
    )
    path = run_dir / "report.html"
    path.write_text(page(f"neuralab: {card['name']}", sections), encoding="utf-8")
    return path


def _tables(tables: list[Table]) -> str:
    return "".join(
        f"<h2>{html.escape(heading)}</h2>{table(header, rows)}" for heading, header, rows in tables
    )


def _summary(card: dict[str, Any]) -> str:
    rows = [
        [split, *(f"{v:.4f}" for v in metrics.values())]
        for split, metrics in card["metrics"].items()
    ]
    header = ["split", *card["metrics"]["test"].keys()]
    timing = [
        ["train seconds", card["train_seconds"]],
        ["inference ms per 1,000 samples", card["inference_ms_per_1000"]],
        ["epochs run (weights kept from)", f"{card['epochs_run']} ({card['best_epoch']})"],
        ["parameters", f"{card['num_parameters']:,}"],
    ]
    return "<h2>Results</h2>" + table(header, rows) + table(["timing", ""], timing)


def _data_section(card: dict[str, Any], bundle: DataBundle) -> str:
    meta = card["data"]
    rows = [[split, size] for split, size in meta["sizes"].items()]
    scaling = (
        f"token ids over a vocabulary of {len(meta['vocab'])} symbols"
        if meta["kind"] == "text"
        else "standardised with statistics of the training split only"
    )
    text = (
        f"<h2>Data</h2><p>{meta['kind']} inputs of shape {tuple(meta['input_shape'])}; "
        f"{scaling}.</p>" + table(["split", "samples"], rows)
    )
    if card["task"] == "classification":
        counts = [
            torch.bincount(y, minlength=len(meta["label_names"])).tolist()
            for y in (bundle.y_train, bundle.y_val, bundle.y_test)
        ]
        balance = [[name, *(c[i] for c in counts)] for i, name in enumerate(meta["label_names"])]
        text += "<h3>Class balance</h3>" + table(["class", "train", "val", "test"], balance)
    return text


def _generation_section(model, bundle: DataBundle) -> str:
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


def _translation_section(model, bundle: DataBundle) -> str:
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


def _classification_section(card: dict[str, Any], bundle: DataBundle, output) -> str:
    labels = tuple(card["data"]["label_names"])
    matrix = np.asarray(card["confusion_matrix"])
    true_counts, predicted_counts = matrix.sum(axis=1), matrix.sum(axis=0)
    rows = []
    for i, name in enumerate(labels):
        precision = matrix[i, i] / predicted_counts[i] if predicted_counts[i] else 0.0
        recall = matrix[i, i] / true_counts[i] if true_counts[i] else 0.0
        rows.append([name, f"{precision:.3f}", f"{recall:.3f}", int(true_counts[i])])
    text = "<h2>Test errors</h2>" + image(
        confusion_figure(card["confusion_matrix"], labels), "confusion matrix"
    )
    text += "<h3>Per class</h3>" + table(["class", "precision", "recall", "support"], rows)
    return (
        text
        + _calibration(card, bundle, output)
        + _confident_mistakes(card, bundle, output, labels)
    )


def _calibration(card: dict[str, Any], bundle: DataBundle, output) -> str:
    """The reliability diagram of the test split, before and after temperature scaling."""
    curves = {"as trained": reliability(output, bundle.y_test)}
    note = "Run <code>neuralab calibrate RUN_DIR</code> to fit temperature scaling on val."
    if "calibration" in card:
        temperature = card["calibration"]["temperature"]
        curves[f"T = {temperature:.2f}"] = reliability(output / temperature, bundle.y_test)
        note = f"Temperature T = {temperature:.3f}, fitted on the validation split."
    return (
        "<h3>Calibration (test split)</h3>"
        + image(reliability_figure(curves), "reliability diagram")
        + f"<p class='muted'>{note}</p>"
    )


def _confident_mistakes(card, bundle: DataBundle, output, labels) -> str:
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
    meta = card["data"]
    raw = bundle.x_test[order].numpy() * np.asarray(meta["x_std"]) + np.asarray(meta["x_mean"])
    if meta["kind"] == "tabular":
        names = _feature_names(meta)
        rows = [[c, *(f"{v:.3g}" for v in r)] for c, r in zip(captions, raw, strict=True)]
        return heading + table(["sample", *names], rows)
    return heading + image(samples_figure(raw, captions, meta["kind"]), "mistakes")


def _feature_names(meta: dict[str, Any]) -> list[str]:
    if not meta["features"]:
        return [f"x{i}" for i in range(meta["input_shape"][0])]
    names = []
    for feature in meta["features"]:
        if feature["kind"] == "numeric":
            names.append(feature["name"])
        else:
            names += [f"{feature['name']}={c}" for c in feature["categories"]]
    return names


def _regression_section(card, bundle: DataBundle, output) -> str:
    meta = bundle.meta
    errors = (meta.unscale_targets(output) - meta.unscale_targets(bundle.y_test)).abs().mean(1)
    worst = errors.argsort(descending=True)[:NUM_WRONG]
    rows = [[f"#{i}", f"{errors[i]:.4g}"] for i in worst.tolist()]
    return "<h2>Largest test errors</h2>" + table(["sample", "mean absolute error"], rows)


def _reconstruction_section(run_dir: Path, card, model, bundle: DataBundle, output) -> str:
    """The latent map (2-D codes, coloured by the dataset's labels) and, for images, a few
    test originals above their reconstructions. The map is also saved as `latent.png`."""
    text = "<h2>Latent map</h2>"
    if card["model"]["latent_size"] == 2:
        with torch.no_grad():
            model.eval()
            latent = model.encode(bundle.x_test).numpy()
        labels = bundle.labels_test
        if card["data"]["task"] != "classification" or labels is None:
            labels = None  # regression targets or no labels: no colouring
        png = latent_figure(
            latent, None if labels is None else labels.numpy(), tuple(card["data"]["label_names"])
        )
        (run_dir / LATENT).write_bytes(png)
        text += image(png, "latent map")
    else:
        text += f"<p>Drawn for latent_size 2; this model has {card['model']['latent_size']}.</p>"
    meta = card["data"]
    if meta["kind"] == "image":
        shown = slice(0, NUM_RECONSTRUCTIONS)
        pairs = torch.cat([bundle.x_test[shown], output[shown]]).numpy()
        raw = pairs * np.asarray(meta["x_std"]) + np.asarray(meta["x_mean"])
        count = len(raw) // 2
        captions = [f"original #{i}" for i in range(count)] + [
            f"reconstruction #{i}" for i in range(count)
        ]
        text += "<h3>Test originals and reconstructions</h3>"
        text += image(samples_figure(raw, captions, "image"), "reconstructions")
    if card["model"].get("variational"):
        samples = generate(model, bundle.meta, GRID_SIZE, seed=GRID_SEED)
        text += "<h3>Decoded draws from the prior N(0, I)</h3>"
        text += image(sample_grid(samples, meta["kind"]), "samples from the prior")
    return text


def _privacy_section(privacy: dict[str, Any]) -> str:
    rows = [
        ["epsilon spent (budget)", f"{privacy['epsilon_spent']:.3f} ({privacy['epsilon_target']})"],
        ["delta", f"{privacy['delta']:.1e}"],
        ["per-sample gradient clip", privacy["max_grad_norm"]],
        ["noise multiplier", f"{privacy['noise_multiplier']:.3f}"],
        ["sampling rate per step", f"{privacy['sample_rate']:.4f}"],
        ["accountant", privacy["accountant"]],
    ]
    return (
        "<h2>Privacy</h2><p>Trained with DP-SGD (Opacus): the training split is protected at "
        "this (epsilon, delta); the validation split, used to pick epochs, is not.</p>"
        + table(["", ""], rows)
    )


def _adversarial_section(model, bundle: DataBundle) -> str:
    samples = generate(model, bundle.meta, GRID_SIZE, seed=GRID_SEED)
    return (
        "<h2>Generated samples</h2><p>From the final generator, noise seed "
        f"{GRID_SEED} (as in <code>samples.png</code>; <code>neuralab generate</code> "
        "draws more).</p>" + image(sample_grid(samples, bundle.meta.kind), "generated samples")
    )


def _health_section(card: dict[str, Any]) -> str:
    diagnostics = card.get("diagnostics") or {}
    text = "<h2>Training health</h2>"
    warnings = diagnostics.get("warnings", [])
    text += "".join(f"<p class='warning'>{html.escape(w)}</p>" for w in warnings)
    if not warnings:
        text += "<p>No warnings: gradients stayed in range, no overfitting signal.</p>"
    if diagnostics.get("gradient_norms"):
        text += image(gradient_norm_figure(diagnostics["gradient_norms"]), "gradient norms")
    return text


def write_comparison_report(folder: Path, comparison: Any, *, title: str) -> Path:
    """Write `folder/report.html`: the leaderboard, the plot, links to each run's report."""
    leader = comparison.rows[0].model
    rows = [
        [
            row.model,
            f"{row.mean:.4f} ± {row.std:.4f}",
            len(row.values),
            f"{row.train_seconds:.2f}",
            f"{row.inference_ms_per_1000:.1f}",
            f"{row.num_parameters:,}",
            row.verdict(leader),
        ]
        for row in comparison.rows
    ]
    header = [
        "model",
        f"test {comparison.metric}",
        "seeds",
        "train s",
        "infer ms/1k",
        "params",
        "vs leader",
    ]
    links = "".join(
        f'<li><a href="runs/{html.escape(run.path.name)}/report.html">'
        f"{html.escape(run.path.name)}</a></li>"
        for runs in comparison.runs.values()
        for run in runs
    )
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Leaderboard</h2>" + table(header, rows),
        f"<p>Significance against the leader: {html.escape(comparison.test)}; "
        "p &lt; 0.05 is marked worse, otherwise tie.</p>",
        image((folder / "comparison.png").read_bytes(), "comparison"),
        "<h2>Learning curves</h2>" + image((folder / "curves.png").read_bytes(), "curves"),
        f"<h2>Runs</h2><ul>{links}</ul>",
    ]
    path = folder / "report.html"
    path.write_text(page(f"neuralab: {title}", sections), encoding="utf-8")
    return path
