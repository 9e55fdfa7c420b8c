"""Which inputs does the model rely on overall? Permutation importance on the test split.

Each input column of the test split is shuffled in turn (scikit-learn's
`permutation_importance`, seeded, several repeats) and the fall in the task's main metric
is that column's importance (Breiman 2001). It needs only predictions, so it covers
classical baselines as well as networks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.inspection import permutation_importance

from neuralab.data import DataBundle
from neuralab.errors import NeuralabError
from neuralab.report.figures import importance_figure
from neuralab.runs import NewRunDir, Predictor, save_json
from neuralab.tasks import Task, lower_is_better
from neuralab.train import predict_outputs

REPEATS = 10
SEED = 0


@dataclass(frozen=True)
class Importance:
    """Mean and spread (over repeats) of the metric's fall when a column is shuffled."""

    metric: str
    score: float  # the metric on the unshuffled test split
    features: list[str]
    mean: np.ndarray
    std: np.ndarray

    def ranking(self) -> list[int]:
        return [int(i) for i in np.argsort(-self.mean, kind="stable")]

    def to_json(self) -> dict:
        return {
            "metric": self.metric,
            "score": round(self.score, 6),
            "repeats": REPEATS,
            "seed": SEED,
            "importances": [
                {
                    "feature": self.features[i],
                    "mean": round(float(self.mean[i]), 6),
                    "std": round(float(self.std[i]), 6),
                }
                for i in self.ranking()
            ],
        }


class _Scored:
    """The run's model as scikit-learn sees an estimator: flat standardised rows in."""

    def __init__(self, predictor: Predictor, task: Task) -> None:
        self.predictor, self.task = predictor, task
        self.sign = -1.0 if lower_is_better(task.main_metric) else 1.0

    def fit(self, x: np.ndarray, y: np.ndarray) -> _Scored:  # scikit-learn asks for one
        return self

    def __call__(self, _estimator: object, x: np.ndarray, y: torch.Tensor) -> float:
        """The main metric, signed so that higher is better (scikit-learn's convention)."""
        rows = torch.as_tensor(x).reshape(len(x), *self.predictor.meta.input_shape)
        output = predict_outputs(self.predictor.model, rows)
        return self.sign * self.task.metrics(output, y)[self.task.main_metric]


def permutation_importances(predictor: Predictor, bundle: DataBundle, task: Task) -> Importance:
    """Permutation importance of every input column, on the test split."""
    if not task.scores_one_target:
        raise NeuralabError(
            "explain --global",
            f"permutation importance scores one target; this run is {task.name}",
        )
    scorer = _Scored(predictor, task)
    x = bundle.x_test.reshape(len(bundle.x_test), -1).numpy()
    result = permutation_importance(
        scorer, x, bundle.y_test, scoring=scorer, n_repeats=REPEATS, random_state=SEED
    )
    names = _column_names(predictor, x.shape[1])
    # scikit-learn's importance is the signed score's fall: positive means the column helps
    score = scorer(None, x, bundle.y_test) * scorer.sign
    return Importance(
        task.main_metric, score, names, result.importances_mean, result.importances_std
    )


def _column_names(predictor: Predictor, width: int) -> list[str]:
    return predictor.meta.feature_names() or [f"x{i}" for i in range(width)]


def write_importance(predictor: Predictor, bundle: DataBundle, task: Task, out: Path) -> Path:
    """Write `importance.json` and `importance.png` into a new folder
    `out/<run name>-importance-<time>`; returns the folder."""
    importance = permutation_importances(predictor, bundle, task)
    png = importance_figure(importance.features, importance.mean, importance.std, importance.metric)
    with NewRunDir(out, f"{predictor.card.name}-importance") as folder:
        save_json(folder.path / "importance.json", importance.to_json())
        (folder.path / "importance.png").write_bytes(png)
    return folder.path
