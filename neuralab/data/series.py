"""Time series from a CSV file: sliding forecasting windows over its rows.

Each sample is `window` consecutive rows of the input `columns`, shaped (C, window) like any
sequence, and its target is the `target` column `horizon` rows after the window's last row
(several horizons give one output each). With a `group` column the file holds several
series (rows of one series in time order, series interleaved or one after another):
windows are cut from each series alone, never across two. Samples are ordered by where
they end in their series, so the chronological split (`RawData.ordered`) tests on the
latest windows of every series and never on windows older than the ones it trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from neuralab.data.bundle import RawData
from neuralab.data.files import Table, read_csv
from neuralab.data.source import DataSource
from neuralab.errors import NeuralabError, did_you_mean

WHERE = "data.dataset"


class SeriesConfig(DataSource):
    """Forecasting windows from a time-series CSV (one or several series), split in time order."""

    name: Literal["series"] = "series"
    path_keys: ClassVar[tuple[str, ...]] = ("series",)
    shorthand: ClassVar[str | None] = "series"
    series: Path
    target: str
    # input columns; default: the target alone (its own past forecasts its future)
    columns: tuple[str, ...] | None = Field(None, min_length=1)
    window: int = Field(48, ge=1)
    # rows after the window's last row; several horizons -> one output per horizon
    horizon: tuple[int, ...] = (1,)
    # the column naming which series a row belongs to, when the file holds several
    group: str | None = None

    @field_validator("horizon", mode="before")
    @classmethod
    def _one_or_several(cls, value: object) -> object:
        return (value,) if isinstance(value, int) else value

    @field_validator("horizon")
    @classmethod
    def _positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or min(value) < 1:
            raise ValueError(f"every horizon must be >= 1, but got {list(value)}")
        return value

    def load(self, seed: int) -> RawData:
        """Windows of every series in the file; `seed` is unused (nothing is random)."""
        table = read_csv(self.series, where=f"{WHERE}.series")
        columns = self.columns or (self.target,)
        for key, names in (("columns", columns), ("target", (self.target,))):
            for name in names:
                _check_column(table, name, f"{WHERE}.{key}", self.series.name)
        if self.group is not None:
            _check_column(table, self.group, f"{WHERE}.group", self.series.name)
        for name in dict.fromkeys((*columns, self.target)):
            table.check_complete(name)
        inputs = np.stack([table.column(name).numbers for name in columns], axis=1)
        inputs = inputs.astype(np.float32)
        target = table.column(self.target).numbers.astype(np.float32)
        pieces = [
            self._windows(inputs[rows], target[rows], label)
            for label, rows in _series_rows(table, self.group)
        ]
        ends = np.concatenate([end for _, _, end in pieces])
        order = np.argsort(ends, kind="stable")  # by time within series, series in file order
        x = np.concatenate([x for x, _, _ in pieces])[order]
        y = np.concatenate([y for _, y, _ in pieces])[order]
        return RawData(x, y, kind="sequence", task="regression", ordered=True)

    def _windows(
        self, inputs: np.ndarray, target: np.ndarray, label: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x (N, C, window), y (N, horizons), each window's last row in its series)."""
        count = len(inputs) - self.window - max(self.horizon) + 1
        if count < 1:
            needed = self.window + max(self.horizon)
            of = f"series '{label}'" if self.group is not None else self.series.name
            raise NeuralabError(
                f"{WHERE}.window",
                f"{of} has {len(inputs)} rows, too few for one window: window {self.window} "
                f"+ horizon {max(self.horizon)} needs {needed}",
                "use a smaller window or horizon, or more rows",
            )
        starts = np.arange(count)[:, None]
        x = inputs[starts + np.arange(self.window)].transpose(0, 2, 1)
        last = starts[:, 0] + self.window - 1
        y = target[last[:, None] + np.array(self.horizon)]
        return x, y, last


def _check_column(table: Table, name: str, where: str, file: str) -> None:
    if name not in table.columns:
        raise NeuralabError(
            where, f"column '{name}' not in {file}", did_you_mean(name, table.columns)
        )


def _series_rows(table: Table, group: str | None) -> list[tuple[str, np.ndarray]]:
    """(series label, its row indices in file order) for each series, first seen first."""
    if group is None:
        return [("", np.arange(table.size))]
    column = table.column(group)
    names = column.distinct()
    codes = column.codes(names)
    return [(name, np.flatnonzero(codes == i)) for i, name in enumerate(names)]
