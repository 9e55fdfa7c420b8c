"""NumPy array files: kinds from shapes, layouts, targets, a fixed test split, and bad files."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_digits

import neuralab
from neuralab.config import load_config
from neuralab.data import DataConfig, load_data
from neuralab.data import arrays as arrays_module
from neuralab.data.arrays import ArraysConfig
from neuralab.errors import NeuralabError
from neuralab.run_data import load_run_data


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as (N, 8, 8) float32 images and int64 labels."""
    data = load_digits()
    return data.images.astype(np.float32), data.target.astype(np.int64)


def npz(tmp_path, name="data.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def load(**config) -> neuralab.data.RawData:
    return ArraysConfig(**config).load(seed=0)


def test_npz_of_images_trains_a_cnn_well_above_chance(tmp_path):
    images, labels = digits()
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )
    path = npz(tmp_path, x=images[:, None], y=labels, labels=names)
    experiment = {
        "name": "arrays",
        "seed": 0,
        "data": {"dataset": {"arrays": str(path)}},
        "model": {"family": "cnn", "channels": [8]},
        "optim": {"name": "adam", "lr": 0.01},
        "train": {"epochs": 3, "batch_size": 64},
    }
    run = neuralab.train(experiment, out=tmp_path / "runs", write_report=False)
    assert run.test_metrics["accuracy"] >= 0.8  # chance is 0.1
    assert neuralab.load(run.path).meta.label_names == tuple(names)


def test_npy_pair_from_yaml_reads_relative_paths_and_trains_an_mlp(tmp_path):
    images, labels = digits()
    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data" / "x.npy", images.reshape(len(images), -1))
    np.save(tmp_path / "data" / "y.npy", labels)
    experiment = {
        "name": "npy",
        "data": {"dataset": {"x": "data/x.npy", "y": "data/y.npy"}},
        "model": {"family": "mlp", "hidden_sizes": [32]},
        "optim": {"name": "adam", "lr": 0.01},
        "train": {"epochs": 3, "batch_size": 64},
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment))
    assert load_config(path).data.dataset.x == tmp_path / "data" / "x.npy"
    run = neuralab.train(path, out=tmp_path / "runs", write_report=False)
    assert run.test_metrics["accuracy"] >= 0.8  # chance is 0.1
    assert load_run_data(run.path)[0].meta.kind == "tabular"
    # the run fingerprinted both files: a changed one is refused by name
    np.save(tmp_path / "data" / "y.npy", labels[::-1].copy())
    with pytest.raises(NeuralabError, match=r"y\.npy: changed since this run was trained"):
        load_run_data(run.path)


def test_fixed_test_split_is_kept(tmp_path):
    images, labels = digits()
    path = npz(
        tmp_path, x=images[:1000, None], y=labels[:1000], x_test=images[1000:, None],
        y_test=labels[1000:],
    )  # fmt: skip
    config = DataConfig.model_validate({"dataset": {"name": "arrays", "path": str(path)}})
    bundle = load_data(config, task=None, seed=0)
    assert bundle.meta.sizes == {"train": 900, "val": 100, "test": 797}
    assert bundle.split.test.tolist() == list(range(1000, 1797))


@pytest.mark.parametrize(
    ("shape", "layout", "kind", "stored"),
    [
        ((6, 5), "auto", "tabular", (5,)),
        ((6, 3, 4, 5), "auto", "image", (3, 4, 5)),
        ((6, 6, 5, 3), "auto", "image", (3, 6, 5)),
        ((6, 4, 5), "NHW", "image", (1, 4, 5)),
        ((6, 4, 5), "NCL", "sequence", (4, 5)),
        ((6, 3, 3, 3), "NHWC", "image", (3, 3, 3)),
    ],
)
def test_kind_and_layout_come_from_the_shape(tmp_path, shape, layout, kind, stored):
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    raw = load(path=npz(tmp_path, x=x, y=np.arange(6) % 2), layout=layout)
    assert (raw.kind, raw.x.shape[1:]) == (kind, stored)


def test_channels_last_images_are_transposed_not_reshaped(tmp_path):
    x = np.zeros((2, 6, 5, 3), dtype=np.float32)
    x[..., 2] = 7.0  # the blue channel
    raw = load(path=npz(tmp_path, x=x, y=np.array([0, 1])))
    assert (raw.x[:, 2] == 7.0).all()
    assert (raw.x[:, :2] == 0.0).all()


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        (
            (6, 4, 5),
            r"data\.dataset\.layout: .* \(set layout: NHW \(images\) or NCL \(sequences\)\)",
        ),
        ((6, 3, 3, 3), r"data\.dataset\.layout: .* \(set layout: NCHW or NHWC\)"),
        ((6, 8, 8, 8), r"data\.dataset\.layout: .* \(set layout: NCHW or NHWC\)"),
        ((6,), r"data\.dataset\.path: x has shape \(6,\) \(expected"),
    ],
)
def test_ambiguous_or_odd_shapes_are_refused_with_the_choices(tmp_path, shape, message):
    x = np.zeros(shape, dtype=np.float32)
    with pytest.raises(NeuralabError, match=message):
        load(path=npz(tmp_path, x=x, y=np.arange(6) % 2))


def test_a_layout_that_does_not_fit_the_shape_is_refused(tmp_path):
    path = npz(tmp_path, x=np.zeros((6, 4, 5), dtype=np.float32), y=np.arange(6) % 2)
    with pytest.raises(
        NeuralabError, match=r"'NCHW' means 4-D x, .* \(layouts for 3-D x: NHW, NCL\)"
    ):
        load(path=path, layout="NCHW")


def test_float_targets_are_regression_and_text_targets_classes(tmp_path):
    x = np.zeros((4, 2), dtype=np.float32)
    raw = load(path=npz(tmp_path, x=x, y=np.array([0.5, 1.5, 2.0, 3.0])))
    assert (raw.task, raw.y.shape, raw.label_names) == ("regression", (4, 1), ())
    raw = load(path=npz(tmp_path, x=x, y=np.array(["dog", "cat", "dog", "emu"])))
    assert raw.task == "classification"
    assert raw.label_names == ("cat", "dog", "emu")
    assert raw.y.tolist() == [1, 0, 1, 2]


def test_integer_classes_are_named_by_number_or_by_the_labels_array(tmp_path):
    x = np.zeros((4, 2), dtype=np.float32)
    assert load(path=npz(tmp_path, x=x, y=np.array([0, 2, 1, 2]))).label_names == ("0", "1", "2")
    short = npz(tmp_path, x=x, y=np.array([0, 2, 1, 2]), labels=np.array(["a", "b"]))
    with pytest.raises(NeuralabError, match="labels names 2 classes, but y holds class 2"):
        load(path=short)
    named = npz(tmp_path, x=x, y=np.array(["a", "b", "a", "b"]), labels=np.array(["a", "b"]))
    with pytest.raises(NeuralabError, match="but y holds names already"):
        load(path=named)
    floats = npz(tmp_path, x=x, y=np.array([0.5, 1.0, 2.0, 3.0]), labels=np.array(["a", "b"]))
    with pytest.raises(NeuralabError, match=r"but y holds floats \(regression\)"):
        load(path=floats)
    bad = npz(tmp_path, x=x, y=np.array([0, 1, 1, 0]), labels=np.array([[1, 2]]))
    with pytest.raises(NeuralabError, match="labels must be a 1-D array of text"):
        load(path=bad)


def test_object_arrays_are_refused_without_unpickling(tmp_path):
    x = np.empty(3, dtype=object)
    x[:] = [[1.0], [2.0, 3.0], None]
    path = npz(tmp_path, x=x, y=np.arange(3))
    with pytest.raises(NeuralabError, match="holds object arrays, which only a pickle can load"):
        load(path=path)
    np.save(tmp_path / "x.npy", x, allow_pickle=True)
    np.save(tmp_path / "y.npy", np.arange(3))
    with pytest.raises(NeuralabError, match=r"data\.dataset\.x: x\.npy holds object arrays"):
        load(x=tmp_path / "x.npy", y=tmp_path / "y.npy")


def test_large_npy_files_are_memory_mapped(tmp_path, monkeypatch):
    np.save(tmp_path / "x.npy", np.ones((6, 3), dtype=np.float32))
    np.save(tmp_path / "y.npy", np.arange(6) % 2)
    assert not isinstance(load(x=tmp_path / "x.npy", y=tmp_path / "y.npy").x, np.memmap)
    monkeypatch.setattr(arrays_module, "MMAP_BYTES", 0)
    assert isinstance(load(x=tmp_path / "x.npy", y=tmp_path / "y.npy").x, np.memmap)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"X": np.zeros((4, 2)), "y": np.arange(4)}, r"holds array\(s\) X this source does not"),
        ({"x": np.zeros((4, 2))}, r"data\.npz has no array 'y' \(arrays: x\)"),
        ({"x": np.zeros((4, 2)), "y": np.arange(3)}, r"x has shape \(4, 2\) and y shape \(3,\)"),
        ({"x": np.full((4, 2), np.nan), "y": np.arange(4)}, r"NaN or infinite values \(first in"),
        ({"x": np.zeros((4, 2)), "y": np.arange(4), "x_test": np.zeros((2, 2))}, "only one of"),
        ({"x": np.zeros((4, 2)), "y": np.array([0, -1, 1, 0])}, "must be 0 or more, found -1"),
        (
            {
                "x": np.zeros((4, 2)),
                "y": np.arange(4),
                "x_test": np.zeros((2, 3)),
                "y_test": [0, 1],
            },
            r"x_test has samples of shape \(3,\), x of shape \(2,\)",
        ),
    ],
)
def test_bad_npz_files_are_refused_by_name(tmp_path, arrays, message):
    with pytest.raises(NeuralabError, match=message):
        load(path=npz(tmp_path, **arrays))


def test_missing_file_and_wrong_suffix(tmp_path):
    with pytest.raises(NeuralabError, match=r"data\.dataset\.path: file not found: .*none\.npz"):
        load(path=tmp_path / "none.npz")
    np.save(tmp_path / "x.npy", np.zeros((4, 2)))
    with pytest.raises(NeuralabError, match=r"x\.npy is not a \.npz file \(use x: and y: for"):
        load(path=tmp_path / "x.npy")


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        ({"name": "arrays"}, "needs path"),
        ({"name": "arrays", "path": "a.npz", "x": "x.npy"}, "not both"),
        ({"x": "x.npy"}, "needs path"),
        ({"x": "x.npy", "y": "y.npy", "x_test": "t.npy"}, "x_test and y_test come together"),
        ({"arrays": "a.npz", "layout": "hwc"}, "layout"),
    ],
)
def test_config_problems_are_found_before_loading(dataset, message):
    with pytest.raises(NeuralabError, match=message):
        load_config({"name": "a", "data": {"dataset": dataset}, "model": {"family": "mlp"}})
