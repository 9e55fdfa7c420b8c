"""Clustering: group samples without labels; scored on the inputs, and against labels if any.

A clusterer's output is one score per cluster (the sample's cluster is the highest). The
task's targets carry what scoring needs and fitting must never see: the sample's inputs,
for the silhouette, and its class label, for the adjusted Rand index (ARI) and normalised
mutual information (NMI). The clustering families fit on the inputs alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    normalized_mutual_info_score,
    silhouette_samples,
    silhouette_score,
)

from neuralab.errors import NeuralabError
from neuralab.tasks.base import BaseTask
from neuralab.tasks.prediction import Prediction

if TYPE_CHECKING:
    from pathlib import Path

    from neuralab.card import Card
    from neuralab.data import DataBundle, DataMeta
    from neuralab.runs import Predictor

# The silhouette costs a distance per pair of samples: larger splits are scored on a
# seeded sample of this many (sklearn's `sample_size`).
SILHOUETTE_SAMPLES = 2000
NO_LABEL = -1  # the label column of data whose targets are not classes


@dataclass(frozen=True)
class Clustering(BaseTask):
    """Silhouette (main) and Calinski-Harabasz on the standardised inputs; with class
    labels, also ARI and NMI. The loss is the mean squared distance of a sample to its
    cluster's centre, per input value. Predictions are cluster indices."""

    num_clusters: int
    labelled: bool  # the data has class labels, so ARI and NMI are reported
    name: ClassVar[str] = "clustering"
    trivial_output: ClassVar[str] = "every sample in one cluster"
    secondary_metric: ClassVar[str | None] = "calinski_harabasz"
    labels_use: ClassVar[str] = "labels score the clusters only"

    @classmethod
    def for_data(cls, meta: DataMeta, loss: str, *, num_clusters: int) -> Clustering:
        """The task for a clusterer of `num_clusters` on `meta`'s data; labels count when
        the data holds two classes or more."""
        cls.check_loss(loss)
        train = meta.sizes.get("train", num_clusters)
        if num_clusters > train:
            raise NeuralabError(
                "model.n_clusters",
                f"{num_clusters} clusters need as many training samples, but the training "
                f"split has {train}",
                "ask for fewer clusters, or give more data",
            )
        labelled = meta.task == "classification" and meta.num_outputs >= 2
        return cls(num_clusters, labelled)

    @property
    def metric_names(self) -> tuple[str, ...]:
        return ("silhouette", "calinski_harabasz", *(("ari", "nmi") if self.labelled else ()))

    @property
    def main_metric(self) -> str:
        return "silhouette"

    def adapt(self, bundle: DataBundle) -> DataBundle:
        """Targets become the flattened inputs followed by the label column."""

        def packed(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            labels = y if self.labelled else torch.full((len(x),), NO_LABEL)
            return torch.cat([x.reshape(len(x), -1).float(), labels.float()[:, None]], dim=1)

        return dataclasses.replace(
            bundle,
            y_train=packed(bundle.x_train, bundle.y_train),
            y_val=packed(bundle.x_val, bundle.y_val),
            y_test=packed(bundle.x_test, bundle.y_test),
            labels_test=bundle.y_test if self.labelled else None,
        )

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        inputs, clusters = target[:, :-1], output.argmax(dim=1)
        count = int(clusters.max()) + 1
        sums = torch.zeros(count, inputs.shape[1]).index_add_(0, clusters, inputs)
        sizes = torch.bincount(clusters, minlength=count).clamp(min=1)
        centres = sums / sizes[:, None]
        return (inputs - centres[clusters]).pow(2).mean()

    def metrics(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        inputs, labels = target[:, :-1].numpy(), target[:, -1].long().numpy()
        clusters = output.argmax(dim=1).numpy()
        scores = {"silhouette": 0.0, "calinski_harabasz": 0.0}
        if _separable(clusters):  # one cluster separates nothing: both are 0
            sample = min(len(inputs), SILHOUETTE_SAMPLES)
            scores = {
                "silhouette": float(
                    silhouette_score(inputs, clusters, sample_size=sample, random_state=0)
                ),
                "calinski_harabasz": float(calinski_harabasz_score(inputs, clusters)),
            }
        if self.labelled:  # the labels score the clusters; they never reached the fit
            scores["ari"] = float(adjusted_rand_score(labels, clusters))
            scores["nmi"] = float(normalized_mutual_info_score(labels, clusters))
        return scores

    def per_sample_errors(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """1 - the sample's silhouette (0: deep inside its cluster; 2: in the wrong one)."""
        clusters = output.argmax(dim=1).numpy()
        if not _separable(clusters):
            return torch.ones(len(clusters), dtype=torch.float64)
        return torch.from_numpy(1.0 - silhouette_samples(target[:, :-1].numpy(), clusters))

    def predict(self, predictor: Predictor, inputs: Any) -> Prediction:
        clusters = predictor.outputs(inputs).argmax(dim=1).numpy()
        return Prediction(values=clusters[:, None], column="cluster")

    def report_section(self, run_dir: Path, card: Card, model, bundle) -> str:
        from neuralab.report.sections import clustering_section  # matplotlib: lazily

        return clustering_section(self.num_clusters, model, bundle)

    def settings(self) -> dict[str, Any]:
        return {"num_clusters": self.num_clusters, "labelled": self.labelled}


def _separable(clusters: np.ndarray) -> bool:
    """Whether the silhouette is defined: 2 or more clusters, fewer than samples."""
    return 2 <= len(np.unique(clusters)) < len(clusters)
