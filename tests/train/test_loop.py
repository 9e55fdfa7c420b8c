"""The training loop: batching, learning, schedules, penalties, determinism."""

from __future__ import annotations

import pytest
import torch

import neuralab
from neuralab.config import load_config
from neuralab.train.loop import batches, num_batches
from neuralab.train.steps import weight_penalty
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
    assert first.card["metrics"] == second.card["metrics"]
    assert neuralab.runs.read_metrics(first.path) != []
    other = neuralab.train(spec, overrides=["seed=1"], out=tmp_path)
    assert other.card["metrics"] != first.card["metrics"]


@pytest.mark.parametrize(
    "schedule",
    [{"name": "none"}, {"name": "step", "step_size": 1}, {"name": "cosine"}, {"name": "onecycle"}],
)
def test_every_schedule_moves_the_rate(tmp_path, schedule):
    spec = tiny_experiment(schedule=schedule, train={"epochs": 3, "batch_size": 256})
    run = neuralab.train(spec, out=tmp_path)
    rates = [r["lr"] for r in neuralab.runs.read_metrics(run.path)]
    if schedule["name"] == "none":
        assert rates == [0.001] * 3
    else:
        assert len(set(rates)) == 3


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
    assert run.card["epochs_run"] < 40
    assert run.card["best_epoch"] == best["epoch"]
    assert run.card["metrics"]["val"]["loss"] == pytest.approx(best["val_loss"], rel=1e-5)


def test_grad_clip_and_penalties_change_the_result(tmp_path):
    base = neuralab.train(tiny_experiment(), out=tmp_path).card["metrics"]
    for override in ("train.grad_clip=0.01", "regularization.l2=0.1", "regularization.l1=0.01"):
        changed = neuralab.train(tiny_experiment(), overrides=[override], out=tmp_path)
        assert changed.card["metrics"] != base, override


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
    assert "platform" in first.card["versions"]
