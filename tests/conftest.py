"""Shared fixtures: tiny experiments, a CLI runner, and isolated output folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from neuralab.card import Card, Versions
from neuralab.cli import main
from neuralab.data import DataMeta

# Tiny models gain nothing from intra-op threads, and on a busy 2-core machine OpenMP
# spin-waiting makes them ~100x slower; one thread keeps the suite fast and steady.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
# the smallest vision transformer: four 4x4 patches of an 8x8 digit, one layer
TINY_VIT = {
    "family": "transformer",
    "d_model": 8,
    "num_heads": 2,
    "num_layers": 1,
    "dim_feedforward": 16,
    "patch_size": 4,
}


SIGNAL_FEATURES = ["a", "b", "signal", "c", "d"]


def write_signal_csv(path: Path) -> list[str]:
    """400 rows of five normal columns, labelled `signal > 0`: the other four are noise.
    Returns the file's lines (header first)."""
    rows = np.random.default_rng(0).normal(size=(400, 5)).round(4)
    labels = np.where(rows[:, 2] > 0, "pos", "neg")
    lines = [",".join([*SIGNAL_FEATURES, "label"])]
    lines += [",".join([*map(str, row), label]) for row, label in zip(rows, labels, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return lines


def tiny_experiment(**sections) -> dict:
    """A digits MLP that trains in well under a second; sections override whole keys."""
    experiment = {
        "name": "tiny",
        "seed": 0,
        "data": {"dataset": "digits"},
        "model": {"family": "mlp", "hidden_sizes": [16]},
        "train": {"epochs": 2, "batch_size": 128},
    }
    experiment.update(sections)
    return experiment


CARD_DATA = DataMeta(
    dataset="digits",
    kind="tabular",
    task="classification",
    input_shape=(4,),
    num_outputs=2,
    label_names=("no", "yes"),
    x_mean=[0.0] * 4,
    x_std=[1.0] * 4,
    sizes={"train": 6, "val": 2, "test": 2},
)


def make_card(**fields) -> Card:
    """A valid card of a made-up classifier run; `fields` replace whole entries."""
    card = {
        "name": "made-up",
        "model": {"family": "mlp", "hidden_sizes": [8]},
        "task": "classification",
        "task_settings": {"num_classes": 2},
        "data": CARD_DATA,
        "metrics": {"val": {"loss": 0.5, "accuracy": 0.75}, "test": {"loss": 0.6, "accuracy": 0.5}},
        "num_parameters": 58,
        "train_seconds": 0.25,
        "inference_ms_per_1000": 1.5,
        "epochs_run": 3,
        "best_epoch": 2,
        "seed": 0,
        "processes": 1,
        "versions": Versions(
            neuralab="0.1.0",
            torch="2.13.0",
            numpy="2.0.0",
            scikit_learn="1.6.0",
            python="3.11.9",
            platform="Linux",
            torch_threads=1,
        ),
    }
    return Card(**{**card, **fields})


@pytest.fixture
def run_cli(capsys):
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        try:
            main(list(args))
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
