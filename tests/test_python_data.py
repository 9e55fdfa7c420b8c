"""Data straight from Python: `neuralab.train(config, data=(x, y))`, a fixed test split and
a DataFrame train like a file would, and the run folder still stands alone."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import neuralab
from neuralab.data.memory import arrays_to_raw
from neuralab.errors import NeuralabError
from neuralab.run_data import load_run_data

MLP = {
    "model": {"family": "mlp", "hidden_sizes": [16]},
    "train": {"epochs": 10, "batch_size": 32},
    "optim": {"lr": 0.01},
}


def two_classes(count=240, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count, 4))
    return x, (x[:, 0] + x[:, 1] > 0).astype(int)


def train(tmp_path, config=MLP, **data):
    return neuralab.train(config, out=tmp_path / "runs", write_report=False, **data)


def test_arrays_train_and_the_moved_run_folder_evaluates_and_predicts(tmp_path, run_cli):
    x, y = two_classes()
    run = train(tmp_path, data=(x, y))
    assert run.test_metrics["accuracy"] > 0.8
    assert (run.path / "config.yaml").read_text().count("path: data.npz") == 1
    moved = tmp_path / "elsewhere" / "run"
    moved.parent.mkdir()
    shutil.move(run.path, moved)
    assert neuralab.evaluate_run(moved) == pytest.approx(run.test_metrics)
    np.save(tmp_path / "new.npy", x[:5])
    code, out, err = run_cli("predict", str(moved), str(tmp_path / "new.npy"))
    assert code == 0, err
    assert len(out.splitlines()) == 6  # a header and 5 predictions
    code, _, err = run_cli("report", str(moved))
    assert code == 0, err


def test_changed_samples_in_the_run_folder_are_refused(tmp_path):
    x, y = two_classes()
    run = train(tmp_path, data=(x, y))
    np.savez(run.path / "data.npz", x=x[::-1], y=y[::-1])
    with pytest.raises(NeuralabError, match="changed since this run was trained"):
        neuralab.evaluate_run(run.path)


def test_a_given_test_split_is_the_test_split(tmp_path):
    x, y = two_classes(300)
    run = train(tmp_path, data=(x[:200], y[:200]), test=(x[200:], y[200:]))
    bundle, _ = load_run_data(run.path)
    assert bundle.meta.sizes["test"] == 100
    assert bundle.meta.sizes["train"] + bundle.meta.sizes["val"] == 200
    raw_test = bundle.x_test.numpy() * bundle.meta.x_std + bundle.meta.x_mean
    np.testing.assert_allclose(raw_test, x[200:], atol=1e-5)


def test_an_experiment_object_and_a_yaml_file_take_data_too(tmp_path):
    x, y = two_classes()
    spec = tmp_path / "mlp.yaml"
    spec.write_text("model: {family: mlp, hidden_sizes: [8]}\ntrain: {epochs: 2, batch_size: 32}\n")
    assert train(tmp_path, spec, data=(x, y)).card.data.dataset == "python"
    experiment = neuralab.load_config({**MLP, "data": {"dataset": "moons"}})
    run = train(tmp_path, experiment, data=(x, y))
    assert tuple(run.card.data.input_shape) == (4,)  # the arrays, not moons' 2 features


@pytest.mark.parametrize(
    ("shape", "layout", "kind", "sample_shape"),
    [
        ((6, 5), "auto", "tabular", (5,)),
        ((6, 2, 30), "auto", "sequence", (2, 30)),
        ((6, 3, 8, 8), "auto", "image", (3, 8, 8)),
        ((6, 8, 8, 3), "auto", "image", (3, 8, 8)),
        ((6, 28, 28), "NHW", "image", (1, 28, 28)),
        ((6, 28, 28), "NCL", "sequence", (28, 28)),
    ],
)
def test_the_kind_of_samples_comes_from_their_shape(shape, layout, kind, sample_shape):
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    raw = arrays_to_raw({"x": x, "y": np.arange(6.0)}, layout=layout, task=None)
    assert (raw.kind, raw.x.shape[1:]) == (kind, sample_shape)
    if shape == (6, 8, 8, 3):  # channels last -> channels first
        assert raw.x[0, 2, 1, 0] == x[0, 1, 0, 2]


def test_an_ambiguous_shape_asks_for_a_layout():
    x = np.zeros((6, 28, 28), dtype=np.float32)
    with pytest.raises(NeuralabError, match=r"layout: .*NHW \(grey images\)"):
        arrays_to_raw({"x": x, "y": np.zeros(6)}, layout="auto", task=None)


def test_target_types_decide_the_task_unless_it_is_stated():
    x = np.zeros((4, 2), dtype=np.float32)
    words = arrays_to_raw(
        {"x": x, "y": np.array(["cat", "dog", "cat", "ant"])}, layout="auto", task=None
    )
    assert (words.task, words.label_names, words.y.tolist()) == (
        "classification",
        ("ant", "cat", "dog"),
        [1, 2, 1, 0],
    )
    numbers = arrays_to_raw({"x": x, "y": np.array([0.5, 1, 2, 3])}, layout="auto", task=None)
    assert (numbers.task, numbers.y.shape) == ("regression", (4, 1))
    stated = arrays_to_raw({"x": x, "y": np.array([1, 2, 3, 4])}, layout="auto", task="regression")
    assert stated.task == "regression"


def test_the_label_names_cover_the_test_split(tmp_path):
    x, y = two_classes(200)
    labels = np.where(y == 1, "yes", "no").tolist()  # a list of str: saved without pickle
    run = train(tmp_path, data=(x[:150], labels[:150]), test=(x[150:], labels[150:]))
    assert tuple(run.card.data.label_names) == ("no", "yes")


@pytest.mark.parametrize(
    ("data", "test", "config", "message"),
    [
        ((np.zeros((5, 2)), np.zeros(4)), None, MLP, r"data: inputs of shape \(5, 2\) and targets"),
        ((np.zeros((5, 2)), np.zeros(5)), (np.zeros((3, 4)), np.zeros(3)), MLP, "test: samples"),
        ([np.zeros((5, 2))], None, MLP, r"data: expected a pair \(inputs, targets\)"),
        (
            (np.zeros((5, 2)), np.zeros(5)),
            None,
            {**MLP, "data": {"dataset": "digits"}},
            "data.dataset: is set, but data= hands over the samples",
        ),
        ((np.array([[1.0, np.nan]] * 20), np.zeros(20)), None, MLP, r"x: samples 0, 1, 2"),
    ],
)
def test_bad_python_data_is_an_error_and_writes_nothing(tmp_path, data, test, config, message):
    with pytest.raises(NeuralabError, match=message):
        train(tmp_path, config, data=data, test=test)
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir())


def test_a_dataframe_trains_like_a_csv_file(tmp_path, run_cli):
    pandas = pytest.importorskip("pandas")
    x, y = two_classes()
    frame = pandas.DataFrame(
        {"a": x[:, 0], "b": x[:, 1], "colour": np.where(x[:, 2] > 0, "red", "blue"), "label": y}
    )
    with pytest.raises(NeuralabError, match="a DataFrame needs the name of the column"):
        train(tmp_path, data=frame)
    run = train(tmp_path, data=frame, target="label")
    assert run.test_metrics["accuracy"] > 0.8
    assert [f.name for f in run.card.data.features] == ["a", "b", "colour"]
    assert (run.path / "data.csv").is_file()
    frame.drop(columns="label").head(4)[["colour", "b", "a"]].to_csv(tmp_path / "new.csv")
    code, out, err = run_cli("predict", str(run.path), str(tmp_path / "new.csv"))
    assert code == 0, err
    assert len(out.splitlines()) == 5
    config = {**MLP, "data": {"dataset": {"target": "label"}}}
    assert train(tmp_path, config, data=frame).card.data.dataset == "python"


def test_grey_images_train_a_cnn_with_their_layout_given(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    config = {
        "data": {"dataset": {"layout": "NHW"}},
        "model": {"family": "cnn", "channels": [8]},
        "train": {"epochs": 8, "batch_size": 32},
        "optim": {"lr": 0.01},
    }
    run = train(tmp_path, config, data=(digits.images[:400], digits.target[:400]))
    assert tuple(run.card.data.input_shape) == (1, 8, 8)
    assert run.test_metrics["accuracy"] > 0.8
