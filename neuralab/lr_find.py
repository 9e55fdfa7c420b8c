"""`neuralab lr-find` and `optim.lr: auto`: the learning-rate range test on an experiment.

The sweep runs on the experiment's own model (built from the same random state training
will use), optimizer, batch size and regularisation, over its training split only.
"""

from __future__ import annotations

import csv
from pathlib import Path

from neuralab.baselines import BaselineSpec
from neuralab.config import Experiment
from neuralab.data import DataBundle
from neuralab.errors import NeuralabError
from neuralab.plan import plan
from neuralab.report.lr_find import plot_lr_sweep
from neuralab.runs import NewRunDir
from neuralab.tasks import Task
from neuralab.train.lr_range import END_LR, NUM_STEPS, START_LR, LRSweep, lr_range_test
from neuralab.train.steps import StepSettings

PLOT = "lr_find.png"


def find_lr(
    experiment: Experiment,
    *,
    out: str | Path = "runs",
    start_lr: float = START_LR,
    end_lr: float = END_LR,
    num_steps: int = NUM_STEPS,
) -> tuple[LRSweep, Path]:
    """Run the range test; write `lr_find.png` and `lr_find.csv` to a new folder in `out`."""

    if isinstance(experiment.model, BaselineSpec):
        raise NeuralabError(
            "model.family",
            f"{experiment.model.family} is fitted by scikit-learn and has no learning rate",
            "lr-find applies to the network families",
        )
    if not 0 < start_lr < end_lr:
        raise NeuralabError(
            "--start-lr", f"0 < start < end must hold, but got {start_lr=}, {end_lr=}"
        )
    planned = plan(experiment)
    bundle, task = planned.bundle, planned.task
    sweep = sweep_experiment(
        experiment, bundle, task, start_lr=start_lr, end_lr=end_lr, num_steps=num_steps
    )
    with NewRunDir(Path(out), f"{experiment.name}-lr-find") as folder:
        plot_lr_sweep(sweep, folder.path / PLOT, title=experiment.name)
        with (folder.path / "lr_find.csv").open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(["lr", "loss", "smoothed_loss"])
            writer.writerows(zip(sweep.lrs, sweep.losses, sweep.smoothed, strict=True))
    return sweep, folder.path


def sweep_experiment(
    experiment: Experiment,
    bundle: DataBundle,
    task: Task,
    *,
    start_lr: float = START_LR,
    end_lr: float = END_LR,
    num_steps: int = NUM_STEPS,
) -> LRSweep:
    """The range test on a fresh model, from the weights training will start from."""
    model = experiment.network.initialised(bundle.meta, seed=experiment.seed)
    # the sweep sets the rate at every step; 1.0 only lets the optimizer be built
    optimizer = experiment.optim.model_copy(update={"lr": 1.0}).build(model.parameters())
    return lr_range_test(
        model,
        task,
        bundle,
        optimizer=optimizer,
        batch_size=experiment.train.batch_size,
        seed=experiment.seed,
        step=experiment.network.step(),
        settings=StepSettings.of(experiment),
        start_lr=start_lr,
        end_lr=end_lr,
        num_steps=num_steps,
    )


def with_found_lr(
    experiment: Experiment, bundle: DataBundle, task: Task
) -> tuple[Experiment, LRSweep | None]:
    """`optim.lr: auto` replaced by the range test's suggestion, and the sweep (None when
    the rate was given)."""
    if experiment.optim.lr != "auto" or isinstance(experiment.model, BaselineSpec):
        return experiment, None
    sweep = sweep_experiment(experiment, bundle, task)
    optim = experiment.optim.model_copy(update={"lr": sweep.suggestion})
    return experiment.model_copy(update={"optim": optim}), sweep


def plot_found_lr(sweep: LRSweep | None, run_dir: Path, *, title: str) -> None:
    """The sweep behind `lr: auto`, as `lr_find.png` in the run directory."""
    if sweep is not None:
        plot_lr_sweep(sweep, run_dir / PLOT, title=title)
