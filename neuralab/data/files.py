"""User data from files: CSV tables with numeric and categorical columns.

Numeric columns are used as they are; categorical columns (any value that is not a
number) are one-hot encoded with the categories seen in the file. The target column's
type decides the task unless the experiment states it.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Literal

import numpy as np

from neuralab.data.bundle import Feature, RawData, TaskKind
from neuralab.errors import NeuralabError
from neuralab.schema import Strict

MISSING = {"", "na", "nan", "null", "none"}
# An integer target with at most this many distinct values is read as class labels.
MAX_INTEGER_CLASSES = 20
# A column is numeric when at least this share of its present values are numbers; the
# rest are then reported as bad rows instead of silently turning it categorical.
NUMERIC_SHARE = 0.9


class CSVConfig(Strict):
    """A CSV file with a header row; `target` names the column to predict."""

    name: Literal["csv"] = "csv"
    csv: Path
    target: str

    def load(self, seed: int, task: TaskKind | None = None) -> RawData:
        columns = read_csv_columns(self.csv, where="data.dataset.csv")
        if self.target not in columns:
            raise NeuralabError(
                "data.dataset.target",
                f"column '{self.target}' not in {self.csv.name}",
                f"columns: {', '.join(columns)}",
            )
        target = columns.pop(self.target)
        if not columns:
            raise NeuralabError("data.dataset.csv", f"{self.csv.name} has no feature columns")
        features = tuple(
            infer_feature(name, values, self.csv.name) for name, values in columns.items()
        )
        x = encode_features(columns, features, source=self.csv.name)
        y, task, label_names = _encode_target(target, self.target, self.csv.name, task)
        return RawData(x, y, kind="tabular", task=task, label_names=label_names, features=features)


def read_csv_columns(path: Path, *, where: str) -> dict[str, list[str]]:
    """The file's columns by header name, values as stripped strings."""
    if not path.is_file():
        raise NeuralabError(
            where,
            f"file not found: {path}",
            "check the path; relative paths are read from the experiment file's folder",
        )
    with path.open(newline="", encoding="utf-8") as file:
        rows = [row for row in csv.reader(file) if row]
    if len(rows) < 2:
        raise NeuralabError(where, f"{path.name} is empty", "expected a header row and data rows")
    header = [name.strip() for name in rows[0]]
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise NeuralabError(
                where,
                f"{path.name} line {line} has {len(row)} fields, the header has {len(header)}",
            )
    return {name: [row[i].strip() for row in rows[1:]] for i, name in enumerate(header)}


def infer_feature(name: str, values: list[str], source: str) -> Feature:
    """Numeric if (nearly) every present value parses as a number, else categorical."""
    present = [v for v in values if v.lower() not in MISSING]
    if present and sum(map(_is_number, present)) >= NUMERIC_SHARE * len(present):
        _check_complete(name, values, source)
        return Feature(name, "numeric")
    return Feature(name, "categorical", tuple(sorted(set(values))))


def encode_features(
    columns: dict[str, list[str]], features: tuple[Feature, ...], source: str
) -> np.ndarray:
    """Columns as read from a CSV -> float32 matrix; unseen categories encode as all zeros."""
    blocks = []
    for feature in features:
        if feature.name not in columns:
            raise NeuralabError(
                source,
                f"column '{feature.name}' is missing",
                f"the model was trained on: {', '.join(f.name for f in features)}",
            )
        values = columns[feature.name]
        if feature.kind == "numeric":
            _check_complete(feature.name, values, source)
            blocks.append(np.array(values, dtype=np.float32)[:, None])
        else:
            index = {c: i for i, c in enumerate(feature.categories)}
            onehot = np.zeros((len(values), feature.width), dtype=np.float32)
            for row, value in enumerate(values):
                if value in index:
                    onehot[row, index[value]] = 1.0
            blocks.append(onehot)
    return np.concatenate(blocks, axis=1)


def _encode_target(
    values: list[str], name: str, source: str, task: TaskKind | None
) -> tuple[np.ndarray, TaskKind, tuple[str, ...]]:
    numeric = all(_is_number(v) for v in values)
    if task is None:
        few_integers = (
            numeric
            and len(set(values)) <= MAX_INTEGER_CLASSES
            and all(float(v).is_integer() for v in values)
        )
        task = "regression" if numeric and not few_integers else "classification"
    if task == "regression":
        if not numeric:
            if any(_is_number(v) for v in values):  # mostly numbers: name the bad rows
                _check_complete(name, values, source)
            raise NeuralabError(
                "task",
                f"regression needs a numeric target, but column '{name}' holds text",
                "use task: classification",
            )
        return np.array(values, dtype=np.float32)[:, None], task, ()
    # numeric labels sort by value, so "10" comes after "9"
    names = tuple(sorted(set(values), key=float if numeric else None))
    index = {label: i for i, label in enumerate(names)}
    return np.array([index[v] for v in values], dtype=np.int64), task, names


def _check_complete(name: str, values: list[str], source: str) -> None:
    bad = [line for line, v in enumerate(values, start=2) if not _is_number(v)]
    if bad:
        shown = ", ".join(map(str, bad[:10])) + (" ..." if len(bad) > 10 else "")
        raise NeuralabError(
            source,
            f"column '{name}' has {len(bad)} missing or non-numeric value(s) at line(s) {shown}",
            "fill or drop those rows",
        )


def _is_number(value: str) -> bool:
    try:
        return np.isfinite(float(value))
    except ValueError:
        return False
