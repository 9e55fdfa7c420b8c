"""Multi-task learning: one shared body, one head per entry of the `tasks:` section.

```yaml
tasks:
  digit: {target: label}                 # the dataset's own classes
  parity: {target: parity, weight: 0.5}  # even / odd, derived from integer class names
```

For a CSV file every target is a column (all other columns are inputs); a builtin
classification set offers `label` and, when its class names are integers, `parity`. The
targets travel as one float matrix, a column per task: class indices, or values
standardised on the training split. The model is built with one output per class or value
of every head, side by side; `tasks.MultiTask` cuts them apart and scores each head.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import Field, StringConstraints

from neuralab.data import DataBundle, DataConfig, RawData, SplitIndices, select_classes
from neuralab.data.bundle import make_bundle
from neuralab.data.files import CSVConfig, encode_features, encode_target, infer_feature, read_csv
from neuralab.errors import NeuralabError
from neuralab.schema import Strict
from neuralab.tasks import Classification, Head, MultiTask, Regression

TaskName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9]*$")]


class TaskSpecConfig(Strict):
    """One head: what it predicts and how much its loss counts."""

    target: str  # a CSV column; for builtin class data `label` or `parity`
    weight: float = Field(1.0, gt=0.0)
    task: Literal["classification", "regression"] | None = None  # inferred from the target


TasksConfig = dict[TaskName, TaskSpecConfig]


@dataclasses.dataclass(frozen=True)
class Target:
    """One target column as read: values per sample (class index or number), and classes."""

    kind: Literal["classification", "regression"]
    values: np.ndarray
    labels: tuple[str, ...] = ()
    test_values: np.ndarray | None = None


def load_multitask(
    data: DataConfig, tasks: TasksConfig, *, seed: int, split: SplitIndices | None = None
) -> tuple[DataBundle, MultiTask]:
    """The bundle (targets: one column per task) and the task that scores every head;
    with `split` (a run's stored split), the samples go where it says."""
    if data.labels_per_class is not None:
        raise NeuralabError("data.labels_per_class", "not supported together with tasks:")
    raw, targets = _read(data, tasks, seed)
    y = np.stack([t.values for t in targets], axis=1).astype(np.float32)
    y_test = None
    if raw.y_test is not None:  # a published test split: builtin targets carry test values
        y_test = np.stack([np.asarray(t.test_values) for t in targets], axis=1).astype(np.float32)
    raw = dataclasses.replace(raw, y=y, y_test=y_test, task="several_targets", label_names=())
    fractions = data.split
    bundle = make_bundle(
        raw,
        dataset=data.dataset.name,
        val=fractions.val,
        test=fractions.test,
        stratify=False,
        seed=seed,
        split=split,
    )
    return _finish(bundle, tasks, targets)


def _read(data: DataConfig, tasks: TasksConfig, seed: int) -> tuple[RawData, list[Target]]:
    source = data.dataset
    if isinstance(source, CSVConfig):
        return _read_csv(source, tasks)
    raw = source.load(seed)
    if data.classes is not None:
        raw = select_classes(raw, data.classes)
    if raw.task != "classification":
        raise NeuralabError(
            "tasks", f"builtin {raw.task} data has no named targets", "use a CSV file"
        )
    return raw, [_builtin_target(raw, name, spec) for name, spec in tasks.items()]


def _builtin_target(raw: RawData, name: str, spec: TaskSpecConfig) -> Target:
    numeric = all(label.lstrip("-").isdigit() for label in raw.label_names)
    valid = ["label", "parity"] if numeric else ["label"]
    if spec.target not in valid or spec.task == "regression":
        raise NeuralabError(
            f"tasks.{name}.target",
            f"'{spec.target}' is not a {spec.task or 'classification'} target of this dataset",
            f"valid: {', '.join(valid)}",
        )
    if spec.target == "label":
        return Target("classification", raw.y, raw.label_names, raw.y_test)
    parity = np.array([int(label) % 2 for label in raw.label_names])
    test = None if raw.y_test is None else parity[raw.y_test]
    return Target("classification", parity[raw.y], ("even", "odd"), test)


def _read_csv(source: CSVConfig, tasks: TasksConfig) -> tuple[RawData, list[Target]]:
    table = read_csv(source.csv, where="data.dataset.csv")
    columns = {spec.target for spec in tasks.values()}
    for name, spec in tasks.items():
        if spec.target not in table.columns:
            raise NeuralabError(
                f"tasks.{name}.target",
                f"column '{spec.target}' not in {source.csv.name}",
                f"columns: {', '.join(table.columns)}",
            )
    features = tuple(infer_feature(table, c) for c in table.columns if c not in columns)
    if not features:
        raise NeuralabError("data.dataset.csv", f"{source.csv.name} has no feature columns")
    targets = []
    for spec in tasks.values():
        values, kind, labels = encode_target(table, spec.target, spec.task)
        targets.append(Target(kind, values.reshape(-1), labels))  # type: ignore[arg-type]
    x = encode_features(table, features)
    return RawData(x, x[:, :0], kind="tabular", task="several_targets", features=features), targets


def _finish(
    bundle: DataBundle, tasks: TasksConfig, targets: list[Target]
) -> tuple[DataBundle, MultiTask]:
    """Put class columns back to plain indices (the bundle standardised every column),
    and size the output layer: one output per class of each classifier, one per value."""
    meta = bundle.meta
    y_mean, y_std = list(meta.y_mean), list(meta.y_std)
    heads, start = [], 0
    for column, ((name, spec), target) in enumerate(zip(tasks.items(), targets, strict=True)):
        if target.kind == "classification":
            y_mean[column], y_std[column] = 0.0, 1.0
            task: Classification | Regression = Classification(len(target.labels))
            width = len(target.labels)
        else:
            task, width = Regression(meta).on_column(column), 1
        outputs = slice(start, start + width)
        heads.append(Head(name, task, outputs, column, spec.weight, target.labels))
        start += width
    fixed = dataclasses.replace(meta, y_mean=y_mean, y_std=y_std, num_outputs=start)

    def rescale(y: torch.Tensor) -> torch.Tensor:
        raw = meta.unscale_targets(y)
        classes = [h.column for h in heads if isinstance(h.task, Classification)]
        raw[:, classes] = raw[:, classes].round()
        return fixed.scale_targets(raw.numpy())

    bundle = dataclasses.replace(
        bundle,
        y_train=rescale(bundle.y_train),
        y_val=rescale(bundle.y_val),
        y_test=rescale(bundle.y_test),
        meta=fixed,
    )
    return bundle, MultiTask(tuple(heads))
