"""Language modelling: next-token cross-entropy, reported in bits per character."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch.nn import functional as F

from neuralab.errors import NeuralabError
from neuralab.tasks.base import BaseTask

if TYPE_CHECKING:
    from pathlib import Path

    from neuralab.card import Card
    from neuralab.runs import Predictor
    from neuralab.tasks.prediction import Prediction


@dataclass(frozen=True)
class LanguageModel(BaseTask):
    """Next-token cross-entropy over every position; reported as bits per character.

    Outputs are logits (B, T, vocab) for targets (B, T). Bits per character is the loss in
    base 2: 0 is perfect; a uniform guess over V symbols costs log2(V).
    """

    metric_names: tuple[str, ...] = ("bits_per_char", "accuracy")
    main_metric: str = "bits_per_char"
    name: ClassVar[str] = "language_model"
    trivial_output: ClassVar[str] = "a uniform guess over the vocabulary"
    secondary_metric: ClassVar[str | None] = "accuracy"
    writes_text: ClassVar[bool] = True
    data_task: ClassVar[str | None] = "next_token"
    losses: ClassVar[tuple[str, ...]] = ("cross_entropy",)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output.flatten(0, 1), target.flatten())

    def metrics(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        scores = self.summary_scores(self.summarize(output, target))
        return {name: scores[name] for name in self.metric_names}

    def summarize(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """A batch's share of loss and metrics: summed nats, hits and tokens. An epoch keeps
        these three numbers per batch rather than its (B, T, vocab) logits: 4 GB an epoch
        for a 10 MB text file."""
        nats = F.cross_entropy(output.flatten(0, 1), target.flatten(), reduction="sum")
        hits = (output.argmax(dim=-1) == target).sum()
        return torch.stack([nats.detach(), hits.to(nats.dtype), nats.new_tensor(target.numel())])

    def summary_scores(self, total: torch.Tensor) -> dict[str, float]:
        """Loss and metrics from summed `summarize` results."""
        nats, hits, tokens = total.tolist()
        return {
            "loss": nats / tokens,
            "bits_per_char": nats / tokens / math.log(2),
            "accuracy": hits / tokens,
        }

    def per_sample_errors(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """A window's mean cross-entropy."""
        return F.cross_entropy(output.transpose(1, 2), target, reduction="none").mean(dim=1)

    def predict(self, predictor: Predictor, inputs: Any) -> Prediction:
        raise NeuralabError(
            "predict", "a language model does not predict labels", "use neuralab generate"
        )

    def report_section(self, run_dir: Path, card: Card, model, bundle) -> str:
        from neuralab.report.sections import generation_section

        return generation_section(model, bundle)
