"""Clustering: k-means and a Gaussian mixture find well-separated blobs, scored on the
inputs (silhouette) and, for evaluation only, against the labels (ARI, NMI)."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
import torch
import yaml
from sklearn.datasets import make_blobs
from sklearn.metrics import silhouette_score

import neuralab
from neuralab.tasks import Clustering

SEPARATED = {"name": "blobs", "num_samples": 300, "cluster_std": 0.5}


def clustering_experiment(family: str, dataset=None, **model) -> dict:
    return {
        "name": family,
        "task": "clustering",
        "data": {"dataset": dataset or SEPARATED},
        "model": {"family": family, **model},
    }


@pytest.mark.parametrize("family", ["kmeans", "gmm"])
def test_clusterers_find_three_separated_blobs(tmp_path, family):
    run = neuralab.train(clustering_experiment(family), out=tmp_path)
    assert run.card.task == "clustering"
    assert run.test_metrics["silhouette"] > 0.5
    assert run.test_metrics["ari"] > 0.9
    assert run.test_metrics["nmi"] > 0.9
    assert "<h2>Clusters</h2>" in (run.path / "report.html").read_text()


def test_predict_gives_a_cluster_index_per_sample(tmp_path):
    run = neuralab.train(clustering_experiment("kmeans"), out=tmp_path)
    # the blobs source draws these samples (seed 0), so each class is one cluster
    x, y = make_blobs(300, n_features=2, centers=3, cluster_std=0.5, random_state=0)
    prediction = neuralab.load(run.path).predict(x.astype(np.float32))
    rows = list(csv.DictReader(io.StringIO(prediction.to_csv())))
    clusters = np.array([int(row["cluster"]) for row in rows])
    assert set(clusters) == {0, 1, 2}
    # one cluster per class: each class maps to a single cluster, each to another
    assert len({(label, cluster) for label, cluster in zip(y, clusters, strict=True)}) == 3


def test_the_labels_score_the_clusters_but_never_fit_them(tmp_path):
    x, y = make_blobs(240, n_features=2, centers=3, cluster_std=0.5, random_state=1)
    shuffled = np.random.default_rng(0).permutation(y)
    runs = []
    for labels in (y, shuffled):
        path = tmp_path / f"{len(runs)}.npz"
        np.savez(path, x=x.astype(np.float32), y=labels)
        dataset = {"arrays": str(path)}
        experiment = clustering_experiment("kmeans", dataset) | {
            "data": {"dataset": dataset, "split": {"stratify": False}}
        }
        runs.append(neuralab.train(experiment, out=tmp_path / "runs"))
    true, scrambled = (run.test_metrics for run in runs)
    assert true["silhouette"] == scrambled["silhouette"]  # the same clusters
    assert true["ari"] > 0.9
    assert scrambled["ari"] < 0.1


def test_data_without_class_labels_is_scored_on_the_inputs_alone(tmp_path):
    x, _ = make_blobs(240, n_features=2, centers=3, cluster_std=0.5, random_state=2)
    path = tmp_path / "values.npz"
    np.savez(path, x=x.astype(np.float32), y=np.zeros((len(x), 1), np.float32))
    run = neuralab.train(clustering_experiment("gmm", {"arrays": str(path)}), out=tmp_path)
    assert set(run.test_metrics) == {"loss", "silhouette", "calinski_harabasz"}
    assert run.test_metrics["silhouette"] > 0.5


def test_compare_ranks_clusterers_by_silhouette(tmp_path):
    experiment = clustering_experiment("kmeans", {**SEPARATED, "num_samples": 200})
    comparison = neuralab.compare(experiment, models=["kmeans", "gmm"], seeds=1, out=tmp_path)
    assert comparison.metric == "silhouette"
    assert comparison.secondary == "calinski_harabasz"
    means = [row.mean for row in comparison.rows]
    assert means == sorted(means, reverse=True)
    assert {row.model for row in comparison.rows} == {"kmeans", "gmm"}


def test_a_family_that_cannot_cluster_is_refused_naming_the_key(tmp_path):
    with pytest.raises(neuralab.NeuralabError) as caught:
        neuralab.train(clustering_experiment("logreg"), out=tmp_path)
    assert str(caught.value).startswith(
        "task: 'clustering' is not what family 'logreg' learns (it learns classification)"
    )
    assert not any(tmp_path.iterdir())


def test_metrics_score_the_packed_inputs_and_labels():
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [9.0, 9.0], [9.0, 10.0]])
    labels = torch.tensor([[1.0], [1.0], [0.0], [1.0]])
    target = torch.cat([x, labels], dim=1)
    output = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    task = Clustering(2, labelled=True)
    scores = task.metrics(output, target)
    assert scores["silhouette"] == pytest.approx(silhouette_score(x.numpy(), [0, 0, 1, 1]))
    assert scores["ari"] < 1.0  # the last sample's label disagrees with its cluster
    assert task.loss(output, target).item() == pytest.approx(0.125)  # 0.5² per value
    one_cluster = task.metrics(torch.zeros(4, 2), target)
    assert one_cluster["silhouette"] == 0.0
    assert one_cluster["calinski_harabasz"] == 0.0


def test_inspect_says_the_labels_only_score_the_clusters(run_cli, tmp_path):
    path = tmp_path / "blobs-kmeans.yaml"
    path.write_text(yaml.safe_dump(clustering_experiment("kmeans")))
    code, out, err = run_cli("inspect", str(path))
    assert code == 0, err
    assert "KMeans(n_clusters=3" in out
    assert "classification (labels score the clusters only: the run learns clustering)" in out


def test_more_clusters_than_training_samples_is_refused_before_fitting(tmp_path):
    experiment = clustering_experiment("gmm", {**SEPARATED, "num_samples": 40}, n_clusters=30)
    with pytest.raises(neuralab.NeuralabError) as caught:
        neuralab.train(experiment, out=tmp_path)
    assert str(caught.value).startswith(
        "model.n_clusters: 30 clusters need as many training samples, but the training split has 28"
    )
    assert not any(tmp_path.iterdir())


def test_a_flat_folder_of_images_without_labels_is_clustered(tmp_path):
    from PIL import Image

    folder = tmp_path / "photos"  # no class subfolders: no labels to score against
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        shade = 40 if i % 2 else 210  # two kinds of picture: dark and bright
        pixels = np.clip(shade + rng.normal(0, 10, (6, 6)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels, "L").save(folder / f"{i}.png")
    experiment = clustering_experiment("kmeans", {"images": str(folder)}, n_clusters=2)
    run = neuralab.train(experiment, out=tmp_path / "runs")
    assert set(run.test_metrics) == {"loss", "silhouette", "calinski_harabasz"}
    assert run.test_metrics["silhouette"] > 0.5
    prediction = neuralab.load(run.path).predict(np.full((2, 1, 6, 6), [[[[40.0]]], [[[210.0]]]]))
    assert len(set(prediction.values[:, 0])) == 2  # a dark and a bright one: two clusters
