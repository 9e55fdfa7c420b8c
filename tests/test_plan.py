"""The plan step: every problem with an experiment's settings at once, nothing written,
and the global random state untouched."""

from __future__ import annotations

import pytest
import torch

from neuralab.config import load_config
from neuralab.errors import NeuralabError
from neuralab.plan import plan
from neuralab.tasks import Classification, Reconstruction
from tests.conftest import tiny_experiment


def test_every_settings_problem_is_reported_at_once():
    experiment = load_config(
        tiny_experiment(
            model={"family": "mlp", "hidden_sizes": [8]},
            train={
                "epochs": 2,
                "early_stopping": {"monitor": "val_acc"},
                "unfreeze_at_epoch": 2,
                "device": "cuda:7",
            },
        )
    )
    with pytest.raises(NeuralabError) as caught:
        plan(experiment)
    wheres = [problem.where for problem in caught.value.problems]
    assert wheres[0] == "train.early_stopping.monitor"
    assert "train.unfreeze_at_epoch" in wheres
    assert "train.device" in wheres
    assert len(wheres) == 3


def test_a_family_that_cannot_read_the_data_is_reported_with_its_step_problems():
    experiment = load_config(
        tiny_experiment(
            data={"dataset": "pydoc"},
            model={"family": "gan", "channels": [8, 4]},
            train={"epochs": 1, "loss": "mse"},
        )
    )
    with pytest.raises(NeuralabError) as caught:
        plan(experiment)
    wheres = [problem.where for problem in caught.value.problems]
    assert wheres == ["train.loss", "model.family"]


def test_the_family_implies_the_task_and_its_targets():
    classify = plan(load_config(tiny_experiment(model={"family": "mlp"})))
    assert isinstance(classify.task, Classification)
    assert classify.bundle.y_train.ndim == 1
    reconstruct = plan(load_config(tiny_experiment(model={"family": "autoencoder"})))
    assert isinstance(reconstruct.task, Reconstruction)
    assert torch.equal(reconstruct.bundle.y_train, reconstruct.bundle.x_train)


def test_planning_leaves_the_global_random_state_alone():
    experiment = load_config(tiny_experiment(model={"family": "mlp"}, privacy={"epsilon": 3.0}))
    torch.manual_seed(123)
    before = torch.get_rng_state()
    plan(experiment)  # builds a model to check its layers for DP-SGD
    assert torch.equal(torch.get_rng_state(), before)


def test_early_stopping_is_fresh_each_time_and_absent_for_baselines():
    stopping = {"monitor": "val_loss", "patience": 2}
    planned = plan(load_config(tiny_experiment(train={"early_stopping": stopping})))
    first, second = planned.early_stopping(), planned.early_stopping()
    assert first is not None
    assert first is not second
    baseline = plan(
        load_config(tiny_experiment(model={"family": "logreg"}, train={"early_stopping": stopping}))
    )
    assert baseline.early_stopping() is None
