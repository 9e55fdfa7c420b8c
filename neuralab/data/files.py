"""User data from files: CSV (or Parquet) tables with numeric and categorical columns.

Numeric columns are used as they are; categorical columns (any value that is not a
number) are one-hot encoded with the categories seen in the file. The target column's
type decides the task unless the experiment states it. Problems name file lines.

With pyarrow installed (the `tables` extra) files are read column by column into Arrow
arrays and typed with vectorised kernels, with no Python object per cell; without it, CSV
files are read with the csv module (every cell a Python string) and Parquet is refused.
Both readers give the same columns.
"""

from __future__ import annotations

import csv
import importlib.util
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

import numpy as np

from neuralab.data.bundle import Feature, RawData, TargetKind
from neuralab.data.source import DataSource
from neuralab.errors import NeuralabError

if TYPE_CHECKING:
    import pyarrow as pa

MISSING = {"", "na", "nan", "null", "none"}
# An integer target with at most this many distinct values is read as class labels.
MAX_INTEGER_CLASSES = 20
# A column is numeric when at least this share of its present values are numbers; the
# rest are then reported as bad rows instead of silently turning it categorical.
NUMERIC_SHARE = 0.9
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class Table:
    """A file's columns by header name, and the file line each row came from, so errors can
    point at it. Columns may be given as lists of strings (a few rows from a request); the
    readers give columnar ones. `lines` may be a function, called only when an error needs
    line numbers (a columnar reader does not count them as it reads)."""

    source: str
    columns: Mapping[str, Column | Sequence[str]]
    lines: Sequence[int] | Callable[[], Sequence[int]]
    unit: str = "line"  # what `lines` count: file lines, or rows of a Parquet file

    def __post_init__(self) -> None:
        columns = {
            name: values if isinstance(values, Column) else TextColumn(list(values))
            for name, values in self.columns.items()
        }
        object.__setattr__(self, "columns", columns)

    def column(self, name: str) -> Column:
        return cast(Column, self.columns[name])  # __post_init__ wrapped every column

    @property
    def size(self) -> int:
        """The number of rows."""
        return len(self.column(next(iter(self.columns))))

    def line_numbers(self, rows: np.ndarray) -> list[int]:
        """The file lines of the rows at these indices."""
        lines = self.lines() if callable(self.lines) else self.lines
        return [lines[row] for row in rows.tolist()]

    def check_complete(self, name: str) -> None:
        """Every value of column `name` must be a finite number."""
        bad = np.flatnonzero(np.isnan(self.column(name).numbers))
        if bad.size:
            lines = self.line_numbers(bad[:10])
            shown = ", ".join(map(str, lines)) + (" ..." if bad.size > 10 else "")
            raise NeuralabError(
                self.source,
                f"column '{name}' has {bad.size} missing or non-numeric value(s) at "
                f"{self.unit}(s) {shown}",
                "fill or drop those rows",
            )


class CSVConfig(DataSource):
    """A CSV file with a header row, or a Parquet file (by its suffix); `target` names the
    column to predict."""

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
    """Read a CSV with a header row (or a Parquet file, by its suffix); ragged rows are
    refused with their line number."""
    if not path.is_file():
        raise NeuralabError(
            where,
            f"file not found: {path}",
            "check the path; relative paths are read from the experiment file's folder",
        )
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return _read_parquet(path, where)
    if importlib.util.find_spec("pyarrow") is None:
        return _read_csv_rows(path, where)
    return _read_csv_columns(path, where)


def _read_csv_rows(path: Path, where: str) -> Table:
    """The csv module's reader: every cell a Python string, each row's line counted."""
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


def _read_csv_columns(path: Path, where: str) -> Table:
    """Arrow's CSV reader, every column read as text and typed afterwards by the same rules
    as the csv module's reader. A file Arrow refuses (a ragged row, bad UTF-8, an empty
    file) is read again by the csv module, whose error names the line."""
    import pyarrow as pa
    from pyarrow import csv as arrow_csv

    header = _header(path)
    if header is None:
        return _read_csv_rows(path, where)
    try:
        arrow = arrow_csv.read_csv(
            path,
            parse_options=arrow_csv.ParseOptions(newlines_in_values=True),
            convert_options=arrow_csv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        return _read_csv_rows(path, where)
    if arrow.num_rows == 0:
        raise NeuralabError(where, f"{path.name} is empty", "expected a header row and data rows")
    # a repeated header name keeps its last column, as the csv module's reader does
    read = {name.strip(): arrow.column(i) for i, name in enumerate(arrow.column_names)}
    del arrow  # each column as read is freed once its stripped copy is made, not all at the end
    columns = {name: ArrowColumn(read.pop(name)) for name in list(read)}
    return Table(path.name, columns, lambda: _row_lines(path))


def _row_lines(path: Path) -> list[int]:
    """The line each data row ends on, counted as the csv module's reader counts them."""
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.reader(file)
        lines = [reader.line_num for row in reader if row]
    return lines[1:]


def _header(path: Path) -> list[str] | None:
    """The first non-blank row's names as written, or None when the file has none."""
    with path.open(newline="", encoding="utf-8", errors="replace") as file:
        return next((row for row in csv.reader(file) if row), None)


def _read_parquet(path: Path, where: str) -> Table:
    """A Parquet file's columns; numeric columns keep their numbers, others are text."""
    if importlib.util.find_spec("pyarrow") is None:
        raise NeuralabError(
            where,
            f"reading {path.name} needs pyarrow",
            "pip install 'neuralab[tables]', or save the table as CSV",
        )
    import pyarrow as pa
    from pyarrow import parquet

    try:
        arrow = parquet.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise NeuralabError(where, f"cannot read {path.name}: {error}") from None
    if arrow.num_rows == 0 or arrow.num_columns == 0:
        raise NeuralabError(where, f"{path.name} is empty", "expected columns and rows")
    columns = {
        name.strip(): ArrowColumn(arrow.column(i)) for i, name in enumerate(arrow.column_names)
    }
    return Table(path.name, columns, range(1, arrow.num_rows + 1), unit="row")


def infer_feature(table: Table, name: str) -> Feature:
    """Numeric if (nearly) every present value parses as a number, else categorical."""
    column = table.column(name)
    if column.mostly_numbers:
        table.check_complete(name)
        return Feature(name, "numeric")
    return Feature(name, "categorical", tuple(sorted(column.distinct())))


def encode_features(table: Table, features: tuple[Feature, ...]) -> np.ndarray:
    """A table's columns -> float32 matrix; categories unseen in training encode as zeros."""
    missing = [f"'{f.name}'" for f in features if f.name not in table.columns]
    if missing:
        raise NeuralabError(
            table.source,
            f"column{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing",
            f"the model was trained on: {', '.join(f.name for f in features)}",
        )
    # filled in place: the matrix is often larger than the file, so it is never copied
    x = np.zeros((table.size, sum(f.width for f in features)), dtype=np.float32)
    start = 0
    for feature in features:
        column = table.column(feature.name)
        if feature.kind == "numeric":
            table.check_complete(feature.name)
            x[:, start] = column.numbers
        else:
            codes = column.codes(feature.categories)
            seen = np.flatnonzero(codes >= 0)
            x[seen, start + codes[seen]] = 1.0
        start += feature.width
    return x


def encode_target(
    table: Table, name: str, task: TargetKind | None
) -> tuple[np.ndarray, TargetKind, tuple[str, ...]]:
    column = table.column(name)
    missing = np.flatnonzero(column.missing)
    if missing.size:
        lines = table.line_numbers(missing[:10])
        raise NeuralabError(
            table.source,
            f"target column '{name}' is empty at {table.unit}(s) {', '.join(map(str, lines))}",
            "drop those rows",
        )
    numeric = column.mostly_numbers
    if numeric:
        table.check_complete(name)
    if task is None:
        few_integers = (
            numeric
            and bool(np.all(column.numbers == np.round(column.numbers)))
            and len(column.distinct()) <= MAX_INTEGER_CLASSES
        )
        task = "regression" if numeric and not few_integers else "classification"
    if task == "regression":
        if not numeric:
            raise NeuralabError(
                "task",
                f"regression needs a numeric target, but column '{name}' holds text",
                "use task: classification",
            )
        return column.numbers.astype(np.float32)[:, None], task, ()
    # numeric labels sort by value, so "10" comes after "9"
    names = tuple(sorted(column.distinct(), key=float if numeric else None))
    return column.codes(names), task, names


class Column:
    """One column's values, as the typing and encoding rules need them: numbers, missing
    cells, distinct texts and each row's index among given texts."""

    def __len__(self) -> int:
        raise NotImplementedError

    @cached_property
    def numbers(self) -> np.ndarray:
        """float64 values; NaN where a value is missing or not a finite number."""
        raise NotImplementedError

    @cached_property
    def missing(self) -> np.ndarray:
        """True where the cell is empty or a missing-value marker (na, nan, null, none)."""
        raise NotImplementedError

    def distinct(self) -> list[str]:
        """Every distinct value as text, in order of first appearance."""
        raise NotImplementedError

    def codes(self, texts: Sequence[str]) -> np.ndarray:
        """Each row's index in `texts` (int64), -1 where its value is not among them."""
        raise NotImplementedError

    @property
    def mostly_numbers(self) -> bool:
        """Nearly every present value is a number (NUMERIC_SHARE)."""
        present = int(np.count_nonzero(~self.missing))
        numbers = int(np.count_nonzero(~np.isnan(self.numbers)))
        return present > 0 and numbers >= NUMERIC_SHARE * present


class TextColumn(Column):
    """Values held as Python strings (stripped), from the csv module or a request."""

    def __init__(self, values: list[str]) -> None:
        self.values = values

    def __len__(self) -> int:
        return len(self.values)

    @cached_property
    def numbers(self) -> np.ndarray:
        return np.array([_number(value) for value in self.values], dtype=np.float64)

    @cached_property
    def missing(self) -> np.ndarray:
        return np.array([value.lower() in MISSING for value in self.values], dtype=bool)

    def distinct(self) -> list[str]:
        return list(dict.fromkeys(self.values))

    def codes(self, texts: Sequence[str]) -> np.ndarray:
        index = {text: i for i, text in enumerate(texts)}
        return np.array([index.get(value, -1) for value in self.values], dtype=np.int64)


# What Python's float() reads as a finite number, written for Arrow's regex kernel: digits
# with an optional point and exponent (float() also takes "1_000" and non-ASCII digits; a
# column of those reads as text here).
NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_NUMBER = re.compile(NUMBER)


class ArrowColumn(Column):
    """Values held in an Arrow array: text read from a CSV (stripped here), or typed
    values from a Parquet file, whose numeric columns are used as numbers directly."""

    def __init__(self, values: pa.ChunkedArray) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        self.numeric = pa.types.is_integer(values.type) or pa.types.is_floating(values.type)
        if self.numeric:
            self.values = values
        else:
            self.values = pc.utf8_trim_whitespace(values.cast(pa.string()))

    def __len__(self) -> int:
        return len(self.values)

    @cached_property
    def text(self) -> pa.ChunkedArray:
        import pyarrow as pa

        return self.values.cast(pa.string()).fill_null("")

    @cached_property
    def numbers(self) -> np.ndarray:
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.numeric:
            numbers = self.values.cast(pa.float64()).fill_null(np.nan).to_numpy()
            return np.where(np.isfinite(numbers), numbers, np.nan)
        try:  # a column of numbers only: one cast (what it reads besides NUMBER is not finite)
            numbers = self.text.cast(pa.float64()).to_numpy()
        except pa.ArrowInvalid:
            readable = pc.match_substring_regex(self.text, NUMBER)
            numbers = pc.if_else(readable, self.text, "nan").cast(pa.float64()).to_numpy()
        return np.where(np.isfinite(numbers), numbers, np.nan)

    @cached_property
    def missing(self) -> np.ndarray:
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.numeric:
            return np.isnan(self.values.cast(pa.float64()).fill_null(np.nan).to_numpy())
        if not np.isnan(self.numbers).any():  # every value a number: none is a missing marker
            return np.zeros(len(self), dtype=bool)
        marker = pc.is_in(pc.utf8_lower(self.text), value_set=pa.array(sorted(MISSING)))
        return _numpy(marker)

    def distinct(self) -> list[str]:
        return [str(value) for value in self.text.unique().to_pylist()]

    def codes(self, texts: Sequence[str]) -> np.ndarray:
        import pyarrow as pa
        import pyarrow.compute as pc

        index = pc.index_in(self.text, value_set=pa.array(list(texts), pa.string()))
        return _numpy(index.fill_null(-1).cast(pa.int64()))


def _numpy(values: Any) -> np.ndarray:
    """A chunked Arrow array without nulls -> one numpy array."""
    return np.asarray(values.to_numpy())


def _number(value: str) -> float:
    """The finite number a text holds, or NaN; the same numbers Arrow's reading finds."""
    if not _NUMBER.match(value):
        return np.nan
    number = float(value)
    return number if np.isfinite(number) else np.nan
