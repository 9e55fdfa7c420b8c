"""Callbacks tested with scripted metric sequences, not real training."""

from __future__ import annotations

import json

import torch

from neuralab.train import EarlyStopping, MetricsLog, TrainState


def scripted_state(model=None) -> TrainState:
    model = model or torch.nn.Linear(1, 1)
    return TrainState(model, torch.optim.SGD(model.parameters(), lr=0.1), 10, 1)


def play(callback, values, monitor="val_loss", model=None):
    """Feed `values` epoch by epoch; return the epoch at which training stopped."""
    state = scripted_state(model)
    callback.on_fit_start(state)
    for epoch, value in enumerate(values, start=1):
        if model is not None:
            with torch.no_grad():
                model.weight.fill_(epoch)
        state.epoch, state.metrics = epoch, {monitor: value}
        callback.on_epoch_end(state)
        if state.should_stop:
            break
    callback.on_fit_end(state)
    return state.epoch


def test_early_stopping_waits_patience_epochs_after_the_best():
    stopper = EarlyStopping("val_loss", patience=2)
    assert play(stopper, [1.0, 0.8, 0.9, 0.85, 0.1]) == 4
    assert stopper.best_epoch == 2
    assert stopper.best == 0.8


def test_early_stopping_maximises_accuracy_like_metrics():
    stopper = EarlyStopping("val_accuracy", patience=1)
    assert play(stopper, [0.5, 0.7, 0.6], monitor="val_accuracy") == 3
    assert stopper.best_epoch == 2


def test_min_delta_ignores_tiny_improvements():
    stopper = EarlyStopping("val_loss", patience=2, min_delta=0.1)
    assert play(stopper, [1.0, 0.95, 0.92, 0.5]) == 3


def test_best_weights_are_restored():
    model = torch.nn.Linear(1, 1)
    play(EarlyStopping("val_loss", patience=2), [1.0, 0.5, 0.7, 0.8], model=model)
    assert model.weight.item() == 2.0  # the weights of epoch 2, the best


def test_early_stopping_state_round_trips():
    stopper = EarlyStopping("val_loss", patience=3)
    play(stopper, [1.0, 0.5, 0.7])
    restored = EarlyStopping("val_loss", patience=3)
    restored.load_state_dict(stopper.state_dict())
    saved = restored.state_dict()
    assert {k: saved[k] for k in ("best", "best_epoch", "wait")} == {
        "best": 0.5,
        "best_epoch": 2,
        "wait": 1,
    }
    assert saved["best_weights"].keys() == {"weight", "bias"}


def test_metrics_log_writes_one_json_line_per_epoch(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    play(log, [0.9, 0.8, 0.7])
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert [r["val_loss"] for r in records] == [0.9, 0.8, 0.7]
    assert records[0]["lr"] == 0.1
