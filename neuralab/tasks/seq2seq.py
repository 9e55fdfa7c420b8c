"""Sequence to sequence: cross-entropy over target tokens; predictions are decoded texts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch.nn import functional as F

from neuralab.tasks.base import BaseTask
from neuralab.tasks.prediction import Prediction

if TYPE_CHECKING:
    from pathlib import Path

    from neuralab.card import Card
    from neuralab.runs import Predictor


@dataclass(frozen=True)
class SequenceToSequence(BaseTask):
    """Cross-entropy over target tokens, padding ignored. Exact match counts outputs that
    equal the target at every position up to and including its end marker.
    """

    pad: int = 0
    metric_names: tuple[str, ...] = ("exact_match", "token_accuracy")
    main_metric: str = "exact_match"
    name: ClassVar[str] = "seq2seq"
    trivial_output: ClassVar[str] = "a uniform guess over the vocabulary"
    secondary_metric: ClassVar[str | None] = "token_accuracy"
    binary_errors: ClassVar[bool] = True
    takes_text: ClassVar[bool] = True
    data_task: ClassVar[str | None] = "sequence_pairs"
    losses: ClassVar[tuple[str, ...]] = ("cross_entropy",)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output.flatten(0, 1), target.flatten(), ignore_index=self.pad)

    def metrics(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        real = target != self.pad
        right = (output.argmax(dim=-1) == target) | ~real
        return {
            "exact_match": right.all(dim=1).float().mean().item(),
            "token_accuracy": (right & real).sum().item() / max(real.sum().item(), 1),
        }

    def per_sample_errors(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Whether any real target token is wrong."""
        return ((output.argmax(dim=-1) != target) & (target != self.pad)).any(dim=1)

    def predict(self, predictor: Predictor, inputs: Any) -> Prediction:
        return Prediction(texts=predictor.translate(inputs))

    def report_section(self, run_dir: Path, card: Card, model, bundle) -> str:
        from neuralab.report.sections import translation_section

        return translation_section(model, bundle)

    def settings(self) -> dict[str, Any]:
        return {"pad": self.pad}
