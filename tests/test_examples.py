"""Every shipped example validates, and the headline examples learn what they promise."""

from __future__ import annotations

import subprocess
import sys

import pytest

import neuralab
from neuralab.config import load_config
from neuralab.errors import NeuralabError
from tests.conftest import EXAMPLES
from tests.data.test_idx_cifar import write_mnist

ALL = sorted(EXAMPLES.rglob("*.yaml"))


def test_examples_exist():
    names = {path.name for path in ALL}
    assert {
        "digits-mlp.yaml",
        "digits-cnn.yaml",
        "mnist1d-cnn.yaml",
        "csv-regression.yaml",
        "mnist-mlp.yaml",
        "mnist-cnn.yaml",
    } <= names


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_example_validates_and_opens_with_a_comment(path):
    load_config(path)
    first = path.read_text().splitlines()[0]
    assert first.startswith("# ")
    text = path.read_text()
    run = "neuralab compare" if path.name.startswith("ablation-") else "neuralab train"
    assert f"{run} examples/{path.relative_to(EXAMPLES).as_posix()}" in text
    assert path.name.startswith("ablation-") == ("--vary" in text)


def test_digits_cnn_example_reaches_097(tmp_path):
    run = neuralab.train(EXAMPLES / "digits-cnn.yaml", out=tmp_path)
    assert run.test_metrics["accuracy"] >= 0.97


@pytest.mark.slow  # ~10 s with one thread
def test_digits_resnet_example_reaches_097(tmp_path):
    run = neuralab.train(EXAMPLES / "digits-resnet.yaml", out=tmp_path)
    assert run.test_metrics["accuracy"] >= 0.97


@pytest.mark.slow  # ~18 s with one thread
def test_adding_lstm_example_solves_the_adding_problem(tmp_path):
    run = neuralab.train(EXAMPLES / "adding-lstm.yaml", out=tmp_path)
    assert run.test_metrics["r2"] >= 0.9


@pytest.mark.slow  # ~6 s with one thread
def test_own_module_example_reaches_097(tmp_path):
    run = neuralab.train(EXAMPLES / "own_module" / "digits-own-module.yaml", out=tmp_path)
    assert run.test_metrics["accuracy"] >= 0.97
    assert (run.path / "code" / "net.py").is_file()


def test_csv_regression_example_reaches_r2_09(tmp_path):
    run = neuralab.train(EXAMPLES / "csv-regression.yaml", out=tmp_path)
    assert run.test_metrics["r2"] >= 0.9


def test_sine_forecast_reaches_r2_09(tmp_path):
    run = neuralab.train(EXAMPLES / "sine-mlp.yaml", out=tmp_path)
    assert run.test_metrics["r2"] >= 0.9


def test_shipped_csv_is_what_the_script_writes(tmp_path):
    script = EXAMPLES / "data" / "make_houses.py"
    shipped = (EXAMPLES / "data" / "houses.csv").read_text()
    copy = tmp_path / "make_houses.py"
    copy.write_text(script.read_text())
    subprocess.run([sys.executable, str(copy)], check=True, capture_output=True)
    assert (tmp_path / "houses.csv").read_text() == shipped


def test_activation_ablation_warns_of_vanishing_gradients_for_sigmoid_only(tmp_path):
    import warnings

    from neuralab.train.diagnostics import TrainingWarning

    path = EXAMPLES / "ablation-activations.yaml"
    with pytest.warns(TrainingWarning, match="gradients vanish"):
        neuralab.train(path, overrides=["train.epochs=2"], out=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        neuralab.train(path, overrides=["train.epochs=2", "model.activation=relu"], out=tmp_path)
    assert not [w for w in caught if "gradients vanish" in str(w.message)]


MNIST_EXAMPLES = ["mnist-mlp.yaml", "mnist-cnn.yaml"]


@pytest.mark.skipif((EXAMPLES / "data" / "mnist").exists(), reason="the MNIST files are there")
@pytest.mark.parametrize("name", MNIST_EXAMPLES)
def test_mnist_example_without_its_files_gives_the_download_command(tmp_path, name):
    with pytest.raises(NeuralabError) as caught:
        neuralab.train(EXAMPLES / name, out=tmp_path / "runs")
    folder = (EXAMPLES / "data" / "mnist").resolve()
    assert str(caught.value).endswith(
        f"(download it: neuralab datasets download mnist --to {folder})"
    )
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("name", MNIST_EXAMPLES)
def test_mnist_example_trains_on_files_in_the_official_format(tmp_path, name):
    write_mnist(tmp_path / "mnist")  # scikit-learn's 8x8 digits as IDX files
    overrides = [f"data.dataset.path={tmp_path / 'mnist'}"]
    run = neuralab.train(EXAMPLES / name, overrides=overrides, out=tmp_path, write_report=False)
    assert run.test_metrics["accuracy"] >= 0.85  # chance is 0.1
