"""Comparison: models x seeds on one split, leaderboard files, and stated significance."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

import neuralab
from neuralab.compare import _paired_t, _per_sample_test
from neuralab.config import load_config
from neuralab.data import load_data
from tests.conftest import tiny_experiment


def test_compare_writes_leaderboard_files_and_ranks_models(tmp_path):
    comparison = neuralab.compare(
        tiny_experiment(train={"epochs": 3}), models=["logreg", "knn", "mlp"], seeds=2, out=tmp_path
    )
    assert sorted(p.name for p in comparison.path.iterdir()) == [
        "comparison.png",
        "curves.png",
        "leaderboard.csv",
        "leaderboard.md",
        "report.html",
        "runs",
    ]
    assert len(list((comparison.path / "runs").iterdir())) == 6
    with (comparison.path / "leaderboard.csv").open() as file:
        rows = list(csv.DictReader(file))
    means = [float(r["accuracy_mean"]) for r in rows]
    assert means == sorted(means, reverse=True)
    assert rows[0]["verdict"] == "leader"
    assert all(r["seeds"] == "2" for r in rows)
    assert comparison.test == "paired t-test across seeds"
    assert "paired t-test across seeds" in (comparison.path / "leaderboard.md").read_text()
    for runs in comparison.runs.values():
        assert all(run.path.is_dir() for run in runs)
    test_rows = [_same_test_rows([runs[s] for runs in comparison.runs.values()]) for s in (0, 1)]
    assert not torch.equal(test_rows[0], test_rows[1])  # the split follows the seed


def _same_test_rows(runs) -> torch.Tensor:
    """The test inputs every one of `runs` was scored on, checked to be one and the same:
    each run's config gives the same test rows, and scoring the run's saved model on them
    gives its card's test metrics."""
    configs = [load_config(run.path / "config.yaml") for run in runs]
    bundles = [load_data(config.data, task=None, seed=config.seed) for config in configs]
    for bundle in bundles[1:]:
        assert torch.equal(bundle.x_test, bundles[0].x_test)
        assert torch.equal(bundle.y_test, bundles[0].y_test)
    for run in runs:
        assert neuralab.evaluate_run(run.path) == pytest.approx(run.test_metrics, rel=1e-6)
    return bundles[0].x_test


def test_aliases_and_unknown_models(tmp_path):
    with pytest.raises(neuralab.NeuralabError) as caught:
        neuralab.compare(tiny_experiment(), models=["rf", "svmm"], seeds=1, out=tmp_path)
    assert str(caught.value).startswith("--models: unknown model 'svmm' (did you mean 'svm'?")


def test_a_model_that_cannot_serve_the_data_fails_before_training(tmp_path):
    spec = tiny_experiment(data={"dataset": "moons"})
    with pytest.raises(neuralab.NeuralabError, match="cnn needs image"):
        neuralab.compare(spec, models=["logreg", "cnn"], seeds=1, out=tmp_path)
    assert not any(tmp_path.iterdir())


def test_families_that_learn_different_tasks_fail_before_training(tmp_path, run_cli):
    with pytest.raises(neuralab.NeuralabError) as caught:
        neuralab.compare(tiny_experiment(), models=["mlp", "autoencoder"], seeds=1, out=tmp_path)
    assert caught.value.problems[0].where == "--models"
    assert "mlp learns classification, autoencoder learns reconstruction" in str(caught.value)
    assert not any(tmp_path.iterdir())
    experiment = tmp_path / "digits.yaml"
    experiment.write_text("data: {dataset: digits}\nmodel: {family: mlp}\n")
    code, _, err = run_cli(
        "compare", str(experiment), "--models", "mlp,autoencoder", "--out", str(tmp_path / "o")
    )
    assert code == 2
    assert err.startswith("error: --models: a leaderboard ranks models of one task")
    assert not (tmp_path / "o").exists()


def test_a_gan_has_no_metric_to_rank_and_fails_before_training(tmp_path):
    with pytest.raises(neuralab.NeuralabError, match="adversarial run has no single metric"):
        neuralab.compare(
            tiny_experiment(model={"family": "gan"}), models=["gan"], seeds=1, out=tmp_path
        )
    assert not any(tmp_path.iterdir())


def test_mcnemar_separates_a_clearly_better_classifier():
    rng = np.random.default_rng(0)
    leader_wrong = rng.random(400) < 0.02
    other_wrong = rng.random(400) < 0.20
    assert _per_sample_test(leader_wrong, other_wrong, binary=True) < 1e-6
    assert _per_sample_test(leader_wrong, leader_wrong, binary=True) == 1.0


def test_paired_t_test():
    assert _paired_t([0.9, 0.91, 0.92], [0.8, 0.82, 0.79]) < 0.05
    assert _paired_t([0.9, 0.91, 0.92], [0.92, 0.9, 0.91]) > 0.5
    assert _paired_t([0.9, 0.9], [0.9, 0.9]) == 1.0


def test_compare_command_prints_the_leaderboard(tmp_path, run_cli):
    import yaml

    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(tiny_experiment(train={"epochs": 1})))
    code, out, err = run_cli(
        "compare",
        str(path),
        "--models",
        "logreg,rf,mlp",
        "--seeds",
        "1",
        "--set",
        "model.hidden_sizes=[8]",
        "--out",
        str(tmp_path / "out"),
    )
    assert code == 0, err
    for family in ("logreg", "random_forest", "mlp"):
        assert family in out
    assert "significance: exact McNemar test on the test split" in out
    code, _, err = run_cli("compare", str(path), "--models", "mlp", "--seeds", "0")
    assert (code, err.strip()) == (2, "error: --seeds: must be at least 1, got 0")


def test_interrupting_a_comparison_keeps_nothing_and_says_so(tmp_path):
    import os
    import signal

    from neuralab.train import Callback

    class Interrupt(Callback):
        def on_step_end(self, state):
            if state.step == 2:
                os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(neuralab.NeuralabError, match="interrupted while training mlp-seed0"):
        neuralab.compare(
            tiny_experiment(), models=["mlp"], seeds=1, out=tmp_path, callbacks=[Interrupt()]
        )
    assert list(tmp_path.iterdir()) == []


def test_vary_trains_one_run_per_setting_of_the_grid(tmp_path, run_cli):
    import yaml

    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(tiny_experiment(train={"epochs": 1})))
    code, out, err = run_cli(
        "compare",
        str(path),
        "--vary",
        "optim.name=sgd,adam",
        "--vary",
        "model.hidden_sizes=[4],[16, 16]",
        "--seeds",
        "1",
        "--out",
        str(tmp_path / "out"),
    )
    assert code == 0, err
    [folder] = (tmp_path / "out").iterdir()
    with (folder / "leaderboard.csv").open() as file:
        labels = {row["model"] for row in csv.DictReader(file)}
    assert labels == {
        f"optim.name={o}, model.hidden_sizes={h}"
        for o in ("sgd", "adam")
        for h in ("[4]", "[16, 16]")
    }
    runs = sorted(p.name.rsplit("-", 2)[0] for p in (folder / "runs").iterdir())
    settings = ["sgd-4", "sgd-16-16", "adam-4", "adam-16-16"]
    assert runs == sorted(f"{s}-seed{seed}" for s in settings for seed in (0,))
    assert (folder / "curves.png").stat().st_size > 10_000
    assert "1 seed(s) per setting" in out


def test_vary_refuses_bad_axes_before_training(tmp_path):
    def problem(**options):
        with pytest.raises(neuralab.NeuralabError) as caught:
            neuralab.compare(tiny_experiment(), seeds=1, out=tmp_path, **options)
        return str(caught.value)

    assert problem(vary=["data.split.val=0.1,0.2"]).startswith(
        "--vary: 'data.split.val' cannot vary within one comparison"
    )
    assert problem(vary=["optim.name"]).startswith("--vary: 'optim.name' is not key=value")
    assert problem(vary=["optim.name=sgd"], models=["mlp"]).startswith(
        "--vary: cannot be combined with --models"
    )
    assert problem(vary=["model.dropout=0,2"]) == (
        "model.dropout: Input should be less than 1, got 2 (with --vary model.dropout=2)"
    )
    assert not any(tmp_path.iterdir())


def test_vary_ranks_an_autoencoder_by_reconstruction_error(tmp_path):
    # lower mse ranks first; one seed: a Wilcoxon test on per-sample squared errors
    experiment = {
        "name": "ae",
        "data": {"dataset": "digits"},
        "model": {"family": "autoencoder", "hidden_sizes": [32]},
        "optim": {"name": "adam", "lr": 0.003},
        "train": {"epochs": 3, "batch_size": 64},
    }
    result = neuralab.compare(experiment, vary=["model.latent_size=1,8"], seeds=1, out=tmp_path)
    assert result.metric == "mse"
    assert [row.mean for row in result.rows] == sorted(row.mean for row in result.rows)
    assert result.rows[0].model.endswith("latent_size=8")  # more code, better reconstruction
    assert result.test.startswith("Wilcoxon")
    assert result.rows[1].p_value < 0.05
