"""Datasets that ship with the dependencies or are generated: no network needed.

Each is a config class (the `data.dataset:` section) whose `load(seed)` returns `RawData`.
"""

from __future__ import annotations

import functools
import random
from typing import Literal

import numpy as np
from pydantic import Field

from neuralab.data.bundle import RawData
from neuralab.data.source import DataSource


class DigitsConfig(DataSource):
    """scikit-learn's 8x8 handwritten digits: 1,797 grey images, 10 classes."""

    name: Literal["digits"] = "digits"

    def load(self, seed: int) -> RawData:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = digits.images.astype(np.float32)[:, None]  # (N, 1, 8, 8)
        names = tuple(str(c) for c in digits.target_names)
        return RawData(x, digits.target, kind="image", task="classification", label_names=names)


class MNIST1DConfig(DataSource):
    """MNIST-1D (Greydanus 2020): 5,000 sequences of length 40, 10 classes, 4,000/1,000 split."""

    name: Literal["mnist1d"] = "mnist1d"

    def load(self, seed: int) -> RawData:
        x, y, x_test, y_test = _mnist1d()
        return RawData(
            x[:, None],
            y,
            kind="sequence",
            task="classification",
            label_names=tuple(str(i) for i in range(10)),
            x_test=x_test[:, None],
            y_test=y_test,
        )


@functools.cache
def _mnist1d() -> tuple[np.ndarray, ...]:
    """Generate MNIST-1D offline once per process.

    `make_dataset` reseeds Python's and numpy's global RNGs, so their states are saved and
    restored around it; `get_dataset` is never used because it tries a download.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(get_dataset_args())
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    return (
        data["x"].astype(np.float32),
        data["y"].astype(np.int64),
        data["x_test"].astype(np.float32),
        data["y_test"].astype(np.int64),
    )


class MoonsConfig(DataSource):
    """Two interleaving half circles: 2 features, 2 classes."""

    name: Literal["moons"] = "moons"
    num_samples: int = Field(1000, ge=20)
    noise: float = Field(0.2, ge=0.0)

    def load(self, seed: int) -> RawData:
        from sklearn.datasets import make_moons

        x, y = make_moons(self.num_samples, noise=self.noise, random_state=seed)
        return RawData(
            x.astype(np.float32), y, kind="tabular", task="classification", label_names=("0", "1")
        )


class BlobsConfig(DataSource):
    """Isotropic Gaussian clusters, one per class."""

    name: Literal["blobs"] = "blobs"
    num_samples: int = Field(1000, ge=20)
    num_features: int = Field(2, ge=1)
    num_classes: int = Field(3, ge=2)
    cluster_std: float = Field(1.0, gt=0.0)

    def load(self, seed: int) -> RawData:
        from sklearn.datasets import make_blobs

        x, y = make_blobs(
            self.num_samples,
            n_features=self.num_features,
            centers=self.num_classes,
            cluster_std=self.cluster_std,
            random_state=seed,
        )
        names = tuple(str(i) for i in range(self.num_classes))
        return RawData(
            x.astype(np.float32), y, kind="tabular", task="classification", label_names=names
        )


class SineConfig(DataSource):
    """Forecasting: predict the next `horizon` values of a noisy two-tone sine from a window."""

    name: Literal["sine"] = "sine"
    num_samples: int = Field(2000, ge=20)
    window: int = Field(32, ge=2)
    horizon: int = Field(1, ge=1)
    noise: float = Field(0.05, ge=0.0)

    def load(self, seed: int) -> RawData:
        rng = np.random.default_rng(seed)
        t = np.arange(self.num_samples + self.window + self.horizon) * 0.1
        series = np.sin(t) + 0.5 * np.sin(3.1 * t + 0.4)
        series = series + rng.normal(0.0, self.noise, size=t.shape)
        starts = np.arange(self.num_samples)[:, None]
        x = series[starts + np.arange(self.window)][:, None]  # (N, 1, window)
        y = series[starts + self.window + np.arange(self.horizon)]  # (N, horizon)
        return RawData(
            x.astype(np.float32),
            y.astype(np.float32),
            kind="sequence",
            task="regression",
            ordered=True,
        )


class AddingConfig(DataSource):
    """The LSTM adding problem (Hochreiter & Schmidhuber 1997): sum the two marked values.

    Each sample is 2 channels x `length` steps: channel 0 holds uniform [0, 1] values,
    channel 1 a marker that is 1 at exactly two steps, one in each half. The target is
    the sum of the two marked values, so a model must carry the first one across at least
    `length / 2` steps. Always predicting the mean (1.0) leaves the variance of a sum of
    two uniforms, 1/6: that is R^2 = 0, the baseline a model must beat.
    """

    name: Literal["adding"] = "adding"
    num_samples: int = Field(2000, ge=20)
    length: int = Field(100, ge=2)

    def load(self, seed: int) -> RawData:
        rng = np.random.default_rng(seed)
        rows, half = np.arange(self.num_samples), self.length // 2
        values = rng.uniform(0.0, 1.0, size=(self.num_samples, self.length))
        first = rng.integers(0, half, size=self.num_samples)
        second = rng.integers(half, self.length, size=self.num_samples)
        markers = np.zeros_like(values)
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        x = np.stack([values, markers], axis=1)  # (N, 2, length)
        y = (values[rows, first] + values[rows, second])[:, None]  # (N, 1)
        return RawData(
            x.astype(np.float32), y.astype(np.float32), kind="sequence", task="regression"
        )
