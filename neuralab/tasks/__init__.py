"""What is being learned: one module per task kind, and `TASKS`, the registry.

A task is inferred from the data (or implied by the family: an autoencoder reconstructs,
a GAN plays two players). Adding a task kind is "write its module, add it to `TASKS`";
everything after training finds it again from the card (`task_from_card`).
"""

from __future__ import annotations

from typing import Any, Literal

from neuralab.card import Card
from neuralab.data import DataMeta
from neuralab.errors import NeuralabError
from neuralab.tasks.adversarial import Adversarial, discriminator_loss, generator_loss
from neuralab.tasks.base import (
    LOWER_IS_BETTER,
    BaseTask,
    Summarized,
    is_improvement,
    lower_is_better,
)
from neuralab.tasks.classification import Classification, macro_f1
from neuralab.tasks.clustering import Clustering
from neuralab.tasks.language_model import LanguageModel
from neuralab.tasks.multitask import Head, MultiTask
from neuralab.tasks.prediction import Prediction
from neuralab.tasks.reconstruction import Reconstruction
from neuralab.tasks.regression import Regression
from neuralab.tasks.seq2seq import SequenceToSequence

Task = BaseTask  # what callers hold: they ask it, never which task it is
TASKS: tuple[type[BaseTask], ...] = (
    Classification,
    Regression,
    Reconstruction,
    LanguageModel,
    SequenceToSequence,
    Adversarial,
    MultiTask,
    Clustering,
)
LossName = Literal["auto", "cross_entropy", "mse", "mae"]

__all__ = [
    "LOWER_IS_BETTER",
    "TASKS",
    "Adversarial",
    "BaseTask",
    "Classification",
    "Clustering",
    "Head",
    "LanguageModel",
    "LossName",
    "MultiTask",
    "Prediction",
    "Reconstruction",
    "Regression",
    "SequenceToSequence",
    "Summarized",
    "Task",
    "discriminator_loss",
    "generator_loss",
    "is_improvement",
    "lower_is_better",
    "macro_f1",
    "make_task",
    "monitor_names",
    "task_from_card",
    "task_record",
]


def task_record(task: BaseTask) -> dict[str, Any]:
    """The card's `task` and `task_settings` entries."""
    return {"task": task.name, "task_settings": task.settings()}


def task_from_card(card: Card) -> Task:
    """The task a run trained with, rebuilt from its card."""
    by_name = {cls.name: cls for cls in TASKS}
    if card.task not in by_name:
        raise NeuralabError(
            "card.json", f"unknown task '{card.task}'", f"this neuralab knows {', '.join(by_name)}"
        )
    return by_name[card.task].from_card(card.task_settings, card.data)


def make_task(meta: DataMeta, loss: LossName = "auto") -> Task:
    """The task the data implies (`DataMeta.task`), with the loss the config asks for."""
    for cls in TASKS:
        if cls.data_task == meta.task:
            return cls.from_data(meta, loss)
    raise NeuralabError("data", f"no task learns from {meta.task} data")


def monitor_names(task: Task) -> list[str]:
    """Every metric name that `train.early_stopping.monitor` may name for this task."""
    return [f"{split}_{m}" for split in ("val", "train") for m in ("loss", *task.metric_names)]
