"""The training loop: batching, learning, schedules, penalties, determinism."""

from __future__ import annotations

import copy
import itertools
import math

import pytest
import torch
from torch import nn

import neuralab
from neuralab.config import load_config
from neuralab.tasks import Classification
from neuralab.train.loop import batches, num_batches
from neuralab.train.steps import SUPERVISED, StepSettings, weight_penalty
from tests.conftest import tiny_experiment


def test_batches_cover_every_sample_once_in_seeded_order():
    x, y = torch.arange(10.0)[:, None], torch.arange(10)
    first = [b[1].tolist() for b in batches(x, y, 4, torch.Generator().manual_seed(0))]
    again = [b[1].tolist() for b in batches(x, y, 4, torch.Generator().manual_seed(0))]
    assert first == again
    assert [len(b) for b in first] == [4, 4, 2]
    assert sorted(sum(first, [])) == list(range(10))
    assert first != [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_a_last_batch_of_one_is_dropped_for_batch_norm():
    x, y = torch.zeros(9, 1), torch.zeros(9)
    sizes = [len(b[0]) for b in batches(x, y, 4, torch.Generator())]
    assert sizes == [4, 4]
    assert num_batches(9, 4) == 2


def test_weight_penalty_skips_biases():
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0]]))
        model.bias.fill_(100.0)
    assert weight_penalty(model, l1=1.0, l2=0.0).item() == 3.0
    assert weight_penalty(model, l1=0.0, l2=0.5).item() == 2.5


def test_loss_falls_and_accuracy_beats_chance(tmp_path):
    run = neuralab.train(
        tiny_experiment(model={"family": "mlp", "hidden_sizes": [32]}, train={"epochs": 8}),
        out=tmp_path,
    )
    history = neuralab.runs.read_metrics(run.path)
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert run.test_metrics["accuracy"] > 0.8  # chance is 0.1


def test_same_config_and_seed_give_identical_metrics(tmp_path):
    spec = tiny_experiment(
        regularization={"input_noise": 0.1},
        model={"family": "mlp", "hidden_sizes": [16], "dropout": 0.2},
    )
    first = neuralab.train(spec, out=tmp_path)
    second = neuralab.train(spec, out=tmp_path)
    assert first.path != second.path
    assert first.card.metrics == second.card.metrics
    assert neuralab.runs.read_metrics(first.path) != []
    other = neuralab.train(spec, overrides=["seed=1"], out=tmp_path)
    assert other.card.metrics != first.card.metrics


def _schedule_rates(schedule: dict, *, epochs: int, steps_per_epoch: int, lr: float = 0.1):
    """(the rate of every optimizer step, the rate after each epoch) under `schedule`,
    stepped every batch or every epoch as it declares."""
    config = load_config(tiny_experiment(schedule=schedule)).schedule
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr, momentum=0.9)
    scheduler = config.build(optimizer, epochs=epochs, steps_per_epoch=steps_per_epoch)
    per_step, after_epoch = [], []
    for _ in range(epochs):
        for _ in range(steps_per_epoch):
            per_step.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            if scheduler is not None and config.interval == "step":
                scheduler.step()
        if scheduler is not None and config.interval == "epoch":
            scheduler.step()
        after_epoch.append(optimizer.param_groups[0]["lr"])
    return per_step, after_epoch


def _non_increasing(rates: list[float]) -> bool:
    return all(later <= earlier for earlier, later in itertools.pairwise(rates))


def test_step_schedule_multiplies_by_gamma_every_step_size_epochs():
    per_step, _ = _schedule_rates(
        {"name": "step", "step_size": 2, "gamma": 0.5}, epochs=5, steps_per_epoch=2
    )
    assert per_step == pytest.approx([0.1] * 4 + [0.05] * 4 + [0.025] * 2)


def test_cosine_falls_from_the_rate_to_min_lr_and_never_rises():
    per_step, after_epoch = _schedule_rates(
        {"name": "cosine", "min_lr": 0.01}, epochs=8, steps_per_epoch=3
    )
    epoch_rates = per_step[::3]
    assert epoch_rates[0] == 0.1
    assert _non_increasing(per_step)
    assert len(set(epoch_rates)) == 8  # it moves every epoch
    halfway = 0.01 + (0.1 - 0.01) * (1 + math.cos(math.pi * 4 / 8)) / 2
    assert epoch_rates[4] == pytest.approx(halfway)
    assert after_epoch[-1] == pytest.approx(0.01)


def test_onecycle_rises_to_the_peak_over_pct_start_then_anneals():
    schedule = {"name": "onecycle", "max_lr_factor": 10, "pct_start": 0.3}
    per_step, _ = _schedule_rates(schedule, epochs=4, steps_per_epoch=25)
    peak = per_step.index(max(per_step))
    assert per_step[0] == pytest.approx(1.0 / 25)  # peak = 0.1 x 10, starting at peak / 25
    assert max(per_step) == pytest.approx(1.0)
    assert abs(peak - 0.3 * 100) <= 1
    assert all(a < b for a, b in itertools.pairwise(per_step[: peak + 1]))
    assert _non_increasing(per_step[peak:])
    assert per_step[-1] == pytest.approx(1.0 / 250_000)


@pytest.mark.parametrize(
    "schedule",
    [{"name": "none"}, {"name": "step", "step_size": 1}, {"name": "cosine"}, {"name": "onecycle"}],
)
def test_training_runs_each_schedule_and_logs_its_rate(tmp_path, schedule):
    spec = tiny_experiment(schedule=schedule, train={"epochs": 3, "batch_size": 256})
    run = neuralab.train(spec, out=tmp_path)
    logged = [r["lr"] for r in neuralab.runs.read_metrics(run.path)]
    steps = num_batches(run.card.data.sizes["train"], 256)
    _, expected = _schedule_rates(schedule, epochs=3, steps_per_epoch=steps, lr=0.001)
    assert logged == pytest.approx(expected, rel=1e-9)  # the rate after each epoch
    if schedule["name"] == "none":
        assert logged == [0.001] * 3
    if schedule["name"] == "cosine":
        assert _non_increasing([0.001, *logged])
        assert logged[-1] == 0.0


@pytest.mark.parametrize("optimizer", ["sgd", "adagrad", "rmsprop", "adam", "adamw"])
def test_every_optimizer_learns(tmp_path, optimizer):
    lr = {"sgd": 0.05, "adagrad": 0.05}.get(optimizer, 0.005)
    spec = tiny_experiment(optim={"name": optimizer, "lr": lr}, train={"epochs": 4})
    assert neuralab.train(spec, out=tmp_path).test_metrics["accuracy"] > 0.6


def test_early_stopping_restores_the_best_epoch(tmp_path):
    spec = tiny_experiment(
        train={
            "epochs": 40,
            "batch_size": 64,
            "early_stopping": {"monitor": "val_loss", "patience": 2},
        },
        optim={"name": "sgd", "lr": 0.5, "momentum": 0.9},  # too hot: val loss soon rises
    )
    run = neuralab.train(spec, out=tmp_path)
    history = neuralab.runs.read_metrics(run.path)
    best = min(history, key=lambda r: r["val_loss"])
    assert run.card.epochs_run < 40
    assert run.card.best_epoch == best["epoch"]
    assert run.card.metrics["val"]["loss"] == pytest.approx(best["val_loss"], rel=1e-5)


LR = 0.1
X = 10 * torch.randn(8, 3, generator=torch.Generator().manual_seed(0))  # large: big gradients
Y = torch.tensor([0, 1] * 4)


def _sgd_step(settings: StepSettings) -> tuple[nn.Linear, nn.Linear]:
    """A tiny linear classifier before and after one plain-SGD supervised step on (X, Y)."""
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    before = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    SUPERVISED(model, Classification(num_classes=2), optimizer, X, Y, settings)
    return before, model


def _plain_gradient(model: nn.Linear) -> list[torch.Tensor]:
    """The cross-entropy gradient of `model`'s weight and bias on (X, Y), by hand."""
    model = copy.deepcopy(model)
    torch.nn.functional.cross_entropy(model(X), Y).backward()
    return [model.weight.grad, model.bias.grad]


def _applied(before: nn.Linear, after: nn.Linear) -> list[torch.Tensor]:
    """The gradient an SGD step applied: (before - after) / lr, per parameter."""
    pairs = zip(before.parameters(), after.parameters(), strict=True)
    return [(b - a).detach() / LR for b, a in pairs]


def test_grad_clip_scales_the_gradient_to_the_max_norm():
    before, after = _sgd_step(StepSettings(grad_clip=0.5))
    gradient = _plain_gradient(before)
    norm = torch.linalg.vector_norm(torch.cat([g.flatten() for g in gradient]))
    assert norm > 2.0  # large inputs: clipping has work to do
    applied = _applied(before, after)
    applied_norm = torch.linalg.vector_norm(torch.cat([g.flatten() for g in applied]))
    assert applied_norm == pytest.approx(0.5, rel=1e-4)  # <= max, and not shrunk further
    for step, plain in zip(applied, gradient, strict=True):  # the direction is kept
        torch.testing.assert_close(step, plain * 0.5 / norm, rtol=1e-4, atol=1e-6)

    before, after = _sgd_step(StepSettings(grad_clip=10 * float(norm)))  # above the norm
    for step, plain in zip(_applied(before, after), gradient, strict=True):
        torch.testing.assert_close(step, plain, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("settings", "penalty_gradient"),
    [
        (StepSettings(l2=0.3), lambda w: 2 * 0.3 * w),  # d/dw of l2 * sum(w^2)
        (StepSettings(l1=0.3), lambda w: 0.3 * w.sign()),  # d/dw of l1 * sum(|w|)
    ],
)
def test_weight_penalties_add_their_gradient_to_the_weights_only(settings, penalty_gradient):
    before, after = _sgd_step(settings)
    weight_step, bias_step = _applied(before, after)
    plain_weight, plain_bias = _plain_gradient(before)
    expected = plain_weight + penalty_gradient(before.weight.detach())
    torch.testing.assert_close(weight_step, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bias_step, plain_bias, rtol=1e-4, atol=1e-5)  # biases are free


def test_the_experiment_sets_clipping_and_penalties():
    spec = tiny_experiment(
        train={"grad_clip": 0.5}, regularization={"l1": 0.01, "l2": 0.1, "input_noise": 0.2}
    )
    assert StepSettings.of(load_config(spec)) == StepSettings(0.5, 0.01, 0.1, 0.2)


def test_monitor_must_be_a_metric_of_the_task():
    spec = load_config(tiny_experiment(train={"early_stopping": {"monitor": "val_r2"}}))
    with pytest.raises(neuralab.NeuralabError, match="'val_r2' is not a metric this run produces"):
        neuralab.train(spec, out="unused")


def test_onecycle_works_with_optimizers_without_momentum(tmp_path):
    spec = tiny_experiment(
        optim={"name": "adagrad", "lr": 0.05}, schedule={"name": "onecycle"}, train={"epochs": 4}
    )
    assert neuralab.train(spec, out=tmp_path).test_metrics["accuracy"] > 0.3  # chance: 0.1


def test_deterministic_mode_gives_the_same_weights(tmp_path):
    spec = tiny_experiment(train={"epochs": 2, "deterministic": True})
    first = neuralab.train(spec, out=tmp_path)
    second = neuralab.train(spec, out=tmp_path)
    weights = [(run.path / "model.safetensors").read_bytes() for run in (first, second)]
    assert weights[0] == weights[1]
    assert not torch.are_deterministic_algorithms_enabled()  # restored afterwards
    assert first.card.versions.platform
