"""K-fold cross-validation: `data.split.folds` in train and compare."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import yaml

import neuralab
from neuralab.config import load_config
from neuralab.data import load_data
from neuralab.errors import NeuralabError
from tests.conftest import tiny_experiment

TINY_SVM = {"family": "svm"}


def _write(tmp_path, **sections):
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(tiny_experiment(**sections)))
    return path


def test_the_test_folds_cover_the_data_once_with_balanced_classes():
    per_fold = []
    for fold in range(3):
        experiment = load_config(
            tiny_experiment(data={"dataset": "digits", "split": {"folds": 3, "fold": fold}})
        )
        bundle = load_data(experiment.data, task=None, seed=0)
        per_fold.append(np.bincount(bundle.y_test.numpy(), minlength=10))
        assert len(bundle.y_train) + len(bundle.y_val) + len(bundle.y_test) == 1797
    per_class = np.sum(per_fold, axis=0)
    assert per_class.sum() == 1797
    # stratified: each fold holds a third of every class, give or take one sample
    assert all(np.abs(counts - per_class / 3).max() < 1 for counts in per_fold)


@pytest.mark.parametrize(
    ("split", "message"),
    [
        ({"folds": 1}, "data.split.folds: Input should be greater than or equal to 2"),
        ({"folds": 3, "fold": 3}, "fold must be below folds (3)"),
        ({"folds": 5, "test": 0.3}, "with folds the test split is one fold (1/5)"),
    ],
)
def test_bad_folds_are_config_errors(split, message):
    with pytest.raises(NeuralabError) as error:
        load_config(tiny_experiment(data={"dataset": "digits", "split": split}))
    assert message in str(error.value)


def test_folds_refuse_a_dataset_with_a_published_test_split(tmp_path, run_cli):
    path = _write(tmp_path, data={"dataset": "mnist1d", "split": {"folds": 3}})
    code, _, err = run_cli("train", str(path), "--out", str(tmp_path / "out"))
    assert code == 2
    assert "error: data.split.folds: dataset 'mnist1d' has a fixed, published test split" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_train_with_folds_writes_one_run_per_fold_and_the_summary(tmp_path, run_cli):
    path = _write(tmp_path, data={"dataset": "digits", "split": {"folds": 3}}, model=TINY_SVM)
    code, out, err = run_cli("train", str(path), "--out", str(tmp_path / "out"))
    assert code == 0, err
    [folder] = (tmp_path / "out").iterdir()
    runs = sorted(p.name.rsplit("-", 2)[0] for p in (folder / "runs").iterdir())
    assert runs == ["tiny-fold0", "tiny-fold1", "tiny-fold2"]
    with (folder / "folds.csv").open() as file:
        accuracies = [float(row["accuracy"]) for row in csv.DictReader(file)]
    summary = json.loads((folder / "cv-summary.json").read_text())
    assert summary["folds"] == 3
    assert summary["test"]["accuracy"]["mean"] == pytest.approx(np.mean(accuracies), abs=1e-5)
    assert summary["test"]["accuracy"]["std"] == pytest.approx(np.std(accuracies, ddof=1), abs=1e-5)
    assert min(accuracies) > 0.9  # an SVM on digits, each fold on different test samples
    assert len(set(accuracies)) > 1
    assert "mean ± std" in out


def test_compare_with_folds_pairs_the_folds(tmp_path, run_cli):
    path = _write(tmp_path, data={"dataset": "digits", "split": {"folds": 2}}, train={"epochs": 1})
    code, out, err = run_cli(
        "compare", str(path), "--models", "logreg,svm", "--out", str(tmp_path / "out")
    )
    assert code == 0, err
    [folder] = (tmp_path / "out").iterdir()
    runs = sorted(p.name.rsplit("-", 2)[0] for p in (folder / "runs").iterdir())
    assert runs == ["logreg-fold0", "logreg-fold1", "svm-fold0", "svm-fold1"]
    assert "paired t-test across folds" in (folder / "leaderboard.md").read_text()
    assert "2 folds per model" in out
    code, _, err = run_cli("compare", str(path), "--models", "svm", "--seeds", "2")
    assert code == 2
    assert "error: --seeds: cannot be combined with data.split.folds" in err


def test_folds_train_in_one_process(tmp_path, run_cli):
    path = _write(tmp_path, data={"dataset": "digits", "split": {"folds": 3}})
    code, _, err = run_cli("train", str(path), "--nproc", "2", "--out", str(tmp_path / "out"))
    assert code == 2
    assert "error: --nproc: data.split.folds trains its folds in one process" in err


def test_python_train_with_folds_trains_every_fold_as_the_cli_does(tmp_path, run_cli):
    experiment = tiny_experiment(data={"dataset": "digits", "split": {"folds": 3}}, model=TINY_SVM)
    result = neuralab.train(experiment, out=tmp_path / "python")
    path = _write(tmp_path, data={"dataset": "digits", "split": {"folds": 3}}, model=TINY_SVM)
    code, _, err = run_cli("train", str(path), "--out", str(tmp_path / "cli"))
    assert code == 0, err

    assert isinstance(result, neuralab.CrossValidation)
    assert [run.card.name for run in result.runs] == ["tiny-fold0", "tiny-fold1", "tiny-fold2"]
    [cli_folder] = (tmp_path / "cli").iterdir()
    cli_summary = json.loads((cli_folder / "cv-summary.json").read_text())
    assert json.loads((result.path / "cv-summary.json").read_text()) == cli_summary
    # without folds it is one run, as before
    assert isinstance(neuralab.train(tiny_experiment(model=TINY_SVM), out=tmp_path), neuralab.Run)
