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

from neuralab.card import Card, Diagnostics, Privacy
from neuralab.data import DataBundle
from neuralab.report.figures import gradient_norm_figure
from neuralab.report.reuse import Table, transfer_tables
from neuralab.tasks import task_from_card

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


def write_run_report(
    run_dir: Path,
    card: Card,
    config_text: str,
    model: Any,
    bundle: DataBundle,
    *,
    explanations: str = "",
) -> Path:
    """Write `run_dir/report.html` from the card, the config and the test predictions."""
    task = task_from_card(card)
    sections = [
        f"<h1>{html.escape(card.name)}</h1>"
        f"<p class='muted'>{card.family} · {task.name} · "
        f"{card.data.dataset} · seed {card.seed}</p>",
        _summary(card),
        _data_section(card),
    ]
    curves = run_dir / "curves.png"
    if curves.is_file():
        sections.append("<h2>Learning curves</h2>" + image(curves.read_bytes(), "curves"))
    sections.append(task.report_section(run_dir, card, model, bundle))
    if card.transfer is not None:
        sections.append(tables(transfer_tables(card.transfer)))
    if card.privacy is not None:
        sections.append(_privacy_section(card.privacy))
    sections.append(explanations)  # empty unless asked for
    sections.append(_health_section(card.diagnostics or Diagnostics()))
    sections.append(f"<h2>Config</h2><pre>{html.escape(config_text)}</pre>")
    versions = json.dumps(card.versions.model_dump(by_alias=True), indent=2)
    sections.append(f"<h2>Versions</h2><pre>{html.escape(versions)}</pre>")
    path = run_dir / "report.html"
    path.write_text(page(f"neuralab: {card.name}", sections), encoding="utf-8")
    return path


def tables(parts: list[Table]) -> str:
    return "".join(
        f"<h2>{html.escape(heading)}</h2>{table(header, rows)}" for heading, header, rows in parts
    )


def _summary(card: Card) -> str:
    rows = [
        [split, *(f"{v:.4f}" for v in metrics.values())] for split, metrics in card.metrics.items()
    ]
    header = ["split", *card.metrics["test"].keys()]
    timing: list[list[Any]] = [
        ["train seconds", card.train_seconds],
        ["inference ms per 1,000 samples", card.inference_ms_per_1000],
        ["epochs run (weights kept from)", f"{card.epochs_run} ({card.best_epoch})"],
        ["parameters", f"{card.num_parameters:,}"],
    ]
    return "<h2>Results</h2>" + table(header, rows) + table(["timing", ""], timing)


def _data_section(card: Card) -> str:
    meta = card.data
    rows = [[split, size] for split, size in meta.sizes.items()]
    scaling = (
        f"token ids over a vocabulary of {len(meta.vocab)} symbols"
        if meta.kind == "text"
        else "standardised with statistics of the training split only"
    )
    return (
        f"<h2>Data</h2><p>{meta.kind} inputs of shape {meta.input_shape}; "
        f"{scaling}.</p>" + table(["split", "samples"], rows)
    )


def _privacy_section(privacy: Privacy) -> str:
    rows: list[list[Any]] = [
        ["epsilon spent (budget)", f"{privacy.epsilon_spent:.3f} ({privacy.epsilon_target})"],
        ["delta", f"{privacy.delta:.1e}"],
        ["per-sample gradient clip", privacy.max_grad_norm],
        ["noise multiplier", f"{privacy.noise_multiplier:.3f}"],
        ["sampling rate per step", f"{privacy.sample_rate:.4f}"],
        ["accountant", privacy.accountant],
    ]
    return (
        "<h2>Privacy</h2><p>Trained with DP-SGD (Opacus): the training split is protected at "
        "this (epsilon, delta); the validation split, used to pick epochs, is not.</p>"
        + table(["", ""], rows)
    )


def _health_section(diagnostics: Diagnostics) -> str:
    text = "<h2>Training health</h2>"
    warnings = diagnostics.warnings
    text += "".join(f"<p class='warning'>{html.escape(w)}</p>" for w in warnings)
    if not warnings:
        text += "<p>No warnings: gradients stayed in range, no overfitting signal.</p>"
    if diagnostics.gradient_norms:
        text += image(gradient_norm_figure(diagnostics.gradient_norms), "gradient norms")
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
