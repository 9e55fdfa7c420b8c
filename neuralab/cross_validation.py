"""K-fold cross-validation (`data.split.folds: K`): one run per fold, then mean ± std.

Every fold trains with the experiment's seed, so the K-fold partition is the same for all
folds and each sample is tested exactly once. The runs go under one parent folder with
`config.yaml`, `folds.csv` (each fold's test metrics) and `cv-summary.json` (mean and std
per metric).

`train_experiment` is what `neuralab train` and `neuralab.train()` do: one run, or with
folds one run per fold.
"""

from __future__ import annotations

import csv
import json
import statistics
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neuralab import api
from neuralab.api import Run
from neuralab.config import Experiment, load_config, load_raw
from neuralab.data.memory import PythonDataConfig, save_python_data
from neuralab.errors import NeuralabError
from neuralab.runs import NewRunDir, save_config
from neuralab.train import Callback


@dataclass(frozen=True)
class CrossValidation:
    """A finished cross-validation: its folder, the runs (fold order) and the summary."""

    path: Path
    runs: list[Run]
    summary: dict[str, dict[str, float]]  # metric -> {"mean": ..., "std": ...}


def with_fold(experiment: Experiment, fold: int, name: str) -> Experiment:
    """The experiment with fold `fold` as its test split, named `name`."""
    split = experiment.data.split.model_copy(update={"fold": fold})
    data = experiment.data.model_copy(update={"split": split})
    return experiment.model_copy(update={"data": data, "name": name})


def cross_validate(
    experiment: Experiment | str | Path | dict[str, Any],
    *,
    overrides: Sequence[str] = (),
    out: str | Path = "runs",
    callbacks: Sequence[Callback] = (),
    write_report: bool = True,
) -> CrossValidation:
    """Train one run per fold of `data.split.folds` and summarise their test metrics.

    Args:
        experiment: An `Experiment`, a YAML path, or the experiment as a dict.
        overrides: `key.path=value` strings applied before validation.
        out: Folder the cross-validation folder is created in.
        callbacks: Extra observers of deep training, e.g. a `ProgressBar`.
        write_report: Write each fold's `report.html`.
    """
    if not isinstance(experiment, Experiment):
        experiment = load_config(experiment, list(overrides))
    folds = experiment.data.split.folds
    if folds is None:
        raise NeuralabError("data.split.folds", "is not set", "set data.split.folds: K (K >= 2)")
    with NewRunDir(Path(out), f"{experiment.name}-cv") as folder:
        save_config(folder.path / "config.yaml", experiment.resolved())
        runs = [
            api.train(
                with_fold(experiment, k, f"{experiment.name}-fold{k}"),
                out=folder.path / "runs",
                callbacks=callbacks,
                write_report=write_report,
            )
            for k in range(folds)
        ]
        summary = _summarise([run.test_metrics for run in runs])
        _write(folder.path, [run.test_metrics for run in runs], summary)
    moved = [Run(folder.path / "runs" / run.path.name, run.card) for run in runs]
    return CrossValidation(folder.path, moved, summary)


def train_experiment(
    experiment: Experiment | str | Path | dict[str, Any],
    *,
    data: Any = None,
    test: Any = None,
    target: str | None = None,
    overrides: Sequence[str] = (),
    out: str | Path = "runs",
    callbacks: Sequence[Callback] = (),
    write_report: bool = True,
) -> Run | CrossValidation:
    """Train an experiment as `neuralab train` does (this is `neuralab.train`).

    Returns the `Run` it wrote; with `data.split.folds: K`, the `CrossValidation` of its K
    runs, one per fold (see `cross_validate`).

    Args:
        experiment: An `Experiment`, a YAML path, or the experiment as a dict.
        data: Samples from Python instead of `data.dataset`: a pair `(x, y)` of arrays
            (anything `numpy.asarray` reads) or a pandas DataFrame. They are saved in the
            run folder, which then stands alone (see neuralab/data/memory.py).
        test: A fixed test split `(x_test, y_test)` for array `data`.
        target: A DataFrame's column to predict (or `data: {dataset: {target: ...}}`).
        overrides: `key.path=value` strings applied before validation.
        out: Folder the run (or cross-validation) directory is created in.
        callbacks: Extra observers of deep training, e.g. a `ProgressBar`.
        write_report: Write `report.html` (most of a tiny run's time).
    """
    if data is None:
        if test is not None or target is not None:
            raise NeuralabError("test" if test is not None else "target", "needs data=")
        if not isinstance(experiment, Experiment):
            experiment = load_config(experiment, list(overrides))
        return _train(experiment, out, callbacks, write_report)
    with tempfile.TemporaryDirectory(prefix="neuralab-data-") as staging:
        path = save_python_data(data, test, Path(staging))
        with_data = _with_python_data(experiment, overrides, path, target)
        return _train(with_data, out, callbacks, write_report)


def _train(
    experiment: Experiment, out: str | Path, callbacks: Sequence[Callback], write_report: bool
) -> Run | CrossValidation:
    if experiment.data.split.folds:
        return cross_validate(experiment, out=out, callbacks=callbacks, write_report=write_report)
    return api.train(experiment, out=out, callbacks=callbacks, write_report=write_report)


def _with_python_data(
    experiment: Experiment | str | Path | dict[str, Any],
    overrides: Sequence[str],
    path: Path,
    target: str | None,
) -> Experiment:
    """The experiment reading the samples saved at `path`. Its `data.dataset` may only
    give the Python source's options (target, layout): a named dataset would be replaced."""
    options = {"target": target} if target is not None else {}
    if isinstance(experiment, Experiment):
        source = PythonDataConfig(path=path, **options)
        return experiment.model_copy(
            update={"data": experiment.data.model_copy(update={"dataset": source})}
        )
    raw = load_raw(experiment, list(overrides))
    section = raw.setdefault("data", {})
    given = section.get("dataset", {}) if isinstance(section, dict) else None
    if (
        not isinstance(given, dict)
        or not set(given) <= {"name", "target", "layout"}
        or (given.get("name", "python") != "python")
    ):
        raise NeuralabError(
            "data.dataset",
            "is set, but data= hands over the samples",
            "leave data.dataset out (it may give target and layout), or leave data= out",
        )
    section["dataset"] = {**given, **options, "name": "python", "path": str(path)}
    return load_config(raw)


def _summarise(per_fold: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    return {
        metric: {
            "mean": statistics.fmean(m[metric] for m in per_fold),
            "std": statistics.stdev(m[metric] for m in per_fold),  # sample std, K - 1
        }
        for metric in per_fold[0]
    }


def _write(
    folder: Path, per_fold: list[dict[str, float]], summary: dict[str, dict[str, float]]
) -> None:
    metrics = list(summary)
    with (folder / "folds.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["fold", *metrics])
        writer.writerows(
            [k, *(f"{m[name]:.6g}" for name in metrics)] for k, m in enumerate(per_fold)
        )
    record = {"folds": len(per_fold), "test": summary}
    (folder / "cv-summary.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
