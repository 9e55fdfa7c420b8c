"""Permutation importance and the report's opt-in explanations: a model that only looks at
one column ranks that column first, whether it is a network or a classical baseline."""

from __future__ import annotations

import json

import pytest

import neuralab
from tests.conftest import SIGNAL_FEATURES, tiny_experiment, write_signal_csv

FEATURES = SIGNAL_FEATURES


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """Rows whose label is `signal > 0`; the other four columns are noise."""
    folder = tmp_path_factory.mktemp("importance")
    write_signal_csv(folder / "data.csv")
    return folder


def train(table, model: dict, **train):
    dataset = {"name": "csv", "csv": str(table / "data.csv"), "target": "label"}
    spec = tiny_experiment(data={"dataset": dataset}, model=model, optim={"lr": 0.01}, **train)
    return neuralab.train(spec, out=table / "runs").path


@pytest.fixture(scope="module")
def mlp_run(table):
    return train(
        table, {"family": "mlp", "hidden_sizes": [16]}, train={"epochs": 15, "batch_size": 32}
    )


@pytest.fixture(scope="module")
def logreg_run(table):
    return train(table, {"family": "logreg"})


@pytest.mark.parametrize("run", ["mlp_run", "logreg_run"])
def test_the_column_the_label_depends_on_ranks_first_by_a_clear_margin(run_cli, request, run):
    run_dir = request.getfixturevalue(run)
    out = run_dir.parent.parent / "explained"
    code, stdout, err = run_cli("explain", str(run_dir), "--global", "--out", str(out))
    assert code == 0, err
    written = out / stdout.split("importance: ")[1].strip().split("/")[-1]
    result = json.loads((written / "importance.json").read_text())
    assert result["metric"] == "accuracy"
    ranked = result["importances"]
    assert ranked[0]["feature"] == "signal"
    assert ranked[0]["mean"] > 0.3  # shuffled, it leaves a coin toss (about 0.5 accuracy lost)
    assert ranked[0]["mean"] > 5 * max(abs(r["mean"]) for r in ranked[1:])
    assert (written / "importance.png").stat().st_size > 1000


def test_global_takes_no_input(run_cli, logreg_run, table):
    code, _, err = run_cli("explain", str(logreg_run), str(table / "data.csv"), "--global")
    assert code == 2
    assert "error: --global: ranks columns on the test split; it takes no INPUT" in err


def test_the_report_explains_only_when_asked(run_cli, mlp_run, logreg_run):
    code, _, err = run_cli("report", str(mlp_run))
    assert code == 0, err
    assert "<h2>Explanations</h2>" not in (mlp_run / "report.html").read_text()
    code, _, err = run_cli("report", str(mlp_run), "--explain")
    assert code == 0, err
    page = (mlp_run / "report.html").read_text()
    assert "<h2>Explanations</h2>" in page
    assert "Integrated gradients, first 4 test samples" in page
    assert "Permutation importance (test split, accuracy)" in page
    # a baseline has no gradients: only the permutation importance
    code, _, err = run_cli("report", str(logreg_run), "--explain")
    assert code == 0, err
    page = (logreg_run / "report.html").read_text()
    assert "Permutation importance" in page
    assert "Integrated gradients" not in page


def test_a_run_without_one_target_is_refused_before_anything_is_written(run_cli, tmp_path):
    spec = tiny_experiment(
        model={"family": "autoencoder", "hidden_sizes": [16]},
        train={"epochs": 1, "batch_size": 128},
    )
    run_dir = neuralab.train(spec, out=tmp_path / "runs").path
    code, _, err = run_cli("explain", str(run_dir), "--global", "--out", str(tmp_path / "x"))
    assert code == 2
    assert (
        "error: explain --global: permutation importance scores one target; "
        "this run is reconstruction" in err
    )
    assert not (tmp_path / "x").exists()
