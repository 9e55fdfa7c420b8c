"""User data from files: CSV tables with numeric and categorical columns.

Numeric columns are used as they are; categorical columns (any value that is not a
number) are one-hot encoded with the categories seen in the file. The target column's
type decides the task unless the experiment states it. Problems name file lines.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from neuralab.data.bundle import Feature, RawData, TargetKind
from neuralab.data.source import DataSource
from neuralab.errors import NeuralabError

MISSING = {"", "na", "nan", "null", "none"}
# An integer target with at most this many distinct values is read as class labels.
MAX_INTEGER_CLASSES = 20
# A column is numeric when at least this share of its present values are numbers; the
# rest are then reported as bad rows instead of silently turning it categorical.
NUMERIC_SHARE = 0.9


@dataclass(frozen=True)
class Table:
    """A CSV file's columns by header name (values as stripped strings), and the file
    line each row came from, so errors can point at it."""

    source: str
    columns: dict[str, list[str]]
    lines: list[int]

    def check_complete(self, name: str) -> None:
        """Every value of column `name` must be a finite number."""
        bad = [
            line
            for line, v in zip(self.lines, self.columns[name], strict=True)
            if not _is_number(v)
        ]
        if bad:
            shown = ", ".join(map(str, bad[:10])) + (" ..." if len(bad) > 10 else "")
            raise NeuralabError(
                self.source,
                f"column '{name}' has {len(bad)} missing or non-numeric value(s) at line(s) "
                f"{shown}",
                "fill or drop those rows",
            )


class CSVConfig(DataSource):
    """A CSV file with a header row; `target` names the column to predict."""

    name: Literal["csv"] = "csv"
    path_keys: ClassVar[tuple[str, ...]] = ("csv",)
    shorthand: ClassVar[str | None] = "csv"
    csv: Path
    target: str | None = None  # not needed when a `tasks:` section names the targets

    def load(self, seed: int, task: TargetKind | None = None) -> RawData:
        if self.target is None:
            raise NeuralabError(
                "data.dataset.target",
                "required key is missing",
                "name the column to predict, or declare several under tasks:",
            )
        table = read_csv(self.csv, where="data.dataset.csv")
        if self.target not in table.columns:
            raise NeuralabError(
                "data.dataset.target",
                f"column '{self.target}' not in {self.csv.name}",
                f"columns: {', '.join(table.columns)}",
            )
        names = [name for name in table.columns if name != self.target]
        if not names:
            raise NeuralabError("data.dataset.csv", f"{self.csv.name} has no feature columns")
        features = tuple(infer_feature(table, name) for name in names)
        x = encode_features(table, features)
        y, task, label_names = encode_target(table, self.target, task)
        return RawData(x, y, kind="tabular", task=task, label_names=label_names, features=features)


def read_csv(path: Path, *, where: str) -> Table:
    """Read a CSV with a header row; ragged rows are refused with their line number."""
    if not path.is_file():
        raise NeuralabError(
            where,
            f"file not found: {path}",
            "check the path; relative paths are read from the experiment file's folder",
        )
    rows, lines = [], []
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.reader(file)
        for row in reader:
            if row:  # blank lines carry no sample
                rows.append(row)
                lines.append(reader.line_num)
    if len(rows) < 2:
        raise NeuralabError(where, f"{path.name} is empty", "expected a header row and data rows")
    header = [name.strip() for name in rows[0]]
    for line, row in zip(lines[1:], rows[1:], strict=True):
        if len(row) != len(header):
            raise NeuralabError(
                where,
                f"{path.name} line {line} has {len(row)} fields, the header has {len(header)}",
            )
    columns = {name: [row[i].strip() for row in rows[1:]] for i, name in enumerate(header)}
    return Table(path.name, columns, lines[1:])


def infer_feature(table: Table, name: str) -> Feature:
    """Numeric if (nearly) every present value parses as a number, else categorical."""
    values = table.columns[name]
    if _mostly_numbers(values):
        table.check_complete(name)
        return Feature(name, "numeric")
    return Feature(name, "categorical", tuple(sorted(set(values))))


def encode_features(table: Table, features: tuple[Feature, ...]) -> np.ndarray:
    """A table's columns -> float32 matrix; categories unseen in training encode as zeros."""
    missing = [f"'{f.name}'" for f in features if f.name not in table.columns]
    if missing:
        raise NeuralabError(
            table.source,
            f"column{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing",
            f"the model was trained on: {', '.join(f.name for f in features)}",
        )
    blocks = []
    for feature in features:
        values = table.columns[feature.name]
        if feature.kind == "numeric":
            table.check_complete(feature.name)
            blocks.append(np.array(values, dtype=np.float32)[:, None])
        else:
            index = {c: i for i, c in enumerate(feature.categories)}
            onehot = np.zeros((len(values), feature.width), dtype=np.float32)
            for row, value in enumerate(values):
                if value in index:
                    onehot[row, index[value]] = 1.0
            blocks.append(onehot)
    return np.concatenate(blocks, axis=1)


def encode_target(
    table: Table, name: str, task: TargetKind | None
) -> tuple[np.ndarray, TargetKind, tuple[str, ...]]:
    values = table.columns[name]
    missing = [line for line, v in zip(table.lines, values, strict=True) if v.lower() in MISSING]
    if missing:
        raise NeuralabError(
            table.source,
            f"target column '{name}' is empty at line(s) {', '.join(map(str, missing[:10]))}",
            "drop those rows",
        )
    numeric = _mostly_numbers(values)
    if numeric:
        table.check_complete(name)
    if task is None:
        few_integers = (
            numeric
            and len(set(values)) <= MAX_INTEGER_CLASSES
            and all(float(v).is_integer() for v in values)
        )
        task = "regression" if numeric and not few_integers else "classification"
    if task == "regression":
        if not numeric:
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


def _mostly_numbers(values: list[str]) -> bool:
    present = [v for v in values if v.lower() not in MISSING]
    return bool(present) and sum(map(_is_number, present)) >= NUMERIC_SHARE * len(present)


def _is_number(value: str) -> bool:
    try:
        return bool(np.isfinite(float(value)))
    except ValueError:
        return False
