"""The in-memory dataset every model trains on: tensors per split plus a small `meta` record.

`RawData` is what a source (builtin set or file) produces; `make_bundle` splits it with a
seeded, stratified split, fits standardisation on the training part only, and returns a
`DataBundle`. `DataMeta` is everything a loader needs later to prepare new inputs the
same way (it is written to `card.json`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from neuralab.errors import NeuralabError

# `text` samples are token ids (characters or symbols), kept as integers, never scaled.
DataKind = Literal["tabular", "image", "sequence", "text"]
# What the data's targets are (`DataMeta.task`); the task learned is inferred from it
# (neuralab/tasks). `next_token`: each window's next tokens (language models);
# `sequence_pairs`: a target sequence per source (seq2seq); `several_targets`: one column
# per head (neuralab/multitask.py).
TargetKind = Literal[
    "classification", "regression", "next_token", "sequence_pairs", "several_targets"
]
# Targets that are integer ids (classes or tokens) rather than numbers to regress.
INTEGER_TARGETS = ("classification", "next_token", "sequence_pairs")


@dataclass(frozen=True)
class Feature:
    """One input column of a CSV file and how it is encoded."""

    name: str
    kind: Literal["numeric", "categorical"]
    categories: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        return len(self.categories) if self.kind == "categorical" else 1


@dataclass(frozen=True)
class RawData:
    """Samples as a source delivers them, before splitting and scaling.

    `x_test`/`y_test` are set only by sources with a fixed, published test split.
    `ordered` marks samples in time order (forecasting windows): they are split
    chronologically, because a shuffled split would leak overlapping windows into test.
    """

    x: np.ndarray
    y: np.ndarray
    kind: DataKind
    task: TargetKind
    label_names: tuple[str, ...] = ()
    features: tuple[Feature, ...] = ()
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    ordered: bool = False
    vocab: tuple[str, ...] = ()


@dataclass(frozen=True)
class DataMeta:
    """What the model builder and a later loader need to know about the data."""

    dataset: str
    kind: DataKind
    task: TargetKind
    input_shape: tuple[int, ...]
    num_outputs: int
    label_names: tuple[str, ...]
    x_mean: list
    x_std: list
    y_mean: list = field(default_factory=list)
    y_std: list = field(default_factory=list)
    features: tuple[Feature, ...] = ()
    sizes: dict[str, int] = field(default_factory=dict)
    vocab: tuple[str, ...] = ()  # token id -> symbol, for text data

    @classmethod
    def from_dict(cls, d: dict) -> DataMeta:
        d = dict(d)
        d["input_shape"] = tuple(d["input_shape"])
        d["label_names"] = tuple(d["label_names"])
        d["vocab"] = tuple(d.get("vocab", ()))
        d["features"] = tuple(
            Feature(f["name"], f["kind"], tuple(f["categories"])) for f in d["features"]
        )
        return cls(**d)

    def scale_inputs(self, x: np.ndarray) -> torch.Tensor:
        """Raw inputs of shape (N, *input_shape) -> standardised float32 tensor
        (token ids stay integers)."""
        if self.kind == "text":
            return torch.as_tensor(x, dtype=torch.long)
        x = (x - np.asarray(self.x_mean)) / np.asarray(self.x_std)
        return torch.as_tensor(x, dtype=torch.float32)

    def scale_targets(self, y: np.ndarray) -> torch.Tensor:
        if self.task in INTEGER_TARGETS:
            return torch.as_tensor(y, dtype=torch.long)
        y = (y - np.asarray(self.y_mean)) / np.asarray(self.y_std)
        return torch.as_tensor(y, dtype=torch.float32)

    def unscale_targets(self, y: torch.Tensor) -> torch.Tensor:
        """Regression outputs back to the target's own units."""
        return y * torch.tensor(self.y_std) + torch.tensor(self.y_mean)


@dataclass(frozen=True)
class DataBundle:
    """Standardised tensors for train/val/test and the meta record that describes them.

    `labels_test` keeps the dataset's own test targets when `y_*` were replaced by the
    inputs (reconstruction), so the report can still colour samples by class.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    meta: DataMeta
    labels_test: torch.Tensor | None = None


def make_bundle(
    raw: RawData,
    *,
    dataset: str,
    val: float,
    test: float,
    stratify: bool,
    seed: int,
    labels_per_class: int | None = None,
    folds: tuple[int, int] | None = None,
) -> DataBundle:
    """Split `raw` (seeded, stratified for classification) and standardise on train only.

    With `labels_per_class`, the training split keeps only that many samples of each class
    (seeded); validation and test stay whole, so a few-label run is measured as reliably
    as a full one. With `folds` = (K, k), the test split is fold k of a seeded K-fold
    partition (stratified for classification).
    """
    if folds is not None:
        _check_folds_fit(raw, dataset)
    if raw.ordered:
        return _chronological_bundle(raw, dataset=dataset, val=val, test=test)
    try:
        return _shuffled_bundle(
            raw,
            dataset=dataset,
            val=val,
            test=test,
            stratify=stratify,
            seed=seed,
            labels_per_class=labels_per_class,
            folds=folds,
        )
    except ValueError as error:  # e.g. a class with too few samples to stratify
        raise NeuralabError(
            "data.split",
            f"cannot split {len(raw.x)} samples: {error}",
            "use larger val/test fractions, more data, or stratify: false",
        ) from None


def _shuffled_bundle(
    raw: RawData,
    *,
    dataset: str,
    val: float,
    test: float,
    stratify: bool,
    seed: int,
    labels_per_class: int | None,
    folds: tuple[int, int] | None,
) -> DataBundle:
    labels = raw.y if stratify and raw.task == "classification" else None
    if raw.x_test is None and folds is None:
        x_rest, x_test, y_rest, y_test = train_test_split(
            raw.x, raw.y, test_size=test, random_state=seed, stratify=labels
        )
        labels = y_rest if labels is not None else None
        val_of_rest = val / (1.0 - test)
    elif folds is None:  # a published test split is kept as it is; val comes from training
        x_rest, y_rest, x_test, y_test = raw.x, raw.y, raw.x_test, raw.y_test
        val_of_rest = val
    else:  # the test split is one fold (make_bundle refused data with a fixed test split)
        x_rest, x_test, y_rest, y_test = _fold_split(raw, folds, seed, labels)
        labels = y_rest if labels is not None else None
        val_of_rest = val / (1.0 - 1.0 / folds[0])
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val_of_rest, random_state=seed, stratify=labels
    )
    if labels_per_class is not None:
        keep = _few_per_class(y_train, labels_per_class, seed)
        x_train, y_train = x_train[keep], y_train[keep]
    return _scaled_bundle(raw, dataset, (x_train, y_train), (x_val, y_val), (x_test, y_test))


def _check_folds_fit(raw: RawData, dataset: str) -> None:
    if raw.x_test is not None or raw.ordered:
        why = "a fixed, published test split" if raw.x_test is not None else "time-ordered samples"
        raise NeuralabError(
            "data.split.folds",
            f"dataset '{dataset}' has {why}; cross-validation folds would replace it",
            "remove data.split.folds",
        )


def _fold_split(
    raw: RawData, folds: tuple[int, int], seed: int, labels: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_rest, x_test, y_rest, y_test) with fold k of a seeded K-fold partition as test."""
    count, k = folds
    splitter = (StratifiedKFold if labels is not None else KFold)(
        n_splits=count, shuffle=True, random_state=seed
    )
    rest, test = list(splitter.split(raw.x, labels))[k]
    return raw.x[rest], raw.x[test], raw.y[rest], raw.y[test]


def _few_per_class(y: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Indices of `count` samples of each class in `y` (all of a class that has fewer)."""
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(y == label))[:count] for label in np.unique(y)]
    return np.sort(np.concatenate(chosen))


def select_classes(raw: RawData, classes: tuple[str, ...]) -> RawData:
    """Only the samples of the named classes, relabelled 0..k-1 in the order given."""
    if raw.task != "classification":
        raise NeuralabError("data.classes", f"applies to classification data, not {raw.task}")
    unknown = [name for name in classes if name not in raw.label_names]
    if unknown:
        raise NeuralabError(
            "data.classes",
            f"{', '.join(map(repr, unknown))} not among the classes of this dataset",
            f"classes: {', '.join(raw.label_names)}",
        )
    old = np.array([raw.label_names.index(name) for name in classes])
    new_index = np.full(len(raw.label_names), -1)
    new_index[old] = np.arange(len(old))

    def keep(x: np.ndarray | None, y: np.ndarray | None) -> tuple[Any, Any]:
        if x is None or y is None:
            return x, y
        mask = np.isin(y, old)
        return x[mask], new_index[y[mask]]

    x, y = keep(raw.x, raw.y)
    x_test, y_test = keep(raw.x_test, raw.y_test)
    return dataclasses.replace(
        raw, x=x, y=y, x_test=x_test, y_test=y_test, label_names=tuple(classes)
    )


def _chronological_bundle(raw: RawData, *, dataset: str, val: float, test: float) -> DataBundle:
    n = len(raw.x)
    val_start, test_start = round(n * (1 - val - test)), round(n * (1 - test))
    return _scaled_bundle(
        raw,
        dataset,
        (raw.x[:val_start], raw.y[:val_start]),
        (raw.x[val_start:test_start], raw.y[val_start:test_start]),
        (raw.x[test_start:], raw.y[test_start:]),
    )


Split = tuple[np.ndarray, np.ndarray]


def _scaled_bundle(raw: RawData, dataset: str, train: Split, val: Split, test: Split) -> DataBundle:
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = train, val, test
    sizes = {"train": len(x_train), "val": len(x_val), "test": len(x_test)}
    meta = _fit_meta(raw, dataset, x_train, y_train, sizes)
    return DataBundle(
        x_train=meta.scale_inputs(x_train),
        y_train=meta.scale_targets(y_train),
        x_val=meta.scale_inputs(x_val),
        y_val=meta.scale_targets(y_val),
        x_test=meta.scale_inputs(x_test),
        y_test=meta.scale_targets(y_test),
        meta=meta,
    )


def _fit_meta(
    raw: RawData, dataset: str, x_train: np.ndarray, y_train: np.ndarray, sizes: dict[str, int]
) -> DataMeta:
    mean, std = _input_stats(raw, x_train)
    y_mean: list[float] = []
    y_std: list[float] = []
    if raw.task == "classification":
        num_outputs = len(raw.label_names)
    elif raw.task in INTEGER_TARGETS:  # one output per token of the vocabulary
        num_outputs = len(raw.vocab)
    else:
        y_mean_arr, y_std_arr = y_train.mean(axis=0), y_train.std(axis=0)
        y_std_arr = np.where(y_std_arr > 0, y_std_arr, 1.0)
        num_outputs, y_mean, y_std = y_train.shape[1], y_mean_arr.tolist(), y_std_arr.tolist()
    return DataMeta(
        dataset=dataset,
        kind=raw.kind,
        task=raw.task,
        input_shape=tuple(raw.x.shape[1:]),
        num_outputs=num_outputs,
        label_names=raw.label_names,
        x_mean=mean.tolist(),
        x_std=std.tolist(),
        y_mean=y_mean,
        y_std=y_std,
        features=raw.features,
        sizes=sizes,
        vocab=raw.vocab,
    )


def _input_stats(raw: RawData, x_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature stats for tables, per-channel for images and sequences; none for text."""
    if raw.kind == "text":
        return np.zeros(0), np.ones(0)
    if raw.kind == "tabular":
        mean, std = x_train.mean(axis=0), x_train.std(axis=0)
        if raw.features:  # one-hot columns stay 0/1
            numeric = np.concatenate([np.full(f.width, f.kind == "numeric") for f in raw.features])
            mean, std = np.where(numeric, mean, 0.0), np.where(numeric, std, 1.0)
    else:
        axes = (0, *range(2, x_train.ndim))  # all but the channel axis
        mean = x_train.mean(axis=axes, keepdims=True)[0]
        std = x_train.std(axis=axes, keepdims=True)[0]
    return mean, np.where(std > 0, std, 1.0)
