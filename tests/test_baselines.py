"""Classical baselines: same split as the deep models, saved without pickle, loadable."""

from __future__ import annotations

import fractions

import numpy as np
import pytest
from sklearn.datasets import load_digits

import neuralab
from neuralab.baselines import BASELINES

CLASSIFIERS = ["logreg", "svm", "tree", "random_forest", "knn", "gradient_boosting"]
CLUSTERERS = ["kmeans", "gmm"]  # tests/tasks/test_clustering.py
FAST = {"random_forest": {"n_estimators": 20}, "gradient_boosting": {"max_iter": 20}}


def baseline_experiment(family, dataset="digits", **options):
    return {
        "name": family,
        "data": {"dataset": dataset},
        "model": {"family": family, **FAST.get(family, {}), **options},
    }


def test_every_baseline_has_a_case():
    families = {cls.model_fields["family"].default for cls in BASELINES}
    assert families  # guard: the registry is not empty
    assert families == {*CLASSIFIERS, "ridge", *CLUSTERERS}


@pytest.mark.parametrize("family", CLASSIFIERS)
def test_classifier_beats_chance_and_reloads_to_the_same_predictions(tmp_path, family):
    run = neuralab.train(baseline_experiment(family), out=tmp_path)
    assert run.test_metrics["accuracy"] > 0.75  # chance is 0.1
    assert sorted(p.name for p in run.path.iterdir()) == [
        "card.json",
        "config.yaml",
        "metrics.jsonl",
        "model.skops",
        "report.html",
        "split.safetensors",
    ]
    images = load_digits().images[:20]
    prediction = neuralab.load(run.path).predict(images)
    assert prediction.probabilities.shape == (20, 10)
    np.testing.assert_allclose(prediction.probabilities.sum(axis=1), 1.0, atol=1e-4)
    assert np.mean(np.array(prediction.labels) == load_digits().target[:20].astype(str)) > 0.7


@pytest.mark.parametrize("family", ["ridge", "svm", "random_forest", "knn", "gradient_boosting"])
def test_regressors_fit_the_sine(tmp_path, family):
    run = neuralab.train(baseline_experiment(family, dataset="sine"), out=tmp_path)
    assert run.test_metrics["r2"] > 0.8


def test_multi_output_regression(tmp_path):
    spec = baseline_experiment("svm", dataset={"name": "sine", "horizon": 3, "num_samples": 400})
    run = neuralab.train(spec, out=tmp_path)
    prediction = neuralab.load(run.path).predict(np.zeros((2, 1, 32)))
    assert prediction.values.shape == (2, 3)


def test_baseline_uses_the_same_split_as_the_deep_model(tmp_path):
    deep = neuralab.train(
        baseline_experiment("mlp", hidden_sizes=[8]) | {"train": {"epochs": 1}}, out=tmp_path
    )
    classical = neuralab.train(baseline_experiment("logreg"), out=tmp_path)
    assert deep.card.data == classical.card.data
    assert sum(map(sum, classical.card.confusion_matrix)) == 360


def test_wrong_task_is_refused_with_a_hint(tmp_path):
    with pytest.raises(neuralab.NeuralabError) as caught:
        neuralab.train(baseline_experiment("ridge"), out=tmp_path)
    assert str(caught.value).startswith(
        "model.family: 'ridge' learns from regression data, but dataset 'digits' is classification"
    )
    assert not any(tmp_path.iterdir())


def test_foreign_types_are_refused(tmp_path):
    run = neuralab.train(baseline_experiment("logreg"), out=tmp_path)
    import skops.io

    skops.io.dump({"payload": fractions.Fraction(1, 3)}, run.path / "model.skops")
    with pytest.raises(neuralab.NeuralabError, match="refusing to load non-scikit-learn types"):
        neuralab.load(run.path)
