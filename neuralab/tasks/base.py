"""What every task shares: metric directions, and the defaults a task overrides.

A task owns everything that differs per kind of learning (DESIGN.md, "The path of data"):
its loss and metrics, the main metric, per-sample errors for compare's paired tests, how
a raw output becomes a prediction, its report section, what an all-zero output means for
`inspect`, and its round trip through the card. Callers ask the task object; none of them
asks which task it is by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import torch

from neuralab.errors import NeuralabError

if TYPE_CHECKING:
    from pathlib import Path

    from neuralab.card import Card
    from neuralab.data import DataBundle, DataMeta
    from neuralab.runs import Predictor
    from neuralab.tasks.prediction import Prediction

# Metrics where lower is better; every other metric is maximised.
LOWER_IS_BETTER = {"loss", "mse", "mae", "bits_per_char", "ece"}


def lower_is_better(metric: str) -> bool:
    """Whether `metric` (e.g. `val_loss`, `train_accuracy`, `val_price_mae`, or a bare
    `bits_per_char`) is minimised."""
    split, _, rest = metric.partition("_")
    base = rest if split in ("train", "val", "test") else metric
    return any(base == m or base.endswith(f"_{m}") for m in LOWER_IS_BETTER)


def is_improvement(metric: str, value: float, best: float) -> bool:
    """True if `value` beats `best` for this metric (lower for losses and errors)."""
    return value < best if lower_is_better(metric) else value > best


class BaseTask:
    """The defaults: a task that predicts nothing, ranks on nothing and reads no text.

    Subclasses are frozen dataclasses naming `name`, `metric_names`, `main_metric` and
    `trivial_output`, with `loss` and `metrics`; they override what they can do.
    """

    name: ClassVar[str]
    # what an all-zero output means (zero logits are a uniform guess; a zero standardised
    # value is the training mean), so its loss is a yardstick for the first batch's
    trivial_output: ClassVar[str]
    # the metric shown beside the main one on a leaderboard; None: not ranked by compare
    secondary_metric: ClassVar[str | None] = None
    # per-sample errors are right/wrong (compared by McNemar's test), not magnitudes
    binary_errors: ClassVar[bool] = False
    takes_text: ClassVar[bool] = False  # inputs to predict are source strings
    writes_text: ClassVar[bool] = False  # `generate` continues a prompt
    # one output per sample that attributions and permutation importance can explain
    scores_one_target: ClassVar[bool] = False
    # the training loss is expected to fall (not so for two players against each other)
    loss_should_fall: ClassVar[bool] = True
    # the data kind (`DataMeta.task`) this task is inferred from; None: a family implies it
    data_task: ClassVar[str | None] = None
    # the values of `train.loss` this task accepts besides `auto`
    losses: ClassVar[tuple[str, ...]] = ()
    # what the data's own labels do, when this task is not the one they imply (`inspect`)
    labels_use: ClassVar[str] = "labels unused"

    @property
    def metric_names(self) -> tuple[str, ...]:
        """What `metrics` returns, in order."""
        raise NotImplementedError

    @property
    def main_metric(self) -> str:
        """The metric a run is judged (and a leaderboard ranked) by."""
        raise NotImplementedError

    @property
    def curves(self) -> tuple[str, ...]:
        """The metrics drawn in `curves.png`."""
        return ("loss", self.main_metric)

    def adapt(self, bundle: DataBundle) -> DataBundle:
        """The bundle with the targets this task learns (the data's own, by default)."""
        return bundle

    def per_sample_errors(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """One error per test sample (a bool when `binary_errors`), for paired tests."""
        raise NeuralabError(
            "compare",
            f"a {self.name} run has no single metric to rank",
            "train the settings one by one",
        )

    def test_record(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, Any]:
        """What the card keeps of the test outputs besides the metrics."""
        return {}

    def predict(self, predictor: Predictor, inputs: Any) -> Prediction:
        raise NeuralabError("predict", f"a {self.name} run does not make predictions")

    def report_section(self, run_dir: Path, card: Card, model, bundle) -> str:
        """The task's own part of `report.html` (HTML)."""
        return ""

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def metrics(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        raise NotImplementedError

    @classmethod
    def from_data(cls, meta: DataMeta, loss: str) -> BaseTask:
        """The task for data of kind `data_task`, training with `loss`."""
        cls.check_loss(loss)
        return cls()

    @classmethod
    def check_loss(cls, loss: str) -> None:
        """Refuse a `train.loss` this task cannot train with."""
        if loss != "auto" and loss not in cls.losses:
            raise NeuralabError(
                "train.loss",
                f"'{loss}' does not apply to {cls.name}",
                f"use {' or '.join((*cls.losses, 'auto'))}",
            )

    def settings(self) -> dict[str, Any]:
        """What the card keeps to rebuild this task (`from_card`) besides the data meta."""
        return {}

    @classmethod
    def from_card(cls, settings: dict[str, Any], meta: DataMeta) -> BaseTask:
        return cls(**settings)


@runtime_checkable
class Summarized(Protocol):
    """A task whose loss and metrics are sums over samples: a batch's outputs reduce to a
    few numbers (`summarize`), summed over batches into the scores (`summary_scores`)."""

    def summarize(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor: ...

    def summary_scores(self, total: torch.Tensor) -> dict[str, float]: ...
