"""The in-memory dataset every model trains on: tensors per split plus a small `meta` record.

`RawData` is what a source (builtin set or file) produces; `make_bundle` splits it with a
seeded, stratified split, fits standardisation on the training part only, and returns a
`DataBundle`. `DataMeta` is everything a loader needs later to prepare new inputs the
same way (it is written to `card.json`). `SplitIndices` records which samples went where,
so a run folder can rebuild exactly its own split later (it is written to
`split.safetensors`).
"""

from __future__ import annotations

import dataclasses
import hashlib
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

    def feature_names(self) -> list[str]:
        """One name per input column of tabular data, one-hot columns as `name=category`
        (`x0`, `x1`... without named columns); none for other kinds."""
        if self.kind != "tabular":
            return []
        if not self.features:
            return [f"x{i}" for i in range(self.input_shape[0])]
        names: list[str] = []
        for feature in self.features:
            if feature.kind == "numeric":
                names.append(feature.name)
            else:
                names += [f"{feature.name}={c}" for c in feature.categories]
        return names


@dataclass(frozen=True)
class SplitIndices:
    """Which samples of a source went to train, val and test, and a fingerprint of them.

    Indices count the source's samples (after any class selection) in order; a published
    test split's samples count after all the others. `samples_sha256` hashes exactly those
    samples, so a stored split is never applied to samples it was not made from.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    samples_sha256: str


@dataclass(frozen=True)
class DataBundle:
    """Standardised tensors for train/val/test and the meta record that describes them.

    `split` says which source samples each part holds. `labels_test` keeps the dataset's
    own test targets when `y_*` were replaced by the inputs (reconstruction), so the report
    can still colour samples by class.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    meta: DataMeta
    split: SplitIndices
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
    split: SplitIndices | None = None,
) -> DataBundle:
    """Split `raw` (seeded, stratified for classification) and standardise on train only.

    With `labels_per_class`, the training split keeps only that many samples of each class
    (seeded); validation and test stay whole, so a few-label run is measured as reliably
    as a full one. With `folds` = (K, k), the test split is fold k of a seeded K-fold
    partition (stratified for classification). With `split` (a run folder's own), the
    samples go where it says instead of being split again.
    """
    samples_sha256 = fingerprint_samples(raw)
    if split is not None:
        _check_split_fits(split, samples_sha256, dataset)
        return _scaled_bundle(raw, dataset, split)
    if folds is not None:
        _check_folds_fit(raw, dataset)
    if raw.ordered:
        parts = _chronological_split(len(raw.x), val=val, test=test)
        return _scaled_bundle(raw, dataset, SplitIndices(*parts, samples_sha256))
    try:
        parts = _shuffled_split(
            raw,
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
    return _scaled_bundle(raw, dataset, SplitIndices(*parts, samples_sha256))


def fingerprint_samples(raw: RawData) -> str:
    """sha256 of every sample of `raw`, inputs and targets, with their shapes and types."""
    digest = hashlib.sha256()
    for array in (raw.x, raw.y, raw.x_test, raw.y_test):
        if array is not None:
            contiguous = np.ascontiguousarray(array)
            digest.update(f"{contiguous.dtype.str}{contiguous.shape};".encode())
            digest.update(contiguous.data)
    return digest.hexdigest()


def _check_split_fits(split: SplitIndices, samples_sha256: str, dataset: str) -> None:
    """A stored split indexes the samples it was made from; on others it means nothing."""
    if split.samples_sha256 != samples_sha256:
        raise NeuralabError(
            f"data.dataset ({dataset})",
            f"the samples differ from those the run was trained on (sha256 "
            f"{samples_sha256[:12]}..., trained on {split.samples_sha256[:12]}...)",
            "the source or the library versions that generate or read it changed; "
            "train a new run on this data",
        )


Rows = tuple[np.ndarray, np.ndarray, np.ndarray]  # train, val and test sample indices


def _shuffled_split(
    raw: RawData,
    *,
    val: float,
    test: float,
    stratify: bool,
    seed: int,
    labels_per_class: int | None,
    folds: tuple[int, int] | None,
) -> Rows:
    """(train, val, test) sample indices; splitting indices draws the same permutation as
    splitting the arrays did, so runs split as before."""
    labels = raw.y if stratify and raw.task == "classification" else None
    rows = np.arange(len(raw.x))
    if folds is not None:  # the test split is one fold (make_bundle refused a fixed test split)
        rest, test_rows = _fold_split(raw, folds, seed, labels)
        val_of_rest = val / (1.0 - 1.0 / folds[0])
    elif raw.x_test is not None:  # a published test split is kept; val comes from training
        rest, test_rows = rows, len(raw.x) + np.arange(len(raw.x_test))
        val_of_rest = val
    else:
        rest, test_rows = train_test_split(rows, test_size=test, random_state=seed, stratify=labels)
        val_of_rest = val / (1.0 - test)
    train_rows, val_rows = train_test_split(
        rest,
        test_size=val_of_rest,
        random_state=seed,
        stratify=labels[rest] if labels is not None else None,
    )
    if labels_per_class is not None:
        train_rows = train_rows[_few_per_class(raw.y[train_rows], labels_per_class, seed)]
    return train_rows, val_rows, test_rows


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
) -> tuple[np.ndarray, np.ndarray]:
    """(rest, test) sample indices with fold k of a seeded K-fold partition as test."""
    count, k = folds
    splitter = (StratifiedKFold if labels is not None else KFold)(
        n_splits=count, shuffle=True, random_state=seed
    )
    rest, test = list(splitter.split(raw.x, labels))[k]
    return rest, test


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


def _chronological_split(count: int, *, val: float, test: float) -> Rows:
    val_start, test_start = round(count * (1 - val - test)), round(count * (1 - test))
    rows = np.arange(count)
    return rows[:val_start], rows[val_start:test_start], rows[test_start:]


def _all_samples(raw: RawData) -> tuple[np.ndarray, np.ndarray]:
    """Every sample in index order: a published test split's after all the others."""
    if raw.x_test is None or raw.y_test is None:
        return raw.x, raw.y
    return np.concatenate([raw.x, raw.x_test]), np.concatenate([raw.y, raw.y_test])


def _scaled_bundle(raw: RawData, dataset: str, split: SplitIndices) -> DataBundle:
    x, y = _all_samples(raw)
    x_train, y_train = x[split.train], y[split.train]
    sizes = {"train": len(split.train), "val": len(split.val), "test": len(split.test)}
    meta = _fit_meta(raw, dataset, x_train, y_train, sizes)
    return DataBundle(
        x_train=meta.scale_inputs(x_train),
        y_train=meta.scale_targets(y_train),
        x_val=meta.scale_inputs(x[split.val]),
        y_val=meta.scale_targets(y[split.val]),
        x_test=meta.scale_inputs(x[split.test]),
        y_test=meta.scale_targets(y[split.test]),
        meta=meta,
        split=split,
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
