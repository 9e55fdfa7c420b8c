"""`family: module`: the user's own network from a .py file trains, travels in the run
folder's code/, and is only executed again by a caller who trusts it."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient
from safetensors.torch import load_file
from sklearn.datasets import load_digits

import neuralab
from neuralab.api import resume
from neuralab.config import load_config
from neuralab.errors import NeuralabError
from neuralab.export import export
from neuralab.runs import Predictor
from neuralab.serve import ServeSettings, create_app
from neuralab.serve.store import ModelStore
from tests.train.test_resume import InterruptAt, partial_of

SOURCE = """
import math

from torch import nn


class Net(nn.Module):
    def __init__(self, input_shape, num_outputs, hidden=64):
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(input_shape), hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_outputs),
        )

    def forward(self, x):
        return self.body(x)


class ThreeOutputs(Net):
    def __init__(self, input_shape, num_outputs):
        super().__init__(input_shape, 3)


class NotANetwork:
    pass
"""
# 1,257 training digits in batches of 64: 20 steps an epoch; checkpoints every 10 steps
# let an interrupted run resume mid-epoch.
EXPERIMENT = {
    "name": "own",
    "seed": 0,
    "data": {"dataset": "digits"},
    "model": {"family": "module", "path": "net.py:Net", "args": {"hidden": 64}},
    "optim": {"lr": 0.003},
    "train": {"epochs": 8, "batch_size": 64, "checkpoint_every": 10},
}
TRUST_HINT = "pass --trust-code, or trust_code=True in Python, if you trust its source"


def write_project(folder):
    """net.py and experiment.yaml side by side, as a user keeps them."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "net.py").write_text(SOURCE)
    (folder / "experiment.yaml").write_text(yaml.safe_dump(EXPERIMENT))
    return folder / "experiment.yaml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run trained from a project folder whose net.py was deleted afterwards, and 20
    test digits to predict (the last 20 of the set) with their labels."""
    experiment = write_project(tmp_path_factory.mktemp("project"))
    run = neuralab.train(experiment, out=tmp_path_factory.mktemp("runs"), write_report=False)
    (experiment.parent / "net.py").unlink()
    digits = load_digits()
    x_path = tmp_path_factory.mktemp("inputs") / "x.npy"
    np.save(x_path, digits.images[-20:].reshape(20, 1, 8, 8).astype(np.float32))
    return {"run": run, "x": x_path, "labels": [str(y) for y in digits.target[-20:]]}


def test_trains_on_digits_from_a_file_beside_the_experiment(trained):
    run = trained["run"]
    assert run.test_metrics["accuracy"] >= 0.95
    assert run.card.model["path"] == "code/net.py:Net"  # the run's copy, not the original
    assert (run.path / "code" / "net.py").read_text() == SOURCE
    config = yaml.safe_load((run.path / "config.yaml").read_text())
    assert config["model"]["path"].endswith("/net.py:Net")  # resolved beside the experiment


def test_predict_from_the_run_folder_after_the_file_is_deleted(trained, run_cli):
    run = trained["run"]
    code, out, err = run_cli("predict", str(run.path), str(trained["x"]), "--trust-code")
    assert (code, err) == (0, "")
    rows = out.splitlines()
    assert rows[0].startswith("prediction,p_0,")
    predicted = [row.split(",")[0] for row in rows[1:]]
    assert np.mean(np.equal(predicted, trained["labels"])) >= 0.9
    again = neuralab.load(run.path, trust_code=True).predict(np.load(trained["x"]))
    assert predicted == again.labels


def test_predict_without_trust_code_exits_2_saying_why(trained, run_cli):
    run = trained["run"]
    code, out, err = run_cli("predict", str(run.path), str(trained["x"]))
    assert (code, out) == (2, "")
    assert err == (
        f"error: {run.path}: this run carries code (code/net.py) that loading would "
        f"execute ({TRUST_HINT})\n"
    )


@pytest.mark.parametrize(
    "verb",
    [
        ["evaluate"],
        ["report"],
        ["calibrate"],
        ["export", "--format", "torchscript"],
        ["explain", "X"],
        ["explain", "--global"],
        ["generate"],
    ],
    ids=" ".join,
)
def test_every_verb_that_loads_the_run_refuses_it_without_trust_code(trained, run_cli, verb):
    verb = [str(trained["x"]) if arg == "X" else arg for arg in verb]
    code, _, err = run_cli(verb[0], str(trained["run"].path), *verb[1:])
    assert code == 2
    assert "this run carries code (code/net.py) that loading would execute" in err


def test_load_refuses_without_trust_code(trained):
    with pytest.raises(NeuralabError, match=r"carries code \(code/net\.py\)"):
        neuralab.load(trained["run"].path)
    with pytest.raises(NeuralabError, match="trust_code=True"):
        Predictor.load(trained["run"].path)


def test_the_refusal_comes_before_the_code_runs(trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained["run"].path, run)
    (run / "code" / "net.py").write_text("raise RuntimeError('executed')\n")
    with pytest.raises(NeuralabError, match="carries code"):
        neuralab.load(run)
    with pytest.raises(NeuralabError, match="RuntimeError: executed"):
        neuralab.load(run, trust_code=True)  # trusted: it runs, and says what it raised


def test_evaluate_with_trust_code_rebuilds_the_same_network(trained, run_cli):
    run = trained["run"]
    code, out, _ = run_cli("evaluate", str(run.path), "--json", "--trust-code")
    assert code == 0
    assert yaml.safe_load(out) == pytest.approx(run.test_metrics)


def test_serve_loads_the_run_only_with_trust_code(trained):
    run = trained["run"]
    name, images = run.path.name, np.load(trained["x"])[:2].tolist()
    with pytest.raises(NeuralabError, match="carries code"):
        ModelStore(run.path.parent).model(name)
    refused = TestClient(create_app(ServeSettings(runs_dir=run.path.parent)))
    response = refused.post(f"/v1/models/{name}/predict", json={"inputs": images})
    assert response.status_code == 422
    assert "--trust-code" in response.json()["error"]["hint"]
    trusted = TestClient(create_app(ServeSettings(runs_dir=run.path.parent, trust_code=True)))
    response = trusted.post(f"/v1/models/{name}/predict", json={"inputs": images})
    assert response.status_code == 200
    assert [row["label"] for row in response.json()["predictions"]] == trained["labels"][:2]


def test_export_traces_the_network_only_with_trust_code(trained):
    with pytest.raises(NeuralabError, match="carries code"):
        export(trained["run"].path, "torchscript")
    exported = export(trained["run"].path, "torchscript", trust_code=True)
    assert exported.path.is_file()
    assert exported.max_abs_difference <= 1e-4


def test_resume_reads_the_run_copy_and_needs_trust_code(trained, tmp_path):
    experiment = write_project(tmp_path / "project")
    with pytest.raises(NeuralabError, match="interrupted"):
        neuralab.train(experiment, out=tmp_path / "runs", callbacks=[InterruptAt(30)])
    (experiment.parent / "net.py").unlink()  # resume must not need the original
    partial = partial_of(tmp_path / "runs")
    with pytest.raises(NeuralabError, match="carries code"):
        resume(partial)
    run = resume(partial, trust_code=True)
    resumed = load_file(str(run.path / "model.safetensors"))
    reference = load_file(str(trained["run"].path / "model.safetensors"))
    assert resumed.keys() == reference.keys()
    for key, tensor in reference.items():  # the same weights as the uninterrupted run
        assert bool((resumed[key] == tensor).all()), key
    assert run.card.model["path"] == "code/net.py:Net"


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            {"path": "missing.py:Net"},
            r"file not found: /\S+/missing\.py \(a relative path is read from",
        ),
        ({"path": "net.py:Nett"}, r"no class 'Nett' in \S+/net\.py \(did you mean 'Net'\?"),
        (
            {"path": "net.py:NotANetwork"},
            r"'NotANetwork' in \S+/net\.py is not a torch\.nn\.Module",
        ),
        ({"path": "net.py:Net", "args": {"width": 3}}, r"Net\(\(1, 8, 8\), 10, width=3\) raised"),
        ({"path": "net.py:ThreeOutputs"}, r"gives \(2, 3\) for a batch of 2, expected \(2, 10\)"),
        ({"path": "broken.py:Net"}, r"importing \S+/broken\.py raised SyntaxError"),
    ],
)
def test_a_bad_network_fails_naming_model_path_before_any_file(
    tmp_path, monkeypatch, model, message
):
    monkeypatch.chdir(tmp_path)  # a dict experiment reads relative paths from here
    (tmp_path / "net.py").write_text(SOURCE)
    (tmp_path / "broken.py").write_text("class Net(:\n")
    experiment = {**EXPERIMENT, "model": {"family": "module", **model}}
    with pytest.raises(NeuralabError, match=message) as raised:
        neuralab.train(experiment, out=tmp_path / "runs")
    assert raised.value.problems[0].where == "model.path"
    assert not (tmp_path / "runs").exists()  # nothing written


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"path": "net:Net"}, r"model\.path: 'net:Net' is not 'file\.py:ClassName'"),
        ({"path": "net.py"}, r"model\.path: 'net\.py' is not 'file\.py:ClassName'"),
        (
            {"path": "net.py:Net", "args": {"num_outputs": 3}},
            r"model\.args: num_outputs come from the data",
        ),
        (
            {"path": "net.py:Net", "args": {"sizes": {"a": 1}}},
            r"model\.args: sizes: an argument is a number, string, boolean, null, or a list",
        ),
    ],
)
def test_config_checks_the_path_and_args(model, message):
    with pytest.raises(NeuralabError, match=message):
        load_config({**EXPERIMENT, "model": {"family": "module", **model}})
