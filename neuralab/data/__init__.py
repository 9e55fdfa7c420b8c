"""Data: the builtin datasets and file readers (one config class each), and `load_data`.

`DatasetConfig` is the registry: a discriminated union on `name`, so an unknown dataset is
rejected with the list of valid ones. Adding a dataset is "write the class, add it here".
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from neuralab.data.arrays import ArraysConfig
from neuralab.data.augment import AugmentConfig
from neuralab.data.builtin import (
    AddingConfig,
    BlobsConfig,
    DigitsConfig,
    MNIST1DConfig,
    MoonsConfig,
    SineConfig,
)
from neuralab.data.bundle import (
    DataBundle,
    DataMeta,
    Feature,
    RawData,
    SplitIndices,
    TargetKind,
    make_bundle,
    select_classes,
)
from neuralab.data.files import CSVConfig
from neuralab.data.idx_cifar import (
    CIFAR10Config,
    CIFAR100Config,
    FashionMNISTConfig,
    MNISTConfig,
)
from neuralab.data.images import ImagesConfig
from neuralab.data.memory import PythonDataConfig
from neuralab.data.series import SeriesConfig
from neuralab.data.source import DataSource
from neuralab.data.text import PydocConfig, ReverseConfig, TextConfig
from neuralab.errors import NeuralabError
from neuralab.schema import Strict

DatasetConfig = Annotated[
    DigitsConfig
    | MNIST1DConfig
    | MoonsConfig
    | BlobsConfig
    | SineConfig
    | AddingConfig
    | ReverseConfig
    | PydocConfig
    | CSVConfig
    | SeriesConfig
    | PythonDataConfig
    | TextConfig
    | ImagesConfig
    | ArraysConfig
    | MNISTConfig
    | FashionMNISTConfig
    | CIFAR10Config
    | CIFAR100Config,
    Field(discriminator="name"),
]
DATASETS = (
    DigitsConfig,
    MNIST1DConfig,
    MoonsConfig,
    BlobsConfig,
    SineConfig,
    AddingConfig,
    ReverseConfig,
    PydocConfig,
    CSVConfig,
    SeriesConfig,
    PythonDataConfig,
    TextConfig,
    ImagesConfig,
    ArraysConfig,
    MNISTConfig,
    FashionMNISTConfig,
    CIFAR10Config,
    CIFAR100Config,
)

__all__ = [
    "AugmentConfig",
    "DataSource",
    "expand_shorthand",
    "source_named",
    "DATASETS",
    "DataBundle",
    "DataConfig",
    "DataMeta",
    "DatasetConfig",
    "Feature",
    "RawData",
    "SplitIndices",
    "TargetKind",
    "describe_datasets",
    "load_data",
]


def source_named(name: str) -> type[DataSource] | None:
    """The registered source whose `name` this is (None: no such source)."""
    return next((cls for cls in DATASETS if cls.model_fields["name"].default == name), None)


def expand_shorthand(data: dict[str, Any]) -> None:
    """A source's shorthand names it, in a `data:` section (`data: {text: PATH}`) or in its
    `dataset:` (`dataset: {images: DIR}`): `{name: images, path: DIR}`. Raw, before
    validation, so `--set data.dataset.window=64` finds the expanded section."""
    for source in DATASETS:
        key = source.shorthand
        if key is None:
            continue
        if key in data and "dataset" not in data:
            data["dataset"] = {key: data.pop(key)}
        dataset = data.get("dataset")
        if isinstance(dataset, dict) and key in dataset and "name" not in dataset:
            value = dataset.pop(key)
            dataset.update(
                {"name": source.model_fields["name"].default, source.path_keys[0]: value}
            )


def describe_datasets() -> list[tuple[str, str]]:
    """(name, one-line description) for every dataset source."""
    return [
        (cls.model_fields["name"].default, (cls.__doc__ or "").strip().splitlines()[0])
        for cls in DATASETS
    ]


class SplitConfig(Strict):
    """Fractions of the data held out for validation and test (seeded, stratified)."""

    val: float = Field(0.1, gt=0.0, lt=1.0)
    test: float = Field(0.2, gt=0.0, lt=1.0)
    stratify: bool = True
    # K-fold cross-validation: fold `fold` (0-based) is the test split, val comes from the
    # rest; `test` is then 1/K. `neuralab train` and `compare` run every fold.
    folds: int | None = Field(None, ge=2)
    fold: int = Field(0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _test_is_one_fold(cls, value: object) -> object:
        if isinstance(value, dict) and value.get("folds") and "test" not in value:
            folds = value["folds"]
            return {**value, "test": 1 / folds} if isinstance(folds, int) else value
        return value

    @model_validator(mode="after")
    def _fractions_fit(self) -> SplitConfig:
        if self.folds is not None:
            return self._folds_fit(self.folds)
        if self.val + self.test >= 1.0:
            raise ValueError(
                f"val + test must be below 1 to leave training data, but got "
                f"val={self.val}, test={self.test}"
            )
        return self

    def _folds_fit(self, folds: int) -> SplitConfig:
        if not math.isclose(self.test, 1 / folds):
            raise ValueError(f"with folds the test split is one fold (1/{folds}); leave out test")
        if self.fold >= folds:
            raise ValueError(f"fold must be below folds ({folds}), got {self.fold}")
        if self.val + 1 / folds >= 1.0:
            raise ValueError(f"val + 1/folds must be below 1, got val={self.val}, folds={folds}")
        return self


class DataConfig(Strict):
    """The `data:` section: where samples come from and how they are split."""

    dataset: DatasetConfig
    split: SplitConfig = SplitConfig()
    # keep only these classes (label names, e.g. [0, 1, 2, 3, 4] for digits), relabelled
    classes: tuple[str, ...] | None = Field(None, min_length=2)
    # keep this many labelled training samples per class; val and test stay whole
    labels_per_class: int | None = Field(None, ge=1)
    # random changes to each training batch (neuralab/data/augment.py); all off by default
    augment: AugmentConfig = AugmentConfig()

    @field_validator("classes", mode="before")
    @classmethod
    def _names(cls, value: object) -> object:
        """Digit classes may be written as numbers: `[0, 1]` means `["0", "1"]`."""
        return [str(v) for v in value] if isinstance(value, list | tuple) else value

    @field_validator("dataset", mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        """`dataset: digits` means `{name: digits}`; a source's shorthand names it."""
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, dict):
            value = dict(value)
            expand_shorthand({"dataset": value})
        return value

    def carry_into(self, run_dir: Path) -> DataConfig:
        """The section training uses once the run folder exists (see `DataSource`)."""
        return self.model_copy(update={"dataset": self.dataset.carry_into(run_dir)})


def load_data(
    data: DataConfig, *, task: TargetKind | None, seed: int, split: SplitIndices | None = None
) -> DataBundle:
    """Read or generate the samples, split them and standardise them.

    Args:
        data: The experiment's `data:` section.
        task: The task the experiment states, or None to take the one the data implies.
        seed: Seeds generated data and the split.
        split: A run's stored split, used instead of splitting again.
    """
    source = data.dataset
    if isinstance(source, CSVConfig | PythonDataConfig):  # they read their targets' type
        raw = source.load(seed, task)
    else:
        raw = source.load(seed)
    if data.classes is not None:
        raw = select_classes(raw, data.classes)
    if data.labels_per_class is not None and raw.task != "classification":
        raise NeuralabError(
            "data.labels_per_class", f"applies to classification data, not {raw.task}"
        )
    if task is not None and task != raw.task:
        raise NeuralabError(
            "task",
            f"'{task}' does not fit dataset '{source.name}', which is {raw.task}",
            f"use task: {raw.task}, or leave it out",
        )
    fractions = data.split
    return make_bundle(
        raw,
        dataset=source.name,
        val=fractions.val,
        test=fractions.test,
        stratify=fractions.stratify,
        seed=seed,
        folds=(fractions.folds, fractions.fold) if fractions.folds else None,
        labels_per_class=data.labels_per_class,
        split=split,
    )
