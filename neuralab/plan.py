"""Experiment -> Plan: the data it trains on, the task it learns, and every problem with the
combination of its settings, found at once before anything is written (DESIGN.md, "The
path of data").

Nothing here trains, writes a file or touches the global random state: `plan` is safe to
call from `train`, `resume`, `inspect`, `lr-find`, `tune` and a run folder's reload alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from neuralab.baselines import BaselineSpec
from neuralab.config import Experiment
from neuralab.data import DataBundle, SplitIndices, load_data
from neuralab.errors import NeuralabError, Problem, did_you_mean
from neuralab.models import data_problem
from neuralab.multitask import load_multitask
from neuralab.tasks import Task, monitor_names
from neuralab.train import EarlyStopping, distributed
from neuralab.train.device import make_placement
from neuralab.train.privacy import check_model, experiment_problems

T = TypeVar("T")


@dataclass(frozen=True)
class Plan:
    """What an experiment trains with, checked: its data (split and standardised) and task."""

    experiment: Experiment
    bundle: DataBundle
    task: Task

    def early_stopping(self) -> EarlyStopping | None:
        """A fresh early-stopping callback as configured (None: none, or a baseline)."""
        stopping = self.experiment.train.early_stopping
        if stopping is None or isinstance(self.experiment.model, BaselineSpec):
            return None
        return EarlyStopping(stopping.monitor, stopping.patience, stopping.min_delta)


def plan(experiment: Experiment, *, split: SplitIndices | None = None) -> Plan:
    """The experiment's data and task, or every problem with its settings in one error.

    Args:
        experiment: A validated experiment.
        split: A run folder's stored split: the data is split as stored, not split again.

    Raises:
        NeuralabError: Naming every problem found (data that cannot be read stops the
            search early: the other checks need it).
    """
    bundle, task, problems = _data_and_task(experiment, split)
    problems += _augment_problems(experiment, bundle)
    if task is not None:
        problems += _setting_problems(experiment, task)
    if not problems and experiment.privacy is not None:
        problems += _privacy_problems(experiment, bundle)
    if problems or task is None:  # no task: its problem is in the list
        raise NeuralabError.many(problems)
    return Plan(experiment, bundle, task)


def _data_and_task(
    experiment: Experiment, split: SplitIndices | None
) -> tuple[DataBundle, Task | None, list[Problem]]:
    """The data, and the task the family learns from it (None when it cannot)."""
    spec = experiment.model
    problems = spec.problems(experiment)
    if experiment.tasks is not None:
        problems += _multitask_problems(experiment)
        if problems:
            raise NeuralabError.many(problems)
        bundle, multitask = load_multitask(
            experiment.data, experiment.tasks, seed=experiment.seed, split=split
        )
        return bundle, multitask, []
    bundle = load_data(
        experiment.data, task=experiment.target_kind, seed=experiment.seed, split=split
    )
    problem = data_problem(spec, bundle.meta, experiment.data.dataset.name)
    if problem is not None:
        return bundle, None, [*problems, problem]
    task = _caught(problems, lambda: spec.task(bundle.meta, experiment.train.loss))
    if task is None:
        return bundle, None, problems
    if experiment.target_kind is None and experiment.task not in (None, task.name):
        problems.append(
            Problem(
                "task",
                f"'{experiment.task}' is not what family '{spec.family}' learns (it learns "
                f"{task.name})",
                "choose a family that learns it (neuralab models), or leave task out",
            )
        )
    bundle = task.adapt(bundle)
    if split is None:  # a stored split: a run that trained, and built, already
        _caught(problems, lambda: spec.check_builds(bundle.meta))
    return bundle, task, problems


def _augment_problems(experiment: Experiment, bundle: DataBundle) -> list[Problem]:
    """Augmentation options that do not fit the data, or a model that never sees batches."""
    augment = experiment.data.augment
    if isinstance(experiment.model, BaselineSpec) and augment.options():
        return [
            Problem(
                "data.augment",
                f"'{experiment.model.family}' is a classical baseline, fitted once on the "
                "training split: there are no batches to augment",
                "remove data.augment, or choose a deep family such as mlp or cnn",
            )
        ]
    # a reconstruction task replaces the targets by the inputs and keeps the labels apart
    return augment.problems(bundle.meta.kind, targets_are_inputs=bundle.labels_test is not None)


def _multitask_problems(experiment: Experiment) -> list[Problem]:
    """One shared body, a head per entry of `tasks:`; networks only."""
    spec, problems = experiment.model, []
    if "several_targets" not in spec.data_tasks:
        problems.append(Problem("tasks", f"family '{spec.family}' cannot have several heads"))
    if experiment.task is not None:
        problems.append(Problem("task", "set per head with tasks:", "use tasks.<name>.task"))
    if experiment.train.loss != "auto":
        problems.append(Problem("train.loss", "set per head with tasks:", "remove it"))
    return problems


def _setting_problems(experiment: Experiment, task: Task) -> list[Problem]:
    """Settings that do not fit this task, family or machine."""
    problems: list[Problem] = []
    stopping, available = experiment.train.early_stopping, monitor_names(task)
    if stopping is not None and stopping.monitor not in available:
        problems.append(
            Problem(
                "train.early_stopping.monitor",
                f"'{stopping.monitor}' is not a metric this run produces",
                did_you_mean(stopping.monitor, available),
            )
        )
    if isinstance(experiment.model, BaselineSpec):
        if distributed.current().distributed:
            problems.append(
                Problem("--nproc", "classical baselines fit in one process", "drop --nproc")
            )
        return problems
    # an unavailable device or precision fails here, before any file
    _caught(problems, lambda: make_placement(experiment.train.device, experiment.train.precision))
    if experiment.train.unfreeze_at_epoch is not None and not experiment.model.freeze:
        problems.append(
            Problem("train.unfreeze_at_epoch", "set, but model.freeze names nothing to unfreeze")
        )
    return problems


def _privacy_problems(experiment: Experiment, bundle: DataBundle) -> list[Problem]:
    """Everything DP-SGD cannot do with this experiment, including its model's layers."""
    if isinstance(experiment.model, BaselineSpec):
        return [
            Problem(
                "privacy",
                f"DP-SGD trains neural networks; '{experiment.model.family}' is a classical "
                "baseline",
                "remove the privacy section, or choose a deep family such as mlp or cnn",
            )
        ]
    problems = experiment_problems(experiment)
    if not problems:  # the layers are checked on a model built (seeded, off the global RNG)
        model = experiment.network.initialised(bundle.meta, seed=0)
        _caught(problems, lambda: check_model(model, experiment.model))
    return problems


def _caught(problems: list[Problem], check: Callable[[], T]) -> T | None:
    """`check()`, its `NeuralabError`'s problems added to `problems` (then None)."""
    try:
        return check()
    except NeuralabError as error:
        problems.extend(error.problems)
        return None
