"""NumPy arrays: a `.npz` file (`x`, `y`, optional `x_test`, `y_test`, `labels`) or `.npy` files.

Arrays are read with `allow_pickle=False`: an object array (which only a pickle can hold)
is refused rather than executed. What the samples are comes from the shape of `x`, and
`layout` says it where a shape could mean two things. Integer (or text) targets are
classes, floating-point targets are regression values.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import model_validator

from neuralab.data.bundle import DataKind, RawData, TargetKind
from neuralab.data.source import DataSource
from neuralab.errors import NeuralabError

# How `x` is laid out: N samples, C channels, H x W pixels, L steps, F features; `auto`:
# from the shape where it can only mean one (the same names as the `python` source's).
Layout = Literal["auto", "NCHW", "NHWC", "NHW", "NCL", "NF"]
LAYOUT_DIMENSIONS = {"NCHW": 4, "NHWC": 4, "NHW": 3, "NCL": 3, "NF": 2}
LAYOUT_KINDS: dict[str, DataKind] = {
    "NCHW": "image",
    "NHWC": "image",
    "NHW": "image",
    "NCL": "sequence",
    "NF": "tabular",
}
# The channel counts of grey, RGB and RGBA images, which tell NCHW from NHWC.
IMAGE_CHANNELS = (1, 3, 4)
# A `.npy` file above this size is memory-mapped rather than read into a second copy.
MMAP_BYTES = 256 * 2**20
NPZ_ARRAYS = ("x", "y", "x_test", "y_test", "labels")
# Samples checked for non-finite values at a time, so a large file needs no full-size mask.
FINITE_CHUNK = 4096


class ArraysConfig(DataSource):
    """NumPy arrays: a .npz with x and y (`{arrays: file.npz}`), or .npy files x and y."""

    name: Literal["arrays"] = "arrays"
    path_keys: ClassVar[tuple[str, ...]] = ("path", "x", "y", "x_test", "y_test")
    shorthand: ClassVar[str | None] = "arrays"
    path: Path | None = None  # a .npz file
    x: Path | None = None
    y: Path | None = None
    x_test: Path | None = None
    y_test: Path | None = None
    layout: Layout = "auto"

    @model_validator(mode="after")
    def _one_source(self) -> ArraysConfig:
        npy = (self.x, self.y, self.x_test, self.y_test)
        if self.path is not None and any(p is not None for p in npy):
            raise ValueError("give either path (a .npz file) or x and y (.npy files), not both")
        if self.path is None and (self.x is None or self.y is None):
            raise ValueError("needs path (a .npz file), or both x and y (.npy files)")
        if (self.x_test is None) != (self.y_test is None):
            raise ValueError("x_test and y_test come together")
        return self

    def load(self, seed: int) -> RawData:
        del seed  # the arrays are fixed
        arrays = _read_npz(self.path) if self.path is not None else self._read_npy()
        return _raw_data(arrays, self.layout, self._where_x())

    def _read_npy(self) -> dict[str, np.ndarray]:
        return {key: _read_npy(path, key) for key, path in self.files().items()}

    def _where_x(self) -> str:
        return "data.dataset.path" if self.path is not None else "data.dataset.x"


def _missing(where: str, path: Path) -> NeuralabError:
    return NeuralabError(
        where,
        f"file not found: {path}",
        "check the path; relative paths are read from the experiment file's folder",
    )


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of a `.npz`, in memory: members of a zip file cannot be memory-mapped."""
    where = "data.dataset.path"
    if not path.is_file():
        raise _missing(where, path)
    if path.suffix != ".npz":
        raise NeuralabError(where, f"{path.name} is not a .npz file", "use x: and y: for .npy")
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            unknown = [name for name in names if name not in NPZ_ARRAYS]
            if unknown:
                raise NeuralabError(
                    where,
                    f"{path.name} holds array(s) {', '.join(unknown)} this source does not read",
                    f"expected {', '.join(NPZ_ARRAYS)}",
                )
            arrays = {name: archive[name] for name in names}
    except ValueError as error:  # object arrays, or a file numpy cannot parse
        raise _unreadable(where, path, error) from None
    for name in ("x", "y"):
        if name not in arrays:
            raise NeuralabError(
                where, f"{path.name} has no array '{name}'", f"arrays: {', '.join(names) or 'none'}"
            )
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise NeuralabError(where, f"{path.name} has only one of x_test and y_test")
    return arrays


def _read_npy(path: Path, key: str) -> np.ndarray:
    """One `.npy`; a large one is memory-mapped, so it is not held twice while split."""
    where = f"data.dataset.{key}"
    if not path.is_file():
        raise _missing(where, path)
    if path.suffix != ".npy":
        raise NeuralabError(where, f"{path.name} is not a .npy file", "use path: for a .npz")
    large = path.stat().st_size > MMAP_BYTES
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if large else None)
    except ValueError as error:
        raise _unreadable(where, path, error) from None


def _unreadable(where: str, path: Path, error: ValueError) -> NeuralabError:
    if "allow_pickle" in str(error):
        return NeuralabError(
            where,
            f"{path.name} holds object arrays, which only a pickle can load",
            "save numeric (or fixed-width text) arrays; pickles are never loaded",
        )
    return NeuralabError(where, f"{path.name} is not a NumPy array file ({error})")


def _raw_data(arrays: dict[str, np.ndarray], layout: Layout, where: str) -> RawData:
    x, y = arrays["x"], arrays["y"]
    x_test, y_test = arrays.get("x_test"), arrays.get("y_test")
    _check_lengths(x, y, where)
    if x_test is not None and y_test is not None:
        _check_lengths(x_test, y_test, where)
        if x_test.shape[1:] != x.shape[1:]:
            raise NeuralabError(
                where,
                f"x_test has samples of shape {x_test.shape[1:]}, x of shape {x.shape[1:]}",
            )
    if layout == "auto":
        layout = _layout_from_shape(x.shape, where)
    kind = _kind(x.shape, layout)
    x = _inputs(x, layout, where)
    task, y, y_test, names = _targets(y, y_test, arrays.get("labels"), where)
    return RawData(
        x,
        y,
        kind=kind,
        task=task,
        label_names=names,
        x_test=None if x_test is None else _inputs(x_test, layout, where),
        y_test=y_test,
    )


def _check_lengths(x: np.ndarray, y: np.ndarray, where: str) -> None:
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise NeuralabError(
            where,
            f"x has shape {x.shape} and y shape {y.shape}: they need one row per sample",
        )


def _layout_from_shape(shape: tuple[int, ...], where: str) -> Layout:
    """The layout a shape can only mean; an ambiguous one is an error listing the choices."""
    if len(shape) == 2:
        return "NF"
    if len(shape) == 3:
        raise NeuralabError(
            "data.dataset.layout",
            f"x has shape {shape}: grey images {shape[1]}x{shape[2]}, or sequences of "
            f"{shape[1]} channels and {shape[2]} steps?",
            "set layout: NHW (images) or NCL (sequences)",
        )
    if len(shape) == 4:
        first, last = shape[1] in IMAGE_CHANNELS, shape[3] in IMAGE_CHANNELS
        if first != last:
            return "NCHW" if first else "NHWC"
        raise NeuralabError(
            "data.dataset.layout",
            f"x has shape {shape}: channels first (N, C, H, W) or last (N, H, W, C)?",
            "set layout: NCHW or NHWC",
        )
    raise NeuralabError(
        where,
        f"x has shape {shape}",
        "expected (N, F) tables, (N, C, L) sequences, or (N, C, H, W) / (N, H, W[, C]) images",
    )


def _kind(shape: tuple[int, ...], layout: Layout) -> DataKind:
    if len(shape) != LAYOUT_DIMENSIONS[layout]:
        raise NeuralabError(
            "data.dataset.layout",
            f"'{layout}' means {LAYOUT_DIMENSIONS[layout]}-D x, but x has shape {shape}",
            f"layouts for {len(shape)}-D x: "
            + ", ".join(name for name, ndim in LAYOUT_DIMENSIONS.items() if ndim == len(shape)),
        )
    return LAYOUT_KINDS[layout]


def _inputs(x: np.ndarray, layout: Layout, where: str) -> np.ndarray:
    """x in the layout models read, (N, C, H, W), (N, C, L) or (N, F); checked finite."""
    if x.dtype == np.bool_:
        x = x.astype(np.float32)
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise NeuralabError(where, f"x holds {x.dtype} values", "inputs must be numbers")
    if np.issubdtype(x.dtype, np.floating):
        _check_finite(x, where)
    if layout == "NHW":
        return x[:, None]
    if layout == "NHWC":  # a copy: a memory-mapped file is read here
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    return x


def _check_finite(x: np.ndarray, where: str) -> None:
    for start in range(0, len(x), FINITE_CHUNK):
        chunk = x[start : start + FINITE_CHUNK]
        finite = np.isfinite(chunk).reshape(len(chunk), -1).all(axis=1)
        if not finite.all():
            row = start + int(np.argmin(finite))
            raise NeuralabError(where, f"x has NaN or infinite values (first in sample {row})")


def _targets(
    y: np.ndarray, y_test: np.ndarray | None, labels: np.ndarray | None, where: str
) -> tuple[TargetKind, np.ndarray, np.ndarray | None, tuple[str, ...]]:
    """(task, y, y_test, label names): integers and text are classes, floats regression."""
    if np.issubdtype(y.dtype, np.floating):
        if labels is not None:
            raise NeuralabError(where, "labels name classes, but y holds floats (regression)")
        test = None if y_test is None else _regression(y_test, where)
        return "regression", _regression(y, where), test, ()
    if y.dtype.kind in "US":  # class names as text: classes in sorted order
        if labels is not None:
            raise NeuralabError(where, "labels name integer classes, but y holds names already")
        every = y if y_test is None else np.concatenate([y, y_test])
        names, ids = np.unique(every.astype(str), return_inverse=True)
        ids = ids.astype(np.int64)
        test = None if y_test is None else ids[len(y) :]
        return "classification", ids[: len(y)], test, tuple(names.tolist())
    if not np.issubdtype(y.dtype, np.integer) and y.dtype != np.bool_:
        raise NeuralabError(where, f"y holds {y.dtype} values", "use integer classes or floats")
    y = _classes(y, where)
    y_test = None if y_test is None else _classes(y_test, where)
    count = int(max(y.max(initial=0), 0 if y_test is None else y_test.max(initial=0))) + 1
    return "classification", y, y_test, _label_names(labels, count, where)


def _regression(values: np.ndarray, where: str) -> np.ndarray:
    values = values.reshape(len(values), -1).astype(np.float32)
    if not np.isfinite(values).all():
        raise NeuralabError(where, "y has NaN or infinite values")
    return values


def _classes(values: np.ndarray, where: str) -> np.ndarray:
    if values.ndim != 1:
        raise NeuralabError(where, f"class labels y must be 1-D, got shape {values.shape}")
    if len(values) and values.min() < 0:
        raise NeuralabError(where, f"class labels must be 0 or more, found {values.min()}")
    return values.astype(np.int64)


def _label_names(labels: np.ndarray | None, count: int, where: str) -> tuple[str, ...]:
    """Names from the `labels` array if there is one, else the numbers 0 to count - 1."""
    if labels is None:
        return tuple(str(i) for i in range(count))
    if labels.dtype.kind not in "US" or labels.ndim != 1:
        raise NeuralabError(where, f"labels must be a 1-D array of text, got {labels.dtype}")
    if len(labels) < count:
        raise NeuralabError(
            where, f"labels names {len(labels)} classes, but y holds class {count - 1}"
        )
    return tuple(str(name) for name in labels.tolist())
