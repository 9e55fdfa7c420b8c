"""Several models x several seeds on exactly the same data -> a leaderboard that says which
differences are significant.

For each seed, every model sees the same split (the seed sets the split and the model's
initialisation). Significance against the leader: with two or more seeds, a paired t-test
across seeds on the ranked metric; with one seed, an exact McNemar test on per-sample
correctness (classification, seq2seq exact match) or a Wilcoxon signed-rank test on
per-sample errors (regression, reconstruction, language models) over the test split.
"""

from __future__ import annotations

import csv
import itertools
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import TypeAdapter, ValidationError
from scipy import stats

from neuralab.api import Run, train
from neuralab.baselines import BaselineSpec
from neuralab.config import Experiment, ModelConfig, load_config
from neuralab.cross_validation import with_fold
from neuralab.data import load_data
from neuralab.errors import NeuralabError, Problem, did_you_mean
from neuralab.models import EVERY_FAMILY, data_problem
from neuralab.report import write_comparison_report
from neuralab.report.comparison import plot_comparison
from neuralab.report.overlay import plot_overlaid_curves
from neuralab.run_data import load_run_data
from neuralab.runs import NewRunDir, Predictor, read_metrics
from neuralab.tasks import Task, lower_is_better, task_from_card
from neuralab.train import Callback, predict_outputs
from neuralab.train.loop import TrainingInterrupted

# Short names accepted by `--models`, beside every family's own name.
ALIASES = {
    "rf": "random_forest",
    "gb": "gradient_boosting",
    "dt": "tree",
    "linear": "ridge",
    "logistic": "logreg",
}
SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class Row:
    """One model's line of the leaderboard."""

    model: str
    values: list[float]  # main metric per seed
    secondary: list[float]  # second metric per seed (macro-F1 or MAE)
    train_seconds: float
    inference_ms_per_1000: float
    num_parameters: int
    p_value: float | None = None

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    def verdict(self, leader: str) -> str:
        if self.model == leader:
            return "leader"
        if self.p_value is None or np.isnan(self.p_value):
            return "n/a"
        word = "worse" if self.p_value < SIGNIFICANCE else "tie"
        return f"{word} (p={self.p_value:.3g})"


@dataclass(frozen=True)
class Comparison:
    """A finished comparison: its folder, the metric ranked by, rows best first."""

    path: Path
    metric: str
    secondary: str
    test: str
    rows: list[Row]
    runs: dict[str, list[Run]]


def compare(
    experiment: Experiment | str | Path | dict[str, Any],
    *,
    models: Sequence[str] = (),
    vary: Sequence[str] = (),
    seeds: int | None = None,
    overrides: Sequence[str] = (),
    out: str | Path = "runs",
    callbacks: Sequence[Callback] = (),
) -> Comparison:
    """Train every model in `models` (or every setting of `vary`) once per seed on the
    experiment's data.

    Args:
        experiment: The base experiment: data, training settings and (for its own family)
            the model spec; other families start from their defaults.
        models: Family names (or aliases such as `rf`).
        vary: `key=value1,value2,...` strings, applied like `overrides`; several give the
            grid of all their combinations. Instead of `models`, not with it.
        seeds: Seeds per model: `experiment.seed`, `experiment.seed + 1`, ... (default 3).
            With `data.split.folds: K`, each model trains once per fold instead, and the
            folds take the place of seeds in the leaderboard and its paired t-test.
    """
    source = experiment if not isinstance(experiment, Experiment) else experiment.resolved()
    if not isinstance(experiment, Experiment):
        experiment = load_config(experiment, list(overrides))
    folds = experiment.data.split.folds
    if folds and seeds is not None:
        raise NeuralabError(
            "--seeds",
            "cannot be combined with data.split.folds",
            "each fold is one run; drop --seeds",
        )
    seeds = 3 if seeds is None else seeds
    if seeds < 1:
        raise NeuralabError("--seeds", f"must be at least 1, got {seeds}")
    if vary and models:
        raise NeuralabError(
            "--vary", "cannot be combined with --models", "vary model.family instead"
        )
    if vary:
        candidates = variations(source, list(overrides), vary)
    else:
        candidates = [
            (spec.family, experiment.model_copy(update={"model": spec}))
            for spec in _model_specs(experiment, models)
        ]
    _preflight(experiment, [candidate.model for _, candidate in candidates])
    with NewRunDir(Path(out), f"{experiment.name}-compare") as folder:
        runs = {
            label: [
                _train_one(candidate, label, experiment.seed + s, folder.path, callbacks)
                for s in range(seeds)
            ]
            if not folds
            else [_train_fold(candidate, label, k, folder.path, callbacks) for k in range(folds)]
            for label, candidate in candidates
        }
        comparison = _leaderboard(experiment, runs, folder.path)
        _write(comparison, folder.path)
        histories = {label: [read_metrics(r.path) for r in group] for label, group in runs.items()}
        plot_overlaid_curves(
            histories, comparison.metric, folder.path / "curves.png", title=experiment.name
        )
        write_comparison_report(
            folder.path,
            comparison,
            title=f"{experiment.name}: {len(candidates)} models x "
            + (f"{folds} folds" if folds else f"{seeds} seed(s)"),
        )
    moved = {
        label: [Run(folder.path / "runs" / r.path.name, r.card) for r in label_runs]
        for label, label_runs in runs.items()
    }
    return Comparison(
        folder.path,
        comparison.metric,
        comparison.secondary,
        comparison.test,
        comparison.rows,
        moved,
    )


def _train_fold(
    experiment: Experiment, label: str, fold: int, folder: Path, callbacks: Sequence[Callback]
) -> Run:
    name = f"{_slug(label)}-fold{fold}"
    return _train_named(with_fold(experiment, fold, name), folder, callbacks)


def _train_one(
    experiment: Experiment, label: str, seed: int, folder: Path, callbacks: Sequence[Callback]
) -> Run:
    name = f"{_slug(label)}-seed{seed}"
    return _train_named(
        experiment.model_copy(update={"seed": seed, "name": name}), folder, callbacks
    )


def _train_named(experiment: Experiment, folder: Path, callbacks: Sequence[Callback]) -> Run:
    name = experiment.name
    try:
        return train(
            experiment,
            out=folder / "runs",
            callbacks=callbacks,
        )
    except TrainingInterrupted:
        # a comparison is not resumable: its unfinished folder goes, so say so plainly
        raise TrainingInterrupted(
            "compare",
            f"interrupted while training {name}; nothing was kept",
            "run the comparison again",
        ) from None


def _slug(label: str) -> str:
    """A run-folder name from a label: `optim.name=sgd, model.dropout=0.2` -> `sgd-0.2`."""
    values = [part.partition("=")[2] or part for part in label.split(", ")]
    slugs = [re.sub(r"[^A-Za-z0-9_.]+", "-", value).strip("-.") for value in values]
    return "-".join(slug for slug in slugs if slug) or "setting"


def variations(
    source: str | Path | dict[str, Any], overrides: list[str], vary: Sequence[str]
) -> list[tuple[str, Experiment]]:
    """Every combination of the `--vary` values, each validated as its own experiment."""
    axes = [_vary_axis(text) for text in vary]
    candidates = []
    for combination in itertools.product(*axes):
        label = ", ".join(combination)
        try:
            candidates.append((label, load_config(source, [*overrides, *combination])))
        except NeuralabError as error:
            raise NeuralabError.many(
                Problem(p.where, p.what, f"with --vary {label}" + (f"; {p.hint}" if p.hint else ""))
                for p in error.problems
            ) from None
    return candidates


def _vary_axis(text: str) -> list[str]:
    """`optim.name=sgd,adam` -> [`optim.name=sgd`, `optim.name=adam`]; commas inside
    brackets belong to the value (`model.channels=[8, 16],[16, 32]`)."""
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key or not values.strip():
        raise NeuralabError(
            "--vary", f"'{text}' is not key=value,value,...", "e.g. --vary optim.name=sgd,adam"
        )
    if key in ("seed", "name") or key.startswith("data."):
        raise NeuralabError(
            "--vary",
            f"'{key}' cannot vary within one comparison: all settings share data and seeds",
            "use --seeds for seeds, or run one comparison per dataset",
        )
    parts, depth, current = [], 0, ""
    for char in values:
        depth += {"[": 1, "{": 1, "]": -1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [f"{key}={part.strip()}" for part in parts]


def _model_specs(experiment: Experiment, names: Sequence[str]) -> list[Any]:
    adapter = TypeAdapter(ModelConfig)
    specs, seen = [], set()
    for raw_name in names:
        name = ALIASES.get(raw_name.strip(), raw_name.strip())
        if name in seen:
            continue
        seen.add(name)
        if name == experiment.model.family:
            specs.append(experiment.model)
            continue
        try:
            specs.append(adapter.validate_python({"family": name}))
        except ValidationError:
            valid = [c.model_fields["family"].default for c in EVERY_FAMILY]
            valid += list(ALIASES)
            raise NeuralabError(
                "--models", f"unknown model '{raw_name}'", did_you_mean(name, valid)
            ) from None
    if not specs:
        raise NeuralabError("--models", "no models given", "e.g. --models logreg,svm,mlp,cnn")
    return specs


def _preflight(experiment: Experiment, specs: list[Any]) -> None:
    """Fail before any training if a model cannot learn this data (e.g. charlm on a table)
    or the models learn different tasks, whose metrics no single leaderboard ranks."""
    bundle = load_data(experiment.data, task=experiment.target_kind, seed=experiment.seed)
    meta, dataset = bundle.meta, experiment.data.dataset.name
    problems = [p for p in (data_problem(spec, meta, dataset) for spec in specs) if p]
    if problems:
        raise NeuralabError.many(problems)
    if experiment.tasks is not None:
        raise NeuralabError(
            "tasks", "a run with several heads has no single metric to rank", "train it alone"
        )
    tasks = {spec.family: spec.task(meta, experiment.train.loss) for spec in specs}
    if len({task.name for task in tasks.values()}) > 1:
        learned = ", ".join(f"{family} learns {task.name}" for family, task in tasks.items())
        raise NeuralabError(
            "--models",
            f"a leaderboard ranks models of one task, but {learned}",
            "compare the families of each task in a command of their own",
        )
    task = next(iter(tasks.values()))
    if task.secondary_metric is None:
        raise NeuralabError(
            "compare",
            f"a {task.name} run has no single metric to rank",
            "train the settings one by one",
        )
    for spec in specs:
        if not isinstance(spec, BaselineSpec):
            spec.build(input_shape=meta.input_shape, num_outputs=meta.num_outputs)


def _leaderboard(experiment: Experiment, runs: dict[str, list[Run]], folder: Path) -> Comparison:
    task = task_from_card(next(iter(runs.values()))[0].card)
    metric = task.main_metric
    secondary = task.secondary_metric or metric  # _preflight refused tasks without one
    rows = [
        Row(
            model=family,
            values=[r.test_metrics[metric] for r in family_runs],
            secondary=[r.test_metrics[secondary] for r in family_runs],
            train_seconds=statistics.fmean(r.card.train_seconds for r in family_runs),
            inference_ms_per_1000=statistics.fmean(
                r.card.inference_ms_per_1000 for r in family_runs
            ),
            num_parameters=family_runs[0].card.num_parameters,
        )
        for family, family_runs in runs.items()
    ]
    lower = lower_is_better(metric)
    rows.sort(key=lambda row: row.mean if lower else -row.mean)
    leader = rows[0]
    seeds = len(leader.values)
    if seeds >= 2:
        test = "paired t-test across " + ("folds" if experiment.data.split.folds else "seeds")
        rows = [_with_p(row, _paired_t(leader.values, row.values)) for row in rows]
    else:
        binary = task.binary_errors
        test = (
            "exact McNemar test on the test split"
            if binary
            else "Wilcoxon signed-rank test on per-sample errors"
        )
        errors = _per_sample_errors(runs, task)
        rows = [
            _with_p(row, _per_sample_test(errors[leader.model], errors[row.model], binary))
            for row in rows
        ]
    rows[0] = _with_p(rows[0], None)
    return Comparison(folder, metric, secondary, test, rows, runs)


def _with_p(row: Row, p_value: float | None) -> Row:
    return Row(
        row.model,
        row.values,
        row.secondary,
        row.train_seconds,
        row.inference_ms_per_1000,
        row.num_parameters,
        p_value,
    )


def _paired_t(leader: list[float], other: list[float]) -> float:
    differences = np.subtract(leader, other)
    if np.allclose(differences, differences[0]):  # no spread: the t statistic is undefined
        return 1.0 if np.isclose(differences[0], 0.0) else float("nan")
    return float(stats.ttest_rel(leader, other).pvalue)


def _per_sample_errors(runs, task: Task) -> dict:
    """Each model's error on every test sample, as its task measures it, on each run's own
    test split as its folder stored it (one seed: the same for all)."""
    # runs this comparison just trained: a user network's code in them is the user's own
    bundle, _ = load_run_data(next(iter(runs.values()))[0].path, trust_code=True)
    errors = {}
    for family, family_runs in runs.items():
        predictor = Predictor.load(family_runs[0].path, trust_code=True)
        output = predict_outputs(predictor.model, bundle.x_test)
        errors[family] = task.per_sample_errors(output, bundle.y_test).numpy()
    return errors


def _per_sample_test(leader: np.ndarray, other: np.ndarray, binary: bool) -> float:
    if binary:
        only_leader_right = int(np.sum(~leader & other))
        only_other_right = int(np.sum(leader & ~other))
        discordant = only_leader_right + only_other_right
        if discordant == 0:
            return 1.0
        return float(stats.binomtest(only_other_right, discordant, 0.5).pvalue)
    differences = leader - other
    if np.allclose(differences, 0.0):
        return 1.0
    return float(stats.wilcoxon(leader, other).pvalue)


def _write(comparison: Comparison, folder: Path) -> None:
    header = [
        "model",
        f"{comparison.metric}_mean",
        f"{comparison.metric}_std",
        f"{comparison.secondary}_mean",
        "seeds",
        "train_seconds",
        "inference_ms_per_1000",
        "parameters",
        "p_vs_leader",
        "verdict",
    ]
    leader = comparison.rows[0].model
    lines = [
        [
            row.model,
            f"{row.mean:.4f}",
            f"{row.std:.4f}",
            f"{statistics.fmean(row.secondary):.4f}",
            len(row.values),
            f"{row.train_seconds:.3f}",
            f"{row.inference_ms_per_1000:.3f}",
            row.num_parameters,
            "" if row.p_value is None else f"{row.p_value:.4g}",
            row.verdict(leader),
        ]
        for row in comparison.rows
    ]
    with (folder / "leaderboard.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(lines)
    markdown = [
        f"Ranked by test {comparison.metric}; significance vs the leader: "
        f"{comparison.test} (p < {SIGNIFICANCE} = worse).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    markdown += ["| " + " | ".join(map(str, line)) + " |" for line in lines]
    (folder / "leaderboard.md").write_text("\n".join(markdown) + "\n", encoding="utf-8")
    plot_comparison(comparison.rows, comparison.metric, folder / "comparison.png")


def quickstart_experiment() -> Experiment:
    """The digits experiment the quickstart compares models on."""
    return load_config(
        {
            "name": "quickstart",
            "data": {"dataset": "digits"},
            "model": {"family": "cnn", "channels": [32, 64], "dropout": 0.2},
            "train": {
                "epochs": 30,
                "batch_size": 64,
                "early_stopping": {"monitor": "val_loss", "patience": 8},
            },
            "schedule": {"name": "cosine"},
        }
    )


QUICKSTART_MODELS = ("logreg", "svm", "random_forest", "knn", "mlp", "cnn")


def quickstart(*, out: str | Path = "runs", callbacks: Sequence[Callback] = ()) -> Comparison:
    """Classical baselines, an MLP and a CNN on the embedded digits: same split, one seed."""
    torch.manual_seed(0)
    return compare(
        quickstart_experiment(), models=QUICKSTART_MODELS, seeds=1, out=out, callbacks=callbacks
    )
