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
    in standardised units."""

    labels: list[str] | None = None
    probabilities: np.ndarray | None = None
    values: np.ndarray | None = None
    label_names: tuple[str, ...] = ()
    reconstruction: bool = False
    texts: list[str] | None = None

    def __len__(self) -> int:
        if self.texts is not None:
            return len(self.texts)
        return len(self.labels) if self.labels is not None else len(self._values())

    def to_csv(self) -> str:
        """`prediction,p_<label>...` rows, or `prediction` (`prediction_<i>`) values."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if self.texts is not None:
            writer.writerow(["prediction"])
            writer.writerows([[text] for text in self.texts])
            return buffer.getvalue()
        if self.labels is not None and self.probabilities is not None:
            writer.writerow(["prediction", *(f"p_{name}" for name in self.label_names)])
            for label, row in zip(self.labels, self.probabilities, strict=True):
                writer.writerow([label, *(f"{p:.6f}" for p in row)])
            return buffer.getvalue()
        values = self._values()
        if self.reconstruction:
            writer.writerow(["anomaly_score"])
            writer.writerows([[f"{v:.6g}"] for v in values])
            return buffer.getvalue()
        width = values.shape[1]
        writer.writerow(["prediction"] if width == 1 else [f"prediction_{i}" for i in range(width)])
        writer.writerows([[f"{v:.6g}" for v in row] for row in values])
        return buffer.getvalue()

    def _values(self) -> np.ndarray:
        if self.values is None:
            raise ValueError("a classification prediction has labels, not values")
        return self.values
