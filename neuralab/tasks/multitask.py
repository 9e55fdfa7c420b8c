"""Several tasks on one shared body: a classifier or regressor head per target column."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from neuralab.errors import NeuralabError
from neuralab.tasks.base import BaseTask
from neuralab.tasks.classification import Classification
from neuralab.tasks.regression import Regression

if TYPE_CHECKING:
    from pathlib import Path

    from neuralab.card import Card
    from neuralab.data import DataMeta
    from neuralab.runs import Predictor
    from neuralab.tasks.prediction import Prediction


@dataclass(frozen=True)
class Head:
    """One task of a multi-task model: its output columns, its target column, its weight."""

    name: str
    task: Classification | Regression
    outputs: slice  # the model output columns this head owns
    column: int  # the target column it is scored on
    weight: float = 1.0
    labels: tuple[str, ...] = ()  # class names of a classifier head


@dataclass(frozen=True)
class MultiTask(BaseTask):
    """Several tasks on one shared body: the model's output columns are cut into one slice
    per head (a linear head each, stored side by side in the output layer). Targets are one
    column per head: class indices (as floats) or standardised values. The loss is the
    weighted sum of the heads' losses; metrics are reported per head (`digit_accuracy`).
    """

    heads: tuple[Head, ...]
    name: ClassVar[str] = "multitask"
    trivial_output: ClassVar[str] = "guessing classes uniformly and values at their training mean"
    data_task: ClassVar[str | None] = "several_targets"  # built by neuralab/multitask.py

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(
            f"{head.name}_{metric}"
            for head in self.heads
            for metric in ("loss", *head.task.metric_names)
        )

    @property
    def main_metric(self) -> str:
        return f"{self.heads[0].name}_{self.heads[0].task.main_metric}"

    def _parts(self, output: torch.Tensor, target: torch.Tensor):
        for head in self.heads:
            column = target[:, head.column]
            if isinstance(head.task, Classification):
                yield head, output[:, head.outputs], column.long()
            else:
                yield head, output[:, head.outputs], column[:, None]

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(
            (h.weight * h.task.loss(out, y) for h, out, y in self._parts(output, target)),
            start=torch.zeros(()),
        )

    def metrics(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        scores: dict[str, float] = {}
        for head, out, y in self._parts(output, target):
            scores[f"{head.name}_loss"] = head.task.loss(out, y).item()
            scores.update({f"{head.name}_{k}": v for k, v in head.task.metrics(out, y).items()})
        return scores

    def predict(self, predictor: Predictor, inputs: Any) -> Prediction:
        raise NeuralabError(
            "predict", "multi-task runs are not served by predict yet", "use neuralab evaluate"
        )

    def report_section(self, run_dir: Path, card: Card, model, bundle) -> str:
        from neuralab.report.sections import heads_section

        return heads_section(card)

    def settings(self) -> dict[str, Any]:
        """The heads: name, kind, output columns, weight, classes (the column is the index)."""
        return {
            "heads": [
                {
                    "name": head.name,
                    "task": head.task.name,
                    "outputs": [head.outputs.start, head.outputs.stop],
                    "weight": head.weight,
                    "labels": list(head.labels),
                }
                for head in self.heads
            ]
        }

    @classmethod
    def from_card(cls, settings: dict[str, Any], meta: DataMeta) -> MultiTask:
        heads = []
        for column, head in enumerate(settings["heads"]):
            labels = tuple(head["labels"])
            task: Classification | Regression = (
                Classification(len(labels))
                if head["task"] == Classification.name
                else Regression(meta).on_column(column)
            )
            start, stop = head["outputs"]
            heads.append(
                Head(head["name"], task, slice(start, stop), column, head["weight"], labels)
            )
        return cls(tuple(heads))
