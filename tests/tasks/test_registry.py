"""Every task kind: registered once, rebuilt from the card, and complete."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from neuralab.card import read_card, write_card
from neuralab.data import DataMeta
from neuralab.errors import NeuralabError
from neuralab.tasks import (
    TASKS,
    Adversarial,
    BaseTask,
    Classification,
    Clustering,
    Head,
    LanguageModel,
    MultiTask,
    Reconstruction,
    Regression,
    SequenceToSequence,
    make_task,
    task_from_card,
    task_record,
)
from tests.conftest import make_card

META = DataMeta(
    dataset="table",
    kind="tabular",
    task="regression",
    input_shape=(3,),
    num_outputs=2,
    label_names=(),
    x_mean=[0.0, 0.0, 0.0],
    x_std=[1.0, 1.0, 1.0],
    y_mean=[10.0, -4.0],
    y_std=[2.0, 0.5],
)
EXAMPLES: list[BaseTask] = [
    Classification(4),
    Regression(META, "mae"),
    Reconstruction(),
    LanguageModel(),
    SequenceToSequence(pad=0),
    Adversarial(),
    Clustering(3, labelled=True),
    MultiTask(
        (
            Head("kind", Classification(2), slice(0, 2), 0, 1.0, ("a", "b")),
            Head("price", Regression(META).on_column(1), slice(2, 3), 1, 0.5),
        )
    ),
]


def test_every_registered_task_has_an_example_and_names_are_unique():
    assert len(TASKS) >= 8
    assert {type(task) for task in EXAMPLES} == set(TASKS)
    assert len({cls.name for cls in TASKS}) == len(TASKS)


def saved_and_read(task: BaseTask, tmp_path) -> BaseTask:
    """The task rebuilt from a card.json that recorded it."""
    write_card(tmp_path, make_card(**task_record(task), data=META))
    return task_from_card(read_card(tmp_path))


@pytest.mark.parametrize("task", EXAMPLES, ids=lambda task: task.name)
def test_the_card_rebuilds_an_equal_task(task, tmp_path):
    assert saved_and_read(task, tmp_path) == task


@pytest.mark.parametrize("task", EXAMPLES, ids=lambda task: task.name)
def test_every_task_declares_what_callers_ask(task):
    assert task.main_metric in {*task.metric_names, "loss"} or task.main_metric.endswith(
        tuple(task.metric_names)
    )
    assert task.trivial_output
    assert task.secondary_metric is None or task.secondary_metric in task.metric_names


def test_a_rebuilt_multitask_head_scores_in_its_own_units(tmp_path):
    rebuilt = saved_and_read(EXAMPLES[-1], tmp_path)
    assert isinstance(rebuilt, MultiTask)
    price = rebuilt.heads[1].task
    assert isinstance(price, Regression)
    # standardised 0 is the column's mean, -4.0; its error of 1 std is 0.5 in its units
    assert price.per_sample_errors(torch.ones(1, 1), torch.zeros(1, 1)).item() == 0.5


def test_the_data_implies_the_task():
    assert isinstance(make_task(dataclasses.replace(META, task="classification")), Classification)
    assert isinstance(make_task(dataclasses.replace(META, task="next_token")), LanguageModel)
    with pytest.raises(NeuralabError, match="'mse' does not apply to classification"):
        make_task(dataclasses.replace(META, task="classification"), "mse")


def test_an_unknown_task_in_a_card_is_named():
    with pytest.raises(NeuralabError, match="unknown task 'ranking'"):
        task_from_card(make_card(task="ranking", task_settings={}, data=META))


def test_per_sample_errors_match_the_metrics():
    output, target = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]]), torch.tensor([0, 0, 0])
    wrong = Classification(2).per_sample_errors(output, target)
    assert wrong.tolist() == [False, True, False]
    accuracy = Classification(2).metrics(output, target)["accuracy"]
    assert np.isclose(accuracy, 1 - wrong.float().mean().item())
