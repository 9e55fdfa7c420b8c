"""The public workflow: `train` an experiment into a run directory, `load` it back,
`evaluate` it on its test split.

Deep families train with `train.fit`; classical baselines are fitted by scikit-learn on
the same `DataBundle`. Both end in the same run directory and card.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import torch

from neuralab import __version__
from neuralab.baselines import BASELINES, Baseline
from neuralab.config import EarlyStoppingConfig, Experiment, load_config
from neuralab.data import load_data
from neuralab.errors import NeuralabError, did_you_mean
from neuralab.report import plot_curves, write_run_report
from neuralab.runs import (
    CARD,
    CONFIG,
    CURVES,
    METRICS,
    NewRunDir,
    Predictor,
    read_card,
    save_config,
    save_json,
    save_json_lines,
    save_model,
)
from neuralab.tasks import Classification, Task, make_task, monitor_names
from neuralab.train import Callback, EarlyStopping, MetricsLog, count_parameters, evaluate, fit
from neuralab.train.diagnostics import GradientHealth, NonFiniteGuard
from neuralab.train.loop import num_batches, predict_outputs


@dataclass(frozen=True)
class Run:
    """A finished run: where it lives and what it measured."""

    path: Path
    card: dict[str, Any]

    @property
    def test_metrics(self) -> dict[str, float]:
        return self.card["metrics"]["test"]


@dataclass
class FitRecord:
    """How fitting went, whichever kind of model was fitted."""

    history: list[dict[str, float]] = field(default_factory=list)
    epochs_run: int = 1
    best_epoch: int | None = None
    seconds: float = 0.0
    diagnostics: dict[str, Any] = field(default_factory=dict)


def train(
    experiment: Experiment | str | Path | dict[str, Any],
    *,
    overrides: list[str] | tuple[str, ...] = (),
    out: str | Path = "runs",
    callbacks: Sequence[Callback] = (),
) -> Run:
    """Train one experiment and write its run directory.

    Args:
        experiment: An `Experiment`, a YAML path, or the experiment as a dict.
        overrides: `key.path=value` strings applied before validation.
        out: Folder the run directory is created in.
        callbacks: Extra observers of deep training, e.g. a `ProgressBar`.
    """
    if not isinstance(experiment, Experiment):
        experiment = load_config(experiment, overrides)
    torch.manual_seed(experiment.seed)
    bundle = load_data(experiment.data, task=experiment.task, seed=experiment.seed)
    task = make_task(bundle.meta, experiment.train.loss)
    is_baseline = isinstance(experiment.model, BASELINES)
    stopper = None if is_baseline else _early_stopping(experiment.train.early_stopping, task)
    with NewRunDir(Path(out), experiment.name) as run:
        save_config(run.path / CONFIG, experiment.resolved())
        model: torch.nn.Module | Baseline
        if is_baseline:
            model, record = _fit_baseline(experiment, task, bundle)
        else:
            health = GradientHealth()
            observers = [
                NonFiniteGuard(),
                health,
                MetricsLog(run.path / METRICS),
                *([stopper] if stopper else []),
                *callbacks,
            ]
            model, record = _fit_deep(experiment, task, bundle, observers, stopper)
            record.diagnostics = {"warnings": health.messages, "gradient_norms": health.norms}
        card = _card(experiment, model, task, bundle, record)
        save_model(run.path, model)
        save_json(run.path / CARD, card)
        if is_baseline:
            save_json_lines(run.path / METRICS, record.history)
        else:
            plot_curves(
                record.history,
                task.main_metric,
                run.path / CURVES,
                title=experiment.name,
                best_epoch=record.best_epoch,
            )
        config_text = (run.path / CONFIG).read_text(encoding="utf-8")
        write_run_report(run.path, card, config_text, model, bundle)
    return Run(run.path, card)


def _fit_deep(experiment, task, bundle, observers, stopper) -> tuple[torch.nn.Module, FitRecord]:
    model = experiment.model.build(
        input_shape=bundle.meta.input_shape, num_outputs=bundle.meta.num_outputs
    )
    optimizer = experiment.optim.build(model.parameters())
    epochs, batch_size = experiment.train.epochs, experiment.train.batch_size
    steps = num_batches(len(bundle.x_train), batch_size)
    scheduler = experiment.schedule.build(optimizer, epochs=epochs, steps_per_epoch=steps)
    reg = experiment.regularization
    started = time.perf_counter()
    state = fit(
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
        callbacks=observers,
    )
    best = stopper.best_epoch if stopper else None
    return model, FitRecord(state.history, state.epoch, best, time.perf_counter() - started)


def _fit_baseline(experiment, task, bundle) -> tuple[Baseline, FitRecord]:
    started = time.perf_counter()
    model = Baseline.fit(
        experiment.model,
        bundle.x_train,
        bundle.y_train,
        task=task.name,
        num_outputs=bundle.meta.num_outputs,
        seed=experiment.seed,
    )
    seconds = time.perf_counter() - started
    train_metrics = evaluate(model, task, bundle.x_train, bundle.y_train)
    val_metrics = evaluate(model, task, bundle.x_val, bundle.y_val)
    record = {
        "epoch": 1,
        **{f"train_{k}": v for k, v in train_metrics.items()},
        **{f"val_{k}": v for k, v in val_metrics.items()},
        "seconds": seconds,
    }
    return model, FitRecord([record], 1, None, seconds)


def _early_stopping(stopping: EarlyStoppingConfig | None, task: Task) -> EarlyStopping | None:
    if stopping is None:
        return None
    available = monitor_names(task)
    if stopping.monitor not in available:
        raise NeuralabError(
            "train.early_stopping.monitor",
            f"'{stopping.monitor}' is not a metric this run produces",
            did_you_mean(stopping.monitor, available),
        )
    return EarlyStopping(stopping.monitor, stopping.patience, stopping.min_delta)


def _card(experiment, model, task, bundle, record: FitRecord) -> dict[str, Any]:
    """What a loader needs, plus what the run measured (val and test, once, at the end)."""
    started = time.perf_counter()
    test_output = predict_outputs(model, bundle.x_test)
    inference_seconds = time.perf_counter() - started
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
        "num_parameters": (
            model.num_parameters() if isinstance(model, Baseline) else count_parameters(model)
        ),
        "train_seconds": round(record.seconds, 3),
        "inference_ms_per_1000": round(1e6 * inference_seconds / len(bundle.x_test), 3),
        "epochs_run": record.epochs_run,
        "best_epoch": record.best_epoch or record.epochs_run,
        "seed": experiment.seed,
        "diagnostics": record.diagnostics,
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


def report(run_dir: str | Path) -> Path:
    """(Re)write a run's `report.html` from its card, config and weights."""
    run_dir = Path(run_dir)
    card = read_card(run_dir)
    experiment = load_config(run_dir / CONFIG)
    bundle = load_data(experiment.data, task=experiment.task, seed=experiment.seed)
    model = Predictor.load(run_dir).model
    config_text = (run_dir / CONFIG).read_text(encoding="utf-8")
    return write_run_report(run_dir, card, config_text, model, bundle)


def evaluate_run(run_dir: str | Path) -> dict[str, float]:
    """Test-split metrics of a saved run, recomputed from its config and weights."""
    run_dir = Path(run_dir)
    read_card(run_dir)  # a clear error if this is not a run directory
    experiment = load_config(run_dir / CONFIG)
    predictor = Predictor.load(run_dir)
    bundle = load_data(experiment.data, task=experiment.task, seed=experiment.seed)
    task = make_task(bundle.meta, experiment.train.loss)
    return evaluate(predictor.model, task, bundle.x_test, bundle.y_test)
