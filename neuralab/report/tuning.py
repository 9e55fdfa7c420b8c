"""A tuning study's records: `trials.csv` and Optuna's matplotlib figures (optimisation
history, parameter importances, one slice plot per searched key)."""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
from optuna.trial import FrozenTrial, TrialState  # noqa: E402
from optuna.visualization import matplotlib as optuna_plots  # noqa: E402


def write_trials_csv(path: Path, trials: list[FrozenTrial], keys: list[str]) -> None:
    """One row per trial: number, state, value, the searched values, epochs reported,
    seconds, its run folder under `trials/`, and the error of a failed trial."""
    staging = path.with_name(f".{path.name}.partial")
    with staging.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["number", "state", "value", *keys, "epochs", "seconds", "run", "error"])
        for trial in trials:
            seconds = trial.duration.total_seconds() if trial.duration else ""
            writer.writerow(
                [
                    trial.number,
                    trial.state.name.lower(),
                    "" if trial.value is None else trial.value,
                    *(trial.params.get(key, "") for key in keys),
                    len(trial.intermediate_values),
                    seconds,
                    trial.user_attrs.get("run", ""),
                    trial.user_attrs.get("error", ""),
                ]
            )
    os.replace(staging, path)


def plot_study(study: optuna.Study, folder: Path, keys: list[str]) -> list[Path]:
    """Write `history.png`, and with two or more completed trials `importances.png` and
    `slice-<key>.png` per key; return the paths written."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    figures: dict[str, Callable[[], Any]] = {
        "history.png": lambda: optuna_plots.plot_optimization_history(study)
    }
    if len(complete) >= 2:  # one point has no spread to slice or to attribute
        figures["importances.png"] = lambda: optuna_plots.plot_param_importances(study)
        for key in keys:
            figures[f"slice-{key}.png"] = partial(optuna_plots.plot_slice, study, params=[key])
    for name, draw in figures.items():
        with warnings.catch_warnings():  # Optuna marks its matplotlib plots experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            axes = draw()
        figure = np.ravel(axes)[0].get_figure(root=True)
        figure.set_size_inches(7, 4.5)
        figure.tight_layout()
        figure.savefig(folder / name, dpi=100)
        plt.close(figure)
    return [folder / name for name in figures]
