"""Classical baselines from scikit-learn, trained on exactly the same `DataBundle` (same
split, same standardisation) as the deep models, so the comparison is fair.

Each family is a config class like the deep ones (`model: {family: random_forest}`);
`build(task=..., seed=...)` returns an unfitted estimator. Fitted estimators are saved
with skops, never with pickle, and loaded back trusting only scikit-learn's own types.
The clusterers (k-means, a Gaussian mixture) imply the clustering task and fit on the
inputs alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal, get_args

import numpy as np
import skops.io
import torch
from pydantic import Field
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.cluster import KMeans
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.mixture import GaussianMixture
from sklearn.multioutput import MultiOutputRegressor
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.svm import SVC, SVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from neuralab.errors import NeuralabError
from neuralab.family import Family
from neuralab.tasks import Clustering, LossName, Task

if TYPE_CHECKING:
    from neuralab.data import DataMeta

TaskName = Literal["classification", "regression", "clustering"]
# Floor for predicted probabilities, so log-probabilities (used as logits) stay finite.
MIN_PROBABILITY = 1e-7


class BaselineSpec(Family):
    """What every classical baseline's config class shares: `build(task=..., seed=...)`."""

    def build(self, *, task: TaskName, seed: int) -> BaseEstimator:
        raise NotImplementedError


class LogisticRegressionConfig(BaselineSpec):
    """Logistic regression (multinomial, L2-penalised): the linear classification baseline."""

    family: Literal["logreg"] = "logreg"
    C: float = Field(1.0, gt=0.0)
    max_iter: int = Field(2000, ge=1)
    data_tasks: ClassVar[tuple[str, ...]] = ("classification",)

    def build(self, *, task: TaskName, seed: int) -> BaseEstimator:
        return LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=seed)


class RidgeConfig(BaselineSpec):
    """Ridge regression (least squares with an L2 penalty): the linear regression baseline."""

    family: Literal["ridge"] = "ridge"
    alpha: float = Field(1.0, ge=0.0)
    data_tasks: ClassVar[tuple[str, ...]] = ("regression",)

    def build(self, *, task: TaskName, seed: int) -> BaseEstimator:
        return Ridge(alpha=self.alpha)


class SVMConfig(BaselineSpec):
    """Support-vector machine with an RBF kernel; probabilities by Platt scaling."""

    family: Literal["svm"] = "svm"
    C: float = Field(10.0, gt=0.0)
    gamma: Literal["scale", "auto"] | float = "scale"
    data_tasks: ClassVar[tuple[str, ...]] = ("classification", "regression")

    def build(self, *, task: TaskName, seed: int) -> BaseEstimator:
        if task == "regression":
            return SVR(C=self.C, gamma=self.gamma)
        # sklearn 1.9 deprecates SVC(probability=True) in favour of this calibrated wrapper
        return CalibratedClassifierCV(
            SVC(C=self.C, gamma=self.gamma, random_state=seed), ensemble=False
        )


class DecisionTreeConfig(BaselineSpec):
    """A single decision tree (CART)."""

    family: Literal["tree"] = "tree"
    max_depth: int | None = Field(None, ge=1)
    min_samples_leaf: int = Field(1, ge=1)
    data_tasks: ClassVar[tuple[str, ...]] = ("classification", "regression")

    def build(self, *, task: TaskName, seed: int) -> BaseEstimator:
        cls = DecisionTreeClassifier if task == "classification" else DecisionTreeRegressor
        return cls(
            max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf, random_state=seed
        )


class RandomForestConfig(BaselineSpec):
    """Random forest: bagged decision trees on random feature subsets (Breiman 2001)."""

    family: Literal["random_forest"] = "random_forest"
    n_estimators: int = Field(300, ge=1)
    max_depth: int | None = Field(None, ge=1)
    data_tasks: ClassVar[tuple[str, ...]] = ("classification", "regression")

    def build(self, *, task: TaskName, seed: int) -> BaseEstimator:
        cls = RandomForestClassifier if task == "classification" else RandomForestRegressor
        return cls(
            n_estimators=self.n_estimators, max_depth=self.max_depth, random_state=seed, n_jobs=1
        )


class KNNConfig(BaselineSpec):
    """k-nearest neighbours on standardised features."""

    family: Literal["knn"] = "knn"
    n_neighbors: int = Field(5, ge=1)
    weights: Literal["uniform", "distance"] = "uniform"
    data_tasks: ClassVar[tuple[str, ...]] = ("classification", "regression")

    def build(self, *, task: TaskName, seed: int) -> BaseEstimator:
        cls = KNeighborsClassifier if task == "classification" else KNeighborsRegressor
        return cls(n_neighbors=self.n_neighbors, weights=self.weights)


class GradientBoostingConfig(BaselineSpec):
    """Histogram gradient boosting (scikit-learn's LightGBM-style trees)."""

    family: Literal["gradient_boosting"] = "gradient_boosting"
    max_iter: int = Field(200, ge=1)
    learning_rate: float = Field(0.1, gt=0.0)
    max_depth: int | None = Field(None, ge=1)
    data_tasks: ClassVar[tuple[str, ...]] = ("classification", "regression")

    def build(self, *, task: TaskName, seed: int) -> BaseEstimator:
        cls = (
            HistGradientBoostingClassifier
            if task == "classification"
            else HistGradientBoostingRegressor
        )
        return cls(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            random_state=seed,
        )


class KMeansConfig(BaselineSpec):
    """k-means: each cluster holds the samples nearest its centre (k-means++ starts)."""

    family: Literal["kmeans"] = "kmeans"
    n_clusters: int = Field(3, ge=2)
    n_init: int = Field(10, ge=1)  # fits from this many starts; the tightest one is kept

    def task(self, meta: DataMeta, loss: LossName) -> Task:
        return Clustering.for_data(meta, loss, num_clusters=self.n_clusters)

    def build(self, *, task: TaskName, seed: int) -> BaseEstimator:
        return KMeans(self.n_clusters, n_init=self.n_init, random_state=seed)


class GaussianMixtureConfig(BaselineSpec):
    """Gaussian mixture: soft clusters fitted by expectation-maximisation."""

    family: Literal["gmm"] = "gmm"
    n_clusters: int = Field(3, ge=2)
    covariance_type: Literal["full", "tied", "diag", "spherical"] = "full"

    def task(self, meta: DataMeta, loss: LossName) -> Task:
        return Clustering.for_data(meta, loss, num_clusters=self.n_clusters)

    def build(self, *, task: TaskName, seed: int) -> BaseEstimator:
        return GaussianMixture(
            self.n_clusters, covariance_type=self.covariance_type, random_state=seed
        )


BaselineConfig = (
    LogisticRegressionConfig
    | RidgeConfig
    | SVMConfig
    | DecisionTreeConfig
    | RandomForestConfig
    | KNNConfig
    | GradientBoostingConfig
    | KMeansConfig
    | GaussianMixtureConfig
)
BASELINES: tuple[type[BaselineSpec], ...] = get_args(BaselineConfig)


def describe_baselines() -> list[tuple[str, str]]:
    """(family, one-line description) for every classical baseline."""
    return [
        (cls.model_fields["family"].default, (cls.__doc__ or "").splitlines()[0])
        for cls in BASELINES
    ]


class Baseline:
    """A scikit-learn estimator behind the same interface the deep models offer the rest of
    neuralab: tensors in (standardised, any shape), outputs out (log-probabilities for
    classification, standardised values for regression, a score per cluster for
    clustering)."""

    def __init__(self, estimator: BaseEstimator, task: TaskName, num_outputs: int) -> None:
        self.estimator, self.task, self.num_outputs = estimator, task, num_outputs

    @classmethod
    def fit(
        cls,
        spec: BaselineSpec,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        task: TaskName,
        num_outputs: int,
        seed: int,
    ) -> Baseline:
        estimator = spec.build(task=task, seed=seed)
        if task == "clustering":  # the inputs alone: labels in `y` only score the clusters
            estimator.fit(_flat(x))
            return cls(estimator, task, num_outputs)
        targets = y.numpy()
        if task == "regression":
            if targets.shape[1] > 1 and spec.family in ("svm", "gradient_boosting"):
                estimator = MultiOutputRegressor(estimator)
            elif targets.shape[1] == 1:
                targets = targets[:, 0]
        estimator.fit(_flat(x), targets)
        return cls(estimator, task, num_outputs)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        features = _flat(x)
        if self.task == "clustering":
            return torch.from_numpy(_cluster_scores(self.estimator, features))
        if self.task == "regression":
            values = np.asarray(self.estimator.predict(features), dtype=np.float32)
            return torch.from_numpy(values.reshape(len(features), -1))
        probabilities = np.full((len(features), self.num_outputs), MIN_PROBABILITY, np.float32)
        # classes absent from the training split have no column; they keep the floor
        probabilities[:, self.estimator.classes_] = np.maximum(
            self.estimator.predict_proba(features), MIN_PROBABILITY
        )
        return torch.from_numpy(np.log(probabilities))

    def num_parameters(self) -> int:
        """Numbers the fitted model stores: weights, support vectors, tree nodes, samples."""
        return _stored_numbers(self.estimator)

    def save(self, path: Path) -> None:
        skops.io.dump(self.estimator, path)

    @classmethod
    def load(cls, path: Path, *, task: TaskName, num_outputs: int) -> Baseline:
        untrusted = skops.io.get_untrusted_types(file=path)
        foreign = [t for t in untrusted if not t.startswith("sklearn.")]
        if foreign:
            raise NeuralabError(str(path), f"refusing to load non-scikit-learn types: {foreign}")
        return cls(skops.io.load(path, trusted=untrusted), task, num_outputs)


def _flat(x: torch.Tensor) -> np.ndarray:
    return x.reshape(len(x), -1).numpy()


def _cluster_scores(estimator: BaseEstimator, features: np.ndarray) -> np.ndarray:
    """One score per cluster, highest for the sample's own: a mixture's log-probabilities of
    membership, or k-means' negative squared distances to the centres."""
    if isinstance(estimator, GaussianMixture):
        probabilities = np.maximum(estimator.predict_proba(features), MIN_PROBABILITY)
        return np.log(probabilities).astype(np.float32)
    return -np.square(estimator.transform(features)).astype(np.float32)


def _stored_numbers(estimator: BaseEstimator) -> int:
    """A like-for-like size: learned arrays for linear models and SVMs, nodes for trees."""
    for attribute in ("calibrated_classifiers_", "estimators_"):
        parts = getattr(estimator, attribute, None)
        if parts is not None:
            inner = [getattr(p, "estimator", p) for p in np.ravel(parts)]
            return sum(_stored_numbers(p) for p in inner)
    if hasattr(estimator, "tree_"):
        return int(estimator.tree_.node_count)
    if hasattr(estimator, "_predictors"):  # histogram gradient boosting
        return sum(len(p.nodes) for stage in estimator._predictors for p in stage)
    if hasattr(estimator, "support_vectors_"):
        return int(estimator.support_vectors_.size + estimator.dual_coef_.size)
    if hasattr(estimator, "coef_"):
        return int(np.size(estimator.coef_) + np.size(estimator.intercept_))
    if hasattr(estimator, "n_samples_fit_"):  # k-NN keeps the training set
        return int(estimator.n_samples_fit_ * estimator.n_features_in_)
    if isinstance(estimator, KMeans | GaussianMixture):
        return _cluster_numbers(estimator)
    return 0


def _cluster_numbers(estimator: KMeans | GaussianMixture) -> int:
    """k-means: its centres; a mixture: weights, means and covariances."""
    if isinstance(estimator, KMeans):
        return int(estimator.cluster_centers_.size)
    return int(estimator.weights_.size + estimator.means_.size + estimator.covariances_.size)
