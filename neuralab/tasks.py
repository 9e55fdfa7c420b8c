"""What is being learned: the loss, the metrics, and how a raw output becomes a prediction.

A task is inferred from the data (and can be stated in the config). The training loop
only calls `loss` and `metrics`; everything task-specific lives here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import torch
from sklearn.metrics import (
    confusion_matrix,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
)
from torch.nn import functional as F

from neuralab.calibration import expected_calibration_error
from neuralab.data import DataMeta
from neuralab.errors import NeuralabError

LossName = Literal["auto", "cross_entropy", "mse", "mae"]
# Metrics where lower is better; every other metric is maximised.
LOWER_IS_BETTER = {"loss", "mse", "mae", "bits_per_char", "ece"}


@dataclass(frozen=True)
class Classification:
    """Cross-entropy on logits; accuracy, macro-F1 and expected calibration error (ECE);
    predictions are class indices."""

    num_classes: int
    name: str = "classification"
    metric_names: tuple[str, ...] = ("accuracy", "macro_f1", "ece")
    main_metric: str = "accuracy"

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output, target)

    def metrics(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        predicted, truth = output.argmax(dim=1).numpy(), target.numpy()
        return {
            "accuracy": float((predicted == truth).mean()),
            "macro_f1": macro_f1(truth, predicted, self.num_classes),
            "ece": expected_calibration_error(output, target),
        }

    def confusion(self, output: torch.Tensor, target: torch.Tensor) -> list[list[int]]:
        matrix = confusion_matrix(
            target.numpy(), output.argmax(dim=1).numpy(), labels=range(self.num_classes)
        )
        return matrix.tolist()


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


@dataclass(frozen=True)
class Regression:
    """MSE or MAE on standardised targets; MSE, MAE and R^2 reported in the target's units."""

    meta: DataMeta
    loss_name: Literal["mse", "mae"] = "mse"
    name: str = "regression"
    metric_names: tuple[str, ...] = ("mse", "mae", "r2")
    main_metric: str = "r2"

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.loss_name == "mae":
            return F.l1_loss(output, target)
        return F.mse_loss(output, target)

    def metrics(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        predicted = self.meta.unscale_targets(output).numpy()
        truth = self.meta.unscale_targets(target).numpy()
        return {
            "mse": float(mean_squared_error(truth, predicted)),
            "mae": float(mean_absolute_error(truth, predicted)),
            "r2": float(r2_score(truth, predicted)),
        }


@dataclass(frozen=True)
class Reconstruction:
    """The target is the (standardised) input itself: MSE loss; MSE and MAE per value.

    Errors are in standardised units, so they compare across datasets and pixels.
    """

    name: str = "reconstruction"
    metric_names: tuple[str, ...] = ("mse", "mae")
    main_metric: str = "mse"

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(output, target)

    def metrics(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        return {
            "mse": F.mse_loss(output, target).item(),
            "mae": F.l1_loss(output, target).item(),
        }


def discriminator_loss(real_logit: torch.Tensor, fake_logit: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of telling real samples (1) from generated ones (0)."""
    return F.binary_cross_entropy_with_logits(
        real_logit, torch.ones_like(real_logit)
    ) + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))


def generator_loss(fake_logit: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss, -log D(G(z)): strong gradients while the
    discriminator still wins easily (Goodfellow et al. 2014, section 3)."""
    return F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit))


@dataclass(frozen=True)
class Adversarial:
    """A GAN's two players. The output holds, per sample, the discriminator's logits for
    that real sample and for one generated sample, (N, 2); the target is unused.

    `d_loss` and `g_loss` are each player's loss, `d_real` and `d_fake` the mean
    probability the discriminator gives real and generated samples of being real (both
    near 0.5 when neither player wins). `loss` is d_loss + g_loss. None of these measures
    sample quality, so nothing is selected or stopped on them: look at `samples.png`.
    """

    name: str = "adversarial"
    metric_names: tuple[str, ...] = ("d_loss", "g_loss", "d_real", "d_fake")
    main_metric: str = "g_loss"
    curves: tuple[str, ...] = ("d_loss", "g_loss", "d_real", "d_fake")

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        del target
        return discriminator_loss(output[:, 0], output[:, 1]) + generator_loss(output[:, 1])

    def metrics(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        del target
        real, fake = output[:, 0], output[:, 1]
        return {
            "d_loss": discriminator_loss(real, fake).item(),
            "g_loss": generator_loss(fake).item(),
            "d_real": real.sigmoid().mean().item(),
            "d_fake": fake.sigmoid().mean().item(),
        }


@dataclass(frozen=True)
class LanguageModel:
    """Next-token cross-entropy over every position; reported as bits per character.

    Outputs are logits (B, T, vocab) for targets (B, T). Bits per character is the loss in
    base 2: 0 is perfect; a uniform guess over V symbols costs log2(V).
    """

    name: str = "language_model"
    metric_names: tuple[str, ...] = ("bits_per_char", "accuracy")
    main_metric: str = "bits_per_char"

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


@dataclass(frozen=True)
class SequenceToSequence:
    """Cross-entropy over target tokens, padding ignored. Exact match counts outputs that
    equal the target at every position up to and including its end marker.
    """

    pad: int = 0
    name: str = "seq2seq"
    metric_names: tuple[str, ...] = ("exact_match", "token_accuracy")
    main_metric: str = "exact_match"

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output.flatten(0, 1), target.flatten(), ignore_index=self.pad)

    def metrics(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        real = target != self.pad
        right = (output.argmax(dim=-1) == target) | ~real
        return {
            "exact_match": right.all(dim=1).float().mean().item(),
            "token_accuracy": (right & real).sum().item() / max(real.sum().item(), 1),
        }


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
class MultiTask:
    """Several tasks on one shared body: the model's output columns are cut into one slice
    per head (a linear head each, stored side by side in the output layer). Targets are one
    column per head: class indices (as floats) or standardised values. The loss is the
    weighted sum of the heads' losses; metrics are reported per head (`digit_accuracy`).
    """

    heads: tuple[Head, ...]
    name: str = "multitask"

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


@runtime_checkable
class Summarized(Protocol):
    """A task whose loss and metrics are sums over samples: a batch's outputs reduce to a
    few numbers (`summarize`), summed over batches into the scores (`summary_scores`)."""

    def summarize(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor: ...

    def summary_scores(self, total: torch.Tensor) -> dict[str, float]: ...


Task = (
    Classification
    | Regression
    | Reconstruction
    | LanguageModel
    | SequenceToSequence
    | Adversarial
    | MultiTask
)


def make_task(meta: DataMeta, loss: LossName = "auto", *, reconstruction: bool = False) -> Task:
    """The task the data implies (or reconstruction, for autoencoders), with the loss the
    config asks for."""
    if reconstruction:
        if loss not in ("auto", "mse"):
            raise NeuralabError(
                "train.loss", f"'{loss}' does not apply to reconstruction", "use mse or auto"
            )
        return Reconstruction()
    if meta.task in ("language_model", "seq2seq"):
        if loss not in ("auto", "cross_entropy"):
            raise NeuralabError(
                "train.loss", f"'{loss}' does not apply to {meta.task}", "use cross_entropy or auto"
            )
        return LanguageModel() if meta.task == "language_model" else SequenceToSequence()
    if meta.task == "classification":
        if loss not in ("auto", "cross_entropy"):
            raise NeuralabError(
                "train.loss",
                f"'{loss}' is a regression loss, but this is classification",
                "use cross_entropy or auto",
            )
        return Classification(meta.num_outputs)
    if loss == "cross_entropy":
        raise NeuralabError(
            "train.loss", "'cross_entropy' needs classes, but this is regression", "use mse or mae"
        )
    return Regression(meta, "mse" if loss == "auto" else loss)


def monitor_names(task: Task) -> list[str]:
    """Every metric name that `train.early_stopping.monitor` may name for this task."""
    return [f"{split}_{m}" for split in ("val", "train") for m in ("loss", *task.metric_names)]


def lower_is_better(metric: str) -> bool:
    """Whether `metric` (e.g. `val_loss`, `train_accuracy`, `val_price_mae`, or a bare
    `bits_per_char`) is minimised."""
    split, _, rest = metric.partition("_")
    base = rest if split in ("train", "val", "test") else metric
    return any(base == m or base.endswith(f"_{m}") for m in LOWER_IS_BETTER)


def is_improvement(metric: str, value: float, best: float) -> bool:
    """True if `value` beats `best` for this metric (lower for losses and errors)."""
    return value < best if lower_is_better(metric) else value > best
