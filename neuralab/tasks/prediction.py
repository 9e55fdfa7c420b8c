"""`Prediction`: what `predict` returns, whichever task made it, and its CSV form."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Prediction:
    """Predictions for N samples: label names and class probabilities (classification),
    values in the target's units (regression), output texts (seq2seq), or, with
    `reconstruction`, one anomaly score per sample: its mean squared reconstruction error
    in standardised units. `names` says which file each sample came from, where it did."""

    labels: list[str] | None = None
    probabilities: np.ndarray | None = None
    values: np.ndarray | None = None
    label_names: tuple[str, ...] = ()
    reconstruction: bool = False
    texts: list[str] | None = None
    names: list[str] | None = None  # one per sample: the image file it was read from
    column: str = "prediction"  # the CSV header of one value per sample (e.g. `cluster`)

    def __len__(self) -> int:
        if self.texts is not None:
            return len(self.texts)
        return len(self.labels) if self.labels is not None else len(self._values())

    def to_csv(self) -> str:
        """`prediction,p_<label>...` rows, or `prediction` (`prediction_<i>`) values; with
        `names` (the image files predicted), a `file` column first."""
        header, rows = self._table()
        if self.names is not None:
            header = ["file", *header]
            rows = [[name, *row] for name, row in zip(self.names, rows, strict=True)]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return buffer.getvalue()

    def _table(self) -> tuple[list[str], list[list[str]]]:
        if self.texts is not None:
            return ["prediction"], [[text] for text in self.texts]
        if self.labels is not None and self.probabilities is not None:
            header = ["prediction", *(f"p_{name}" for name in self.label_names)]
            rows = zip(self.labels, self.probabilities, strict=True)
            return header, [[label, *(f"{p:.6f}" for p in row)] for label, row in rows]
        values = self._values()
        if self.reconstruction:
            return ["anomaly_score"], [[f"{v:.6g}"] for v in values]
        width = values.shape[1]
        header = [self.column] if width == 1 else [f"prediction_{i}" for i in range(width)]
        return header, [[f"{v:.6g}" for v in row] for row in values]

    def _values(self) -> np.ndarray:
        if self.values is None:
            raise ValueError("a classification prediction has labels, not values")
        return self.values
