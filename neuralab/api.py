"""The public workflow: `train` an experiment into a run directory, `load` it back,
`evaluate` it on its test split, and the `quickstart` that shows all of it on digits."""

from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import torch

from neuralab import __version__
from neuralab.config import EarlyStoppingConfig, Experiment, load_config
from neuralab.data import DataBundle, load_data
from neuralab.errors import NeuralabError, did_you_mean
from neuralab.report import plot_curves
from neuralab.runs import (
    CONFIG,
    CURVES,
    METRICS,
    WEIGHTS,
    NewRunDir,
    Predictor,
    read_card,
    save_config,
    save_json,
    save_weights,
)
from neuralab.tasks import Classification, Task, make_task, monitor_names
from neuralab.train import Callback, EarlyStopping, MetricsLog, count_parameters, evaluate, fit
from neuralab.train.loop import predict_outputs


@dataclass(frozen=True)
class Run:
    """A finished run: where it lives and what it measured."""

    path: Path
    card: dict[str, Any]

    @property
    def test_metrics(self) -> dict[str, float]:
        return self.card["metrics"]["test"]


def train(
    experiment: Experiment | str | Path | dict[str, Any],
    *,
    overrides: list[str] | tuple[str, ...] = (),
    out: str | Path = "runs",
    callbacks: list[Callback] | tuple[Callback, ...] = (),
) -> Run:
    """Train one experiment and write its run directory.

    Args:
        experiment: An `Experiment`, a YAML path, or the experiment as a dict.
        overrides: `key.path=value` strings applied before validation.
        out: Folder the run directory is created in.
        callbacks: Extra observers, e.g. a `ProgressBar`.
    """
    if not isinstance(experiment, Experiment):
        experiment = load_config(experiment, overrides)
    torch.manual_seed(experiment.seed)
    bundle = load_data(experiment.data, task=experiment.task, seed=experiment.seed)
    task = make_task(bundle.meta, experiment.train.loss)
    stopping = experiment.train.early_stopping
    if stopping is not None:
        _check_monitor(stopping, task)
    model = experiment.model.build(
        input_shape=bundle.meta.input_shape, num_outputs=bundle.meta.num_outputs
    )
    with NewRunDir(Path(out), experiment.name) as run:
        save_config(run.path / CONFIG, experiment.resolved())
        early = (
            [EarlyStopping(stopping.monitor, stopping.patience, stopping.min_delta)]
            if (stopping)
            else []
        )
        started = time.perf_counter()
        state = _fit(
            experiment, model, task, bundle, [MetricsLog(run.path / METRICS), *early, *callbacks]
        )
        train_seconds = time.perf_counter() - started
        card = _card(experiment, model, task, bundle, state, train_seconds, early)
        save_weights(run.path / WEIGHTS, model)
        save_json(run.path / "card.json", card)
        plot_curves(
            state.history,
            task.metric_names[0 if task.name == "classification" else 2],
            run.path / CURVES,
            title=experiment.name,
        )
    return Run(run.path, card)


def _fit(experiment: Experiment, model, task: Task, bundle: DataBundle, callbacks):
    optimizer = experiment.optim.build(model.parameters())
    epochs, batch_size = experiment.train.epochs, experiment.train.batch_size
    steps = max(1, -(-len(bundle.x_train) // batch_size))
    scheduler = experiment.schedule.build(optimizer, epochs=epochs, steps_per_epoch=steps)
    reg = experiment.regularization
    return fit(
        model,
        task,
        bundle,
        optimizer=optimizer,
        scheduler=scheduler,
        schedule_interval=experiment.schedule.interval,
        epochs=epochs,
        batch_size=batch_size,
        seed=experiment.seed,
        grad_clip=experiment.train.grad_clip,
        l1=reg.l1,
        l2=reg.l2,
        input_noise=reg.input_noise,
        callbacks=callbacks,
    )


def _check_monitor(stopping: EarlyStoppingConfig, task: Task) -> None:
    available = monitor_names(task)
    if stopping.monitor not in available:
        raise NeuralabError(
            "train.early_stopping.monitor",
            f"'{stopping.monitor}' is not a metric this run produces",
            did_you_mean(stopping.monitor, available),
        )


def _card(experiment, model, task, bundle, state, train_seconds, early) -> dict[str, Any]:
    """What a loader needs, plus what the run measured (val and test, once, at the end)."""
    test_output = predict_outputs(model, bundle.x_test)
    metrics = {
        "val": evaluate(model, task, bundle.x_val, bundle.y_val),
        "test": evaluate(model, task, bundle.x_test, bundle.y_test),
    }
    card: dict[str, Any] = {
        "name": experiment.name,
        "model": experiment.model.model_dump(mode="json"),
        "task": task.name,
        "data": asdict(bundle.meta),
        "metrics": metrics,
        "num_parameters": count_parameters(model),
        "train_seconds": round(train_seconds, 3),
        "epochs_run": state.epoch,
        "best_epoch": early[0].best_epoch if early else state.epoch,
        "seed": experiment.seed,
        "versions": {
            "neuralab": __version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
            "python": platform.python_version(),
        },
    }
    if isinstance(task, Classification):
        card["confusion_matrix"] = task.confusion(test_output, bundle.y_test)
    return card


def load(run_dir: str | Path) -> Predictor:
    """A trained model from its run directory, ready to `.predict(array)`."""
    return Predictor.load(run_dir)


def evaluate_run(run_dir: str | Path) -> dict[str, float]:
    """Test-split metrics of a saved run, recomputed from its config and weights."""
    run_dir = Path(run_dir)
    read_card(run_dir)  # a clear error if this is not a run directory
    experiment = load_config(run_dir / CONFIG)
    predictor = Predictor.load(run_dir)
    bundle = load_data(experiment.data, task=experiment.task, seed=experiment.seed)
    task = make_task(bundle.meta, experiment.train.loss)
    return evaluate(predictor.model, task, bundle.x_test, bundle.y_test)


QUICKSTART: tuple[dict[str, Any], ...] = (
    {
        "name": "quickstart-mlp",
        "data": {"dataset": "digits"},
        "model": {"family": "mlp", "hidden_sizes": [128, 64], "dropout": 0.1},
        "train": {"epochs": 40, "batch_size": 64},
        "schedule": {"name": "cosine"},
    },
    {
        "name": "quickstart-cnn",
        "data": {"dataset": "digits"},
        "model": {"family": "cnn", "channels": [32, 64], "dropout": 0.2},
        "train": {"epochs": 30, "batch_size": 64},
        "schedule": {"name": "cosine"},
    },
)


def quickstart(
    *, out: str | Path = "runs", callbacks: list[Callback] | tuple[Callback, ...] = ()
) -> list[Run]:
    """Train an MLP and a CNN on the embedded digits, same seed and split."""
    return [train(spec, out=out, callbacks=callbacks) for spec in QUICKSTART]
