"""Attributions: a model that only looks at one feature is explained by that feature."""

from __future__ import annotations

import json

import numpy as np
import pytest

import neuralab
from tests.conftest import SIGNAL_FEATURES, tiny_experiment, write_signal_csv

FEATURES = SIGNAL_FEATURES


@pytest.fixture(scope="module")
def tabular_run(tmp_path_factory):
    """An MLP trained on rows whose label is `signal > 0`; the other columns are noise."""
    folder = tmp_path_factory.mktemp("tabular")
    lines = write_signal_csv(folder / "data.csv")
    spec = tiny_experiment(
        data={"dataset": {"name": "csv", "csv": str(folder / "data.csv"), "target": "label"}},
        model={"family": "mlp", "hidden_sizes": [16]},
        optim={"lr": 0.01},
        train={"epochs": 15, "batch_size": 32},
    )
    (folder / "rows.csv").write_text("\n".join(lines[:41]) + "\n")  # 40 rows, with header
    run = neuralab.train(spec, out=folder / "runs")
    assert run.test_metrics["accuracy"] > 0.9
    return folder, run.path


def explain_rows(run_cli, tabular_run, *args):
    folder, run_dir = tabular_run
    code, out, err = run_cli(
        "explain", str(run_dir), str(folder / "rows.csv"), "--out", str(folder / "x"), *args
    )
    assert code == 0, err
    written = folder / "x" / out.split("explanation: ")[1].strip().split("/")[-1]
    return json.loads((written / "attributions.json").read_text()), written


@pytest.mark.parametrize("method", ["integrated_gradients", "occlusion"])
def test_attributions_put_most_mass_on_the_feature_the_model_uses(run_cli, tabular_run, method):
    result, written = explain_rows(run_cli, tabular_run, "--method", method)
    mass = np.abs(np.asarray(result["attributions"])).mean(axis=0)
    assert mass.argmax() == FEATURES.index("signal")
    assert mass[2] / mass.sum() > 0.5
    assert (written / "attributions.png").stat().st_size > 1000


def test_a_named_target_and_a_bad_one(run_cli, tabular_run):
    result, _ = explain_rows(run_cli, tabular_run, "--target", "pos", "--method", "saliency")
    assert set(result["targets"]) == {"pos"}
    folder, run_dir = tabular_run
    code, _, err = run_cli("explain", str(run_dir), str(folder / "rows.csv"), "--target", "maybe")
    assert code == 2
    assert "error: --target: 'maybe' is not a class (valid: neg, pos)" in err


def test_a_baseline_is_refused_with_the_reason(run_cli, tabular_run, tmp_path):
    folder, _ = tabular_run
    run = neuralab.train(
        tiny_experiment(
            data={"dataset": {"name": "csv", "csv": str(folder / "data.csv"), "target": "label"}},
            model={"family": "logreg"},
        ),
        out=tmp_path,
    )
    code, _, err = run_cli("explain", str(run.path), str(folder / "rows.csv"))
    assert code == 2
    assert "per-sample attributions need gradients; this run is a classical baseline" in err
