"""Test accuracy, train time and size of every model on MNIST-1D and on the digits.

MNIST-1D (Greydanus 2020) with its standard offline-generated data (4,000 training and
1,000 test sequences): logistic regression, MLP, CNN, GRU, ResNet and transformer, each
over 3 seeds, beside the paper's table. Digits: every classical baseline and every deep
family that classifies images. Each row comes from `neuralab.compare` on one experiment
(the shipped example where there is one), so it is what a user gets by running it.

    python -m benchmarks.accuracy [--quick]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import neuralab
from benchmarks.common import EXAMPLES, ROOT, machine, parse_args, write_result
from neuralab.baselines import BASELINES

SEEDS = 3
# Test accuracy in the MNIST-1D paper's table (Greydanus 2020, table 1).
PAPER = {"logreg": 0.32, "mlp": 0.68, "cnn": 0.94, "gru": 0.91}

# No shipped example trains an MLP on MNIST-1D: two hidden layers of 100, as in the paper.
MNIST1D_MLP: dict[str, Any] = {
    "name": "mnist1d-mlp",
    "data": {"dataset": "mnist1d", "split": {"val": 0.1}},
    "model": {"family": "mlp", "hidden_sizes": [100, 100]},
    "optim": {"name": "adamw", "lr": 0.003, "weight_decay": 0.01},
    "schedule": {"name": "onecycle", "max_lr_factor": 3},
    "train": {"epochs": 40, "batch_size": 100},
}
# (label, experiment, models compared on it): an example file, or a dict given above.
MNIST1D: list[tuple[str, str | dict[str, Any], list[str]]] = [
    ("logreg", "mnist1d-cnn.yaml", ["logreg"]),
    ("mlp", MNIST1D_MLP, ["mlp"]),
    ("cnn", "mnist1d-cnn.yaml", ["cnn"]),
    ("gru", "mnist1d-gru.yaml", ["rnn"]),
    ("resnet", "mnist1d-resnet.yaml", ["resnet"]),
    ("transformer", "mnist1d-transformer.yaml", ["transformer"]),
]
CLASSIFIERS = [c.model_fields["family"].default for c in BASELINES if "classification" in c.tasks]
# The rnn family has no digits example: its defaults, with digits-cnn.yaml's training.
DIGITS: list[tuple[str, str | dict[str, Any], list[str]]] = [
    ("baselines", "digits-cnn.yaml", CLASSIFIERS),
    ("mlp", "digits-mlp.yaml", ["mlp"]),
    ("cnn", "digits-cnn.yaml", ["cnn"]),
    ("resnet", "digits-resnet.yaml", ["resnet"]),
    ("rnn", "digits-cnn.yaml", ["rnn"]),
    ("transformer", "digits-vit.yaml", ["transformer"]),
]


def run_table(
    entries: list[tuple[str, str | dict[str, Any], list[str]]], seeds: int, quick: bool
) -> list[dict[str, Any]]:
    rows = []
    for label, experiment, models in entries:
        path = EXAMPLES / experiment if isinstance(experiment, str) else None
        source = str(path.relative_to(ROOT)) if path else experiment
        overrides = ["train.epochs=1"] if quick else []
        with tempfile.TemporaryDirectory() as out:
            comparison = neuralab.compare(
                path or experiment,
                models=models,
                seeds=seeds,
                overrides=overrides,
                out=out,
            )
        for row in comparison.rows:
            name = label if len(models) == 1 else row.model
            rows.append(
                {
                    "model": name,
                    "family": row.model,
                    "experiment": source,
                    "accuracy_mean": row.mean,
                    "accuracy_std": row.std,
                    "accuracies": row.values,
                    "train_seconds": row.train_seconds,
                    "parameters": row.num_parameters,
                    "seeds": len(row.values),
                }
            )
            print(f"{name}: {row.mean:.4f} ± {row.std:.4f}  {row.train_seconds:.1f} s")
    return rows


def main(argv: list[str] | None = None) -> Path:
    args = parse_args("test accuracy on MNIST-1D and digits, 3 seeds", argv)
    started, before = time.perf_counter(), machine()
    seeds = 1 if args.quick else SEEDS
    payload = {
        "machine": before,
        "paper": PAPER,
        "mnist1d": run_table(MNIST1D, seeds, args.quick),
        "digits": run_table(DIGITS, seeds, args.quick),
    }
    return write_result(args, "accuracy", started, payload)


if __name__ == "__main__":
    main()
