"""Samples handed over from Python: `neuralab.train(config, data=(x, y))` or a DataFrame.

The samples are written to a file first (arrays to `data.npz`, never pickled; a DataFrame
to `data.csv`) and this source reads that file, so training and every later command see
exactly the same samples. Once the run folder exists the file is carried into it
(`carry_into`) and the run's `config.yaml` names it relative to the folder: the run stands
alone, and its fingerprint (neuralab/run_data.py) covers the file like any other source's.

Arrays: the kind comes from the shape (`layout: auto`): (N, F) is a table, (N, C, L) with
at most `MAX_CHANNELS` channels a sequence, (N, C, H, W) an image with channels first and
(N, H, W, C) one with channels last. Other shapes need `layout:`. Integer, boolean and text
targets are class labels, floating-point ones are regressed, unless `task:` says otherwise.
A DataFrame is read as a CSV file is (numeric and categorical columns, `target` to predict).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import field_serializer

from neuralab.data.bundle import DataKind, RawData, TargetKind
from neuralab.data.files import CSVConfig
from neuralab.data.source import DataSource
from neuralab.errors import NeuralabError

WHERE = "data.dataset.path"
ARRAYS = "data.npz"
TABLE = "data.csv"
# A sequence has few channels and many steps; more channels than this is read as ambiguous.
MAX_CHANNELS = 4
# Each layout's kind of data and how many dimensions its arrays have.
Layout = Literal["auto", "NF", "NCL", "NCHW", "NHWC", "NHW"]
LAYOUTS: dict[str, tuple[DataKind, int]] = {
    "NF": ("tabular", 2),
    "NCL": ("sequence", 3),
    "NCHW": ("image", 4),
    "NHWC": ("image", 4),
    "NHW": ("image", 3),
}


class PythonDataConfig(DataSource):
    """Samples handed to `neuralab.train(data=...)` from Python, saved in the run folder."""

    name: Literal["python"] = "python"
    path_keys: ClassVar[tuple[str, ...]] = ("path",)
    # data.npz (arrays x, y and optionally x_test, y_test) or data.csv (a DataFrame)
    path: Path
    target: str | None = None  # a DataFrame's column to predict
    layout: Layout = "auto"

    @field_serializer("path")
    def _in_run_folder(self, path: Path) -> str:
        """The run's config.yaml names the file by its place in the run folder, where
        `carry_into` put it, so the folder can move."""
        return path.name

    def carry_into(self, run_dir: Path) -> PythonDataConfig:
        """Copy the samples' file into `run_dir`; read it from there from now on."""
        copy = run_dir / (TABLE if self.path.suffix == ".csv" else ARRAYS)
        shutil.copyfile(self.path, copy)
        return self.model_copy(update={"path": copy})

    def load(self, seed: int, task: TargetKind | None = None) -> RawData:
        """The samples; `seed` is unused (nothing is random)."""
        if self.path.suffix == ".csv":
            if self.target is None:
                raise NeuralabError(
                    "target",
                    "a DataFrame needs the name of the column to predict",
                    "pass target='column' to neuralab.train, or data: {dataset: {target: ...}}",
                )
            return CSVConfig(csv=self.path, target=self.target).load(seed, task)
        return arrays_to_raw(read_arrays(self.path), layout=self.layout, task=task)


def save_python_data(data: Any, test: Any, folder: Path) -> Path:
    """Write `data` (and `test`) to `folder` as this source reads them: arrays (x, y) to
    data.npz, a DataFrame to data.csv. pandas is never imported: a DataFrame is known by
    its `to_csv` and `columns`."""
    if hasattr(data, "to_csv") and hasattr(data, "columns"):
        if test is not None:
            raise NeuralabError(
                "test",
                "takes arrays (x_test, y_test); with a DataFrame the test split comes from "
                "data.split",
                "leave test out, or pass data and test as arrays",
            )
        path = folder / TABLE
        data.to_csv(path, index=False)
        return path
    arrays = _pair("data", data, "x", "y")
    if test is not None:
        arrays |= _pair("test", test, "x_test", "y_test")
        if arrays["x_test"].shape[1:] != arrays["x"].shape[1:]:
            raise NeuralabError(
                "test",
                f"samples have shape {arrays['x_test'].shape[1:]}, but the training samples "
                f"have {arrays['x'].shape[1:]}",
            )
    path = folder / ARRAYS
    np.savez(path, allow_pickle=False, **arrays)
    return path


def _pair(where: str, pair: Any, x_key: str, y_key: str) -> dict[str, np.ndarray]:
    """(inputs, targets) -> two arrays of as many samples; text labels as unicode arrays
    (an object array would need pickle)."""
    if not isinstance(pair, tuple | list) or len(pair) != 2:
        raise NeuralabError(
            where,
            f"expected a pair (inputs, targets) or a DataFrame, got {type(pair).__name__}",
            f"pass {where}=(x, y)",
        )
    x, y = np.asarray(pair[0]), np.asarray(pair[1])
    if y.dtype.kind == "O":
        y = y.astype(str)
    if x.dtype.kind not in "biuf":
        raise NeuralabError(where, f"inputs hold {x.dtype} values", "inputs must be numbers")
    if x.ndim < 2 or len(x) != len(y):
        raise NeuralabError(
            where,
            f"inputs of shape {x.shape} and targets of shape {y.shape} do not pair up",
            "give one row of inputs (N, ...) per target (N,)",
        )
    return {x_key: x, y_key: y}


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz file, refusing pickled (object) arrays."""
    if not path.is_file():
        raise NeuralabError(WHERE, f"file not found: {path}", "copy the run folder whole")
    try:
        with np.load(path, allow_pickle=False) as file:
            return {key: file[key] for key in file.files}
    except ValueError as error:  # an object array would need pickle, which is never used
        raise NeuralabError(WHERE, f"cannot read {path.name}: {error}") from None


def arrays_to_raw(
    arrays: dict[str, np.ndarray], *, layout: Layout, task: TargetKind | None
) -> RawData:
    """x, y (and a fixed test split x_test, y_test) -> RawData of the kind their shape says."""
    if "x" not in arrays or "y" not in arrays:
        raise NeuralabError(WHERE, f"needs arrays x and y, found {', '.join(arrays) or 'none'}")
    x, y = arrays["x"], arrays["y"]
    x_test, y_test = arrays.get("x_test"), arrays.get("y_test")
    layout = _layout(x.shape) if layout == "auto" else layout
    kind, ndim = LAYOUTS[layout]
    for name, samples in (("x", x), ("x_test", x_test)):
        if samples is not None:
            _check_inputs(name, samples, ndim)
    targets = np.concatenate([y, y_test]) if y_test is not None else y
    labels = task == "classification" or (task is None and targets.dtype.kind in "biuUS")
    if labels:
        names, codes = np.unique(_one_label_each(targets), return_inverse=True)
        label_names: tuple[str, ...] = tuple(str(name) for name in names)
        codes, final_task = codes.reshape(-1).astype(np.int64), "classification"
    else:
        codes = _regression_targets(targets)
        label_names, final_task = (), "regression"
    count = len(y)
    return RawData(
        _channels_first(x, layout),
        codes[:count],
        kind=kind,
        task=final_task,  # type: ignore[arg-type]
        label_names=label_names,
        x_test=None if x_test is None else _channels_first(x_test, layout),
        y_test=None if y_test is None else codes[count:],
    )


def _layout(shape: tuple[int, ...]) -> Layout:
    """The layout `auto` reads from a shape, or an error asking for `layout:`."""
    if len(shape) == 2:
        return "NF"
    if len(shape) == 3 and shape[1] <= MAX_CHANNELS:
        return "NCL"
    if len(shape) == 4 and shape[1] <= MAX_CHANNELS:
        return "NCHW"
    if len(shape) == 4 and shape[3] <= MAX_CHANNELS:
        return "NHWC"
    raise NeuralabError(
        "layout",
        f"cannot tell what samples of shape {shape[1:]} are",
        "say it with layout: NF (table), NCL (sequences), NHW (grey images), NCHW or NHWC",
    )


def _check_inputs(name: str, x: np.ndarray, ndim: int) -> None:
    if x.ndim != ndim:
        raise NeuralabError(
            "layout", f"{name} has shape {x.shape}, which is not {ndim}-dimensional as it says"
        )
    if x.dtype.kind not in "biuf":
        raise NeuralabError(name, f"holds {x.dtype} values", "inputs must be numbers")
    bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
    if len(bad):
        rows = ", ".join(map(str, bad[:10])) + (" ..." if len(bad) > 10 else "")
        raise NeuralabError(
            name, f"samples {rows} hold NaN or infinite values", "drop or fill them"
        )


def _one_label_each(y: np.ndarray) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        return y[:, 0]
    if y.ndim != 1:
        raise NeuralabError("y", f"class labels need one per sample, but y has shape {y.shape}")
    return y


def _regression_targets(y: np.ndarray) -> np.ndarray:
    if y.dtype.kind not in "biuf" or y.ndim not in (1, 2):
        raise NeuralabError(
            "y", f"regression needs numbers, one row per sample; got {y.dtype} of shape {y.shape}"
        )
    return (y[:, None] if y.ndim == 1 else y).astype(np.float32)


def _channels_first(x: np.ndarray, layout: str) -> np.ndarray:
    if layout == "NHWC":
        x = x.transpose(0, 3, 1, 2)
    elif layout == "NHW":
        x = x[:, None]
    return np.ascontiguousarray(x, dtype=np.float32)
