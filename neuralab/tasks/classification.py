"""Classification: cross-entropy on logits; predictions are class names with probabilities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from sklearn.metrics import confusion_matrix
from torch.nn import functional as F

from neuralab.calibration import expected_calibration_error
from neuralab.errors import NeuralabError
from neuralab.tasks.base import BaseTask
from neuralab.tasks.prediction import Prediction

if TYPE_CHECKING:
    from pathlib import Path

    from neuralab.card import Card
    from neuralab.data import DataMeta
    from neuralab.runs import Predictor


@dataclass(frozen=True)
class Classification(BaseTask):
    """Cross-entropy on logits; accuracy, macro-F1 and expected calibration error (ECE);
    predictions are class indices."""

    num_classes: int
    metric_names: tuple[str, ...] = ("accuracy", "macro_f1", "ece")
    main_metric: str = "accuracy"
    name: ClassVar[str] = "classification"
    trivial_output: ClassVar[str] = "a uniform guess"
    secondary_metric: ClassVar[str | None] = "macro_f1"
    binary_errors: ClassVar[bool] = True
    scores_one_target: ClassVar[bool] = True
    data_task: ClassVar[str | None] = "classification"
    losses: ClassVar[tuple[str, ...]] = ("cross_entropy",)

    @classmethod
    def from_data(cls, meta: DataMeta, loss: str) -> Classification:
        cls.check_loss(loss)
        if meta.num_outputs < 2:  # e.g. a flat image folder: one class, nothing to learn
            raise NeuralabError(
                "data.dataset",
                f"classification needs 2 or more classes, but the data has "
                f"{meta.num_outputs} ({', '.join(meta.label_names)})",
                "give each class its own subfolder, or train an autoencoder, a gan, "
                "kmeans or gmm, which need no labels",
            )
        return cls(meta.num_outputs)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output, target)

    def metrics(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        predicted, truth = output.argmax(dim=1).numpy(), target.numpy()
        return {
            "accuracy": float((predicted == truth).mean()),
            "macro_f1": macro_f1(truth, predicted, self.num_classes),
            "ece": expected_calibration_error(output, target),
        }

    def test_record(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, Any]:
        matrix = confusion_matrix(
            target.numpy(), output.argmax(dim=1).numpy(), labels=range(self.num_classes)
        )
        return {"confusion_matrix": matrix.tolist()}

    def per_sample_errors(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return output.argmax(dim=1) != target

    def predict(self, predictor: Predictor, inputs: Any) -> Prediction:
        logits = predictor.outputs(inputs) / predictor.calibration_temperature
        probabilities = logits.softmax(dim=1).numpy()
        names = predictor.meta.label_names
        labels = [names[i] for i in probabilities.argmax(axis=1)]
        return Prediction(labels, probabilities, label_names=names)

    def report_section(self, run_dir: Path, card: Card, model, bundle) -> str:
        from neuralab.report.sections import classification_section  # matplotlib: lazily

        return classification_section(card, model, bundle)

    def settings(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes}


def macro_f1(truth: np.ndarray, predicted: np.ndarray, num_classes: int) -> float:
    """Mean F1 over classes 0..num_classes-1; a class never true nor predicted scores 0.

    Equals sklearn's `f1_score(average="macro", labels=range(num_classes),
    zero_division=0)` (tests/test_macro_f1.py), from one bincount: sklearn's input checks
    took longer than a small model's training epoch, and this runs every epoch (issue 9).
    """
    confusion = np.bincount(truth * num_classes + predicted, minlength=num_classes**2)
    confusion = confusion.reshape(num_classes, num_classes)
    denominator = confusion.sum(0) + confusion.sum(1)  # 2 tp + fp + fn, per class
    f1 = np.divide(
        2.0 * np.diag(confusion), denominator, out=np.zeros(num_classes), where=denominator > 0
    )
    return float(f1.mean())
