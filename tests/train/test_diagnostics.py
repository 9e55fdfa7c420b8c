"""Training health: vanishing and exploding gradients, overfitting, non-finite losses."""

from __future__ import annotations

import re

import pytest
import torch

import neuralab
from neuralab.train import TrainState
from neuralab.train.diagnostics import GradientHealth, TrainingWarning, first_non_finite
from tests.conftest import tiny_experiment


def test_deep_sigmoid_mlp_warns_that_gradients_vanish(tmp_path):
    # Eight sigmoid layers with small weights: each layer scales the backward signal by
    # at most 0.25 * |W|, so the first layer's gradient is orders of magnitude smaller.
    spec = tiny_experiment(
        model={
            "family": "mlp",
            "hidden_sizes": [32] * 8,
            "activation": "sigmoid",
            "init": "normal",
        },
        optim={"name": "sgd", "lr": 0.01},
        train={"epochs": 1},
    )
    with pytest.warns(TrainingWarning, match="gradients vanish.*use relu"):
        run = neuralab.train(spec, out=tmp_path)
    norms = run.card.diagnostics.gradient_norms
    first, last = next(iter(norms.values()))[-1], list(norms.values())[-1][-1]
    assert first < 1e-3 * last
    assert run.card.diagnostics.warnings[0].startswith("gradients vanish")


def test_healthy_relu_mlp_does_not_warn(tmp_path):
    spec = tiny_experiment(model={"family": "mlp", "hidden_sizes": [32, 32]})
    run = neuralab.train(spec, out=tmp_path)  # warnings are errors in this suite
    assert run.card.diagnostics.warnings == []


def test_absurd_learning_rate_stops_the_run_cleanly(tmp_path, run_cli):
    spec = tiny_experiment(optim={"name": "sgd", "lr": 1e6, "momentum": 0.9}, train={"epochs": 3})
    with pytest.raises(neuralab.NeuralabError) as caught:
        neuralab.train(spec, out=tmp_path)
    message = str(caught.value)
    assert re.match(r"training: loss became (nan|inf) at epoch 1, step \d+; ", message)
    assert re.search(r"; (first non-finite (weights|output) .*features|largest output)", message)
    assert message.endswith("(lower optim.lr from 1e+06, set train.grad_clip, or add batch_norm)")
    assert list(tmp_path.iterdir()) == []


def scripted(model, metrics, loss=1.0, epoch=1):
    state = TrainState(model, torch.optim.SGD(model.parameters(), lr=0.1), 5, 1)
    state.epoch, state.step, state.metrics, state.loss = epoch, 5, metrics, loss
    return state


def test_train_val_gap_warns_once_about_overfitting():
    health, model = GradientHealth(), torch.nn.Linear(2, 2)
    with pytest.warns(TrainingWarning, match="overfitting: train accuracy 1.000 vs val 0.700"):
        health.on_epoch_end(scripted(model, {"train_accuracy": 1.0, "val_accuracy": 0.7}))
    health.on_epoch_end(scripted(model, {"train_accuracy": 1.0, "val_accuracy": 0.6}))
    assert len(health.messages) == 1


def test_growing_loss_warns_that_gradients_explode():
    health = GradientHealth(every=1)
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    model(torch.ones(1, 2)).sum().backward()
    health.on_step_end(scripted(model, {}, loss=1.0))
    health.on_epoch_end(scripted(model, {}, loss=1.0))
    with pytest.warns(TrainingWarning, match="gradients explode.*lower optim.lr"):
        health.on_epoch_end(scripted(model, {}, loss=50.0, epoch=2))


def test_val_loss_climbing_while_train_falls_warns_about_overfitting():
    health, model = GradientHealth(), torch.nn.Linear(2, 2)
    val = [1.0, 0.8, 0.7, 0.75, 0.8, 0.85, 0.9]
    for epoch, v in enumerate(val, start=1):
        health.on_epoch_end(
            scripted(model, {"train_loss": 1.0 / epoch, "val_loss": v}, epoch=epoch)
        )
    assert health.messages == []
    with pytest.warns(TrainingWarning, match=r"val loss 0.9 has risen 20%\+ above its best"):
        health.on_epoch_end(scripted(model, {"train_loss": 0.1, "val_loss": 0.9}, epoch=8))


def test_loss_checks_are_off_when_the_loss_need_not_fall():
    """A GAN's losses trade off between its players: a rising loss is no alarm there."""
    health = GradientHealth(every=1, loss_should_fall=False)
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    model(torch.ones(1, 2)).sum().backward()
    health.on_step_end(scripted(model, {}, loss=1.0))
    for epoch, val in enumerate([1.0, 0.8, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0], start=1):
        metrics = {"train_loss": 1.0 / epoch, "val_loss": val}
        health.on_epoch_end(scripted(model, metrics, loss=50.0, epoch=epoch))
    assert health.messages == []


def test_guard_names_an_empty_last_batch_instead_of_crashing():
    # DP-SGD's Poisson batches may hold no sample: nothing to re-run, no output to size.
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    assert first_non_finite(model, torch.empty(0, 4)) == "; the last batch held no samples"


def test_guard_still_sizes_the_outputs_of_a_non_empty_batch():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    assert first_non_finite(model, torch.ones(2, 4)).startswith("; largest output on the last")
