"""The command line: the train -> evaluate -> predict path, and one line per bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_digits

from neuralab.config import TrainConfig
from tests.conftest import tiny_experiment


def write_experiment(tmp_path, **sections):
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(tiny_experiment(**sections)))
    return path


@pytest.fixture
def trained(tmp_path, run_cli):
    """A trained tiny digits run directory."""
    path = write_experiment(
        tmp_path, model={"family": "mlp", "hidden_sizes": [32]}, train={"epochs": 10}
    )
    code, out, err = run_cli("train", str(path), "--out", str(tmp_path / "runs"))
    assert code == 0, err
    [run_dir] = (tmp_path / "runs").iterdir()
    return run_dir


def test_train_writes_the_run_directory_and_prints_its_path(trained, tmp_path, run_cli):
    names = sorted(p.name for p in trained.iterdir())
    assert names == [
        "card.json",
        "checkpoints",
        "config.yaml",
        "curves.png",
        "metrics.jsonl",
        "model.safetensors",
        "report.html",
        "split.safetensors",
    ]
    assert trained.name.startswith("tiny-")
    card = json.loads((trained / "card.json").read_text())
    assert card["model"]["family"] == "mlp"
    assert card["data"]["label_names"] == list("0123456789")
    assert len(card["confusion_matrix"]) == 10
    assert sum(map(sum, card["confusion_matrix"])) == 360
    resolved = yaml.safe_load((trained / "config.yaml").read_text())
    assert resolved["optim"]["name"] == "adam"  # defaults filled in


def test_train_prints_metrics_and_path(tmp_path, run_cli):
    code, out, _ = run_cli(
        "train", str(write_experiment(tmp_path)), "--out", str(tmp_path), "--set", "train.epochs=1"
    )
    assert code == 0
    assert "accuracy" in out
    assert f"run: {tmp_path}" in out


def test_evaluate_recomputes_the_test_metrics(trained, run_cli):
    code, out, _ = run_cli("evaluate", str(trained), "--json")
    assert code == 0
    card = json.loads((trained / "card.json").read_text())
    assert json.loads(out) == pytest.approx(card["metrics"]["test"])
    code, out, _ = run_cli("evaluate", str(trained))
    assert "macro_f1" in out


def test_predict_from_npy_and_csv_gives_label_names_and_probabilities(trained, tmp_path, run_cli):
    digits = load_digits()
    np.save(tmp_path / "x.npy", digits.images[:50])
    np.savetxt(tmp_path / "x.csv", digits.data[:50], delimiter=",")
    code, out, _ = run_cli("predict", str(trained), str(tmp_path / "x.npy"))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "prediction," + ",".join(f"p_{d}" for d in range(10))
    rows = [line.split(",") for line in lines[1:]]
    assert len(rows) == 50
    assert all(abs(sum(map(float, r[1:])) - 1) < 1e-4 for r in rows)
    accuracy = np.mean([r[0] == str(t) for r, t in zip(rows, digits.target[:50], strict=True)])
    assert accuracy > 0.7
    code, _, _ = run_cli(
        "predict", str(trained), str(tmp_path / "x.csv"), "--output", str(tmp_path / "p.csv")
    )
    assert code == 0
    assert (tmp_path / "p.csv").read_text() == out


def test_python_api_load_and_predict(trained):
    import neuralab

    prediction = neuralab.load(trained).predict(load_digits().images[:5])
    assert len(prediction.labels) == 5
    assert prediction.probabilities.shape == (5, 10)


def test_datasets_and_models_are_listed(run_cli):
    _, out, _ = run_cli("datasets")
    for name in ("digits", "mnist1d", "moons", "blobs", "sine", "csv"):
        assert name in out
    _, out, _ = run_cli("models")
    assert "mlp" in out
    assert "cnn" in out


def test_python_dash_m_works():
    result = subprocess.run(
        [sys.executable, "-m", "neuralab", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "quickstart" in result.stdout


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["optim.lrr=0.1"], "error: optim.lrr: unknown key (did you mean 'lr'?"),
        (["train.epochs=abc"], "error: train.epochs: Input should be a valid integer"),
        (["optim.lr=-0.1"], "error: optim.lr: Input should be greater than 0, got -0.1"),
        (["data.split.val=0.5", "data.split.test=0.5"], "error: data.split: val + test must be"),
        (["data.dataset=digitz"], "error: data.dataset.name: unknown name 'digitz'"),
        (["model.family=transformr"], "error: model.family: unknown family 'transformr'"),
        (["data.dataset=moons", "model={family: cnn}"], "error: model.family: cnn needs image"),
        (
            ["train.early_stopping.monitor=val_acc"],
            "error: train.early_stopping.monitor: 'val_acc' is not a metric this run produces "
            "(did you mean 'val_accuracy'?",
        ),
    ],
)
def test_bad_config_exits_2_with_one_line_and_writes_nothing(tmp_path, run_cli, sets, message):
    args = ["train", str(write_experiment(tmp_path)), "--out", str(tmp_path / "runs")]
    for item in sets:
        args += ["--set", item]
    code, out, err = run_cli(*args)
    assert code == 2
    assert err.startswith(message)
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def csv_experiment(tmp_path, text, target="y"):
    (tmp_path / "data.csv").write_text(text)
    return write_experiment(tmp_path, data={"dataset": {"csv": "data.csv", "target": target}})


@pytest.mark.parametrize(
    ("text", "target", "message"),
    [
        (
            "a,y\n1,0\n2,1\n",
            "label",
            "error: data.dataset.target: column 'label' not in data.csv (columns: a, y)",
        ),
        ("", "y", "error: data.dataset.csv: data.csv is empty"),
        (
            "a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(20)) + "nan,1\n",
            "y",
            "error: data.csv: column 'a' has 1 missing or non-numeric value(s) at line(s) 22",
        ),
    ],
)
def test_bad_csv_exits_2(tmp_path, run_cli, text, target, message):
    code, _, err = run_cli(
        "train", str(csv_experiment(tmp_path, text, target)), "--out", str(tmp_path / "runs")
    )
    assert code == 2
    assert err.startswith(message)


def test_missing_csv_file(tmp_path, run_cli):
    path = write_experiment(tmp_path, data={"dataset": {"csv": "gone.csv", "target": "y"}})
    code, _, err = run_cli("train", str(path))
    assert code == 2
    assert err.startswith("error: data.dataset.csv: file not found:")


def test_malformed_yaml_and_missing_file(tmp_path, run_cli):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {family: mlp\n")
    code, _, err = run_cli("train", str(bad))
    assert code == 2
    assert err.startswith(f"error: {bad}:2:1: malformed YAML")
    code, _, err = run_cli("train", str(tmp_path / "none.yaml"))
    assert (code, err.strip()) == (
        2,
        f"error: {tmp_path / 'none.yaml'}: experiment file not found (check the path)",
    )


@pytest.mark.parametrize("position", ["first", "last"])
def test_debug_shows_the_traceback(tmp_path, run_cli, position):
    args = ["train", str(write_experiment(tmp_path)), "--set", "optim.x=1"]
    args = ["--debug", *args] if position == "first" else [*args, "--debug"]
    with pytest.raises(Exception, match="unknown key"):
        run_cli(*args)


def test_failure_during_training_leaves_no_run_directory(tmp_path, run_cli, monkeypatch):
    def broken_plot(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("neuralab.api.plot_curves", broken_plot)
    code, _, _ = run_cli("train", str(write_experiment(tmp_path)), "--out", str(tmp_path / "runs"))
    assert code == 130  # interrupted
    assert list((tmp_path / "runs").iterdir()) == []


def test_not_a_run_directory(tmp_path, run_cli):
    code, _, err = run_cli("evaluate", str(tmp_path))
    assert code == 2
    assert err.startswith(f"error: {tmp_path}: not a run directory")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("ragged.csv", "1,2,3\n4,5\n", "line 2 has 2 values, line 1 has 3"),
        ("words.csv", "a,b\n1,x\n", "line 2 has a non-numeric value"),
        ("objects.npy", None, "cannot read"),
        ("x.txt", "1", "cannot read '.txt' files"),
    ],
)
def test_predict_refuses_bad_inputs(trained, tmp_path, run_cli, name, content, message):
    path = tmp_path / name
    if content is None:
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    else:
        path.write_text(content)
    code, _, err = run_cli("predict", str(trained), str(path))
    assert code == 2
    assert message in err


def test_predict_checks_the_input_shape(trained, tmp_path, run_cli):
    np.save(tmp_path / "bad.npy", np.zeros((3, 10)))
    code, _, err = run_cli("predict", str(trained), str(tmp_path / "bad.npy"))
    assert code == 2
    assert "the model expects (1, 8, 8)" in err


def test_quickstart_prints_a_leaderboard(tmp_path, run_cli, monkeypatch):
    # the package's `compare` is the function; the module is reached through sys.modules
    module = sys.modules["neuralab.compare"]
    fast = module.quickstart_experiment().model_copy(update={"train": TrainConfig(epochs=2)})
    monkeypatch.setattr(module, "quickstart_experiment", lambda: fast)
    monkeypatch.setattr(module, "QUICKSTART_MODELS", ("logreg", "mlp", "cnn"))
    code, out, _ = run_cli("quickstart", "--out", str(tmp_path))
    assert code == 0
    for heading in ("model", "test accuracy", "macro-f1", "params", "train s", "vs leader"):
        assert heading in out
    for family in ("logreg", "mlp", "cnn"):
        assert f"{family}: {tmp_path}" in out
    assert "significance: exact McNemar test" in out
    [folder] = tmp_path.iterdir()
    assert len(list((folder / "runs").iterdir())) == 3


def test_threads_option_anywhere(run_cli):
    import torch

    code, _, _ = run_cli("models", "--threads", "2")
    assert code == 0
    assert torch.get_num_threads() == 2
    code, _, _ = run_cli("--threads=1", "datasets")
    assert code == 0
    assert torch.get_num_threads() == 1
    code, _, err = run_cli("datasets", "--threads", "0")
    assert code == 2
