"""MNIST-style IDX files and CIFAR binary files, written by the tests in the official formats."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from sklearn.datasets import load_digits

import neuralab
from neuralab.data import DataConfig, load_data
from neuralab.data.idx_cifar import (
    CIFAR10Config,
    CIFAR100Config,
    FashionMNISTConfig,
    MNISTConfig,
    read_idx,
)
from neuralab.errors import NeuralabError
from neuralab.run_data import load_run_data

IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, IDX_CODES[array.dtype], array.ndim])
    return header + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_idx(path, array: np.ndarray, *, gz: bool) -> None:
    data = idx_bytes(array)
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)


def write_mnist(folder, *, gz: bool = True) -> None:
    """scikit-learn's digits (8x8, 0-255) as MNIST's four IDX files: 1,297 + 500 test."""
    folder.mkdir(exist_ok=True)
    digits = load_digits()
    images = (digits.images * 255 / 16).astype(np.uint8)
    labels = digits.target.astype(np.uint8)
    parts = {
        "train-images-idx3-ubyte": images[:1297],
        "train-labels-idx1-ubyte": labels[:1297],
        "t10k-images-idx3-ubyte": images[1297:],
        "t10k-labels-idx1-ubyte": labels[1297:],
    }
    for name, array in parts.items():
        write_idx(folder / name, array, gz=gz)


def coloured_images(count: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy 32x32 colour images whose class sets the mean of each channel."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=count)
    means = np.stack([labels * 20 + 30, 230 - labels * 20, (labels % 3) * 80 + 20], axis=1)
    images = means[:, :, None, None] + rng.normal(0, 25, size=(count, 3, 32, 32))
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.uint8)


def cifar_records(images: np.ndarray, *labels: np.ndarray) -> bytes:
    """CIFAR's binary format: per image its label byte(s), then 1,024 bytes per channel."""
    heads = np.stack(labels, axis=1).astype(np.uint8)
    return np.concatenate([heads, images.reshape(len(images), -1)], axis=1).tobytes()


def write_cifar10(folder, per_batch: int = 60) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate([*(f"data_batch_{b}.bin" for b in range(1, 6)), "test_batch.bin"]):
        images, labels = coloured_images(per_batch, 10, seed=i)
        (folder / name).write_bytes(cifar_records(images, labels))


def test_mnist_idx_files_train_an_mlp_and_keep_the_published_split(tmp_path):
    write_mnist(tmp_path / "mnist")
    experiment = {
        "name": "mnist",
        "seed": 0,
        "data": {"dataset": {"name": "mnist", "path": str(tmp_path / "mnist")}},
        "model": {"family": "mlp", "hidden_sizes": [32]},
        "optim": {"name": "adam", "lr": 0.01},
        "train": {"epochs": 3, "batch_size": 64},
    }
    run = neuralab.train(experiment, out=tmp_path / "runs", write_report=False)
    assert run.test_metrics["accuracy"] >= 0.8  # chance is 0.1
    meta = neuralab.load(run.path).meta
    assert meta.sizes["test"] == 500  # the t10k files, not a fraction
    assert meta.input_shape == (1, 8, 8)
    assert meta.label_names == tuple("0123456789")
    # the run fingerprinted the folder: a file changed afterwards is refused by name
    write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte", np.zeros(500, np.uint8), gz=True)
    with pytest.raises(NeuralabError, match=r"mnist: changed since this run was trained"):
        load_run_data(run.path)


@pytest.mark.parametrize("gz", [False, True])
def test_raw_and_gzipped_idx_files_read_the_same(tmp_path, gz):
    write_mnist(tmp_path, gz=gz)
    raw = FashionMNISTConfig(path=tmp_path).load(seed=0)
    assert raw.x.shape == (1297, 1, 8, 8)
    assert raw.x.dtype == np.uint8
    assert raw.x_test is not None
    assert raw.x_test.shape == (500, 1, 8, 8)
    assert raw.y[:5].tolist() == load_digits().target[:5].tolist()
    assert raw.label_names[0] == "T-shirt/top"
    assert raw.label_names[9] == "Ankle boot"


def test_idx_header_gives_type_and_shape(tmp_path):
    array = np.arange(24, dtype=">i4").reshape(2, 3, 4)
    write_idx(tmp_path / "a", array, gz=False)
    assert (read_idx(tmp_path / "a") == array).all()
    floats = np.linspace(0, 1, 6, dtype=">f4").reshape(3, 2)
    write_idx(tmp_path / "b", floats, gz=True)
    assert np.allclose(read_idx(tmp_path / "b.gz"), floats)


def test_a_missing_file_gives_the_download_command(tmp_path):
    with pytest.raises(NeuralabError) as caught:
        MNISTConfig(path=tmp_path).load(seed=0)
    assert str(caught.value) == (
        f"data.dataset.path: {tmp_path}/train-images-idx3-ubyte(.gz) not found "
        f"(download it: neuralab datasets download mnist --to {tmp_path})"
    )
    with pytest.raises(
        NeuralabError, match=r"data_batch_1\.bin not found \(download it: .*cifar10"
    ):
        CIFAR10Config(path=tmp_path).load(seed=0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x08\x00\x08\x01" + b"\x00" * 8, "is not an IDX file"),
        (b"\x00\x00\x08\x03\x00\x00", "is cut short inside its IDX header"),
        (idx_bytes(np.zeros((4, 2, 2), np.uint8))[:-3], r"holds 13 bytes of data, but its header"),
    ],
)
def test_bad_idx_files_are_refused_by_name(tmp_path, content, message):
    (tmp_path / "x").write_bytes(content)
    with pytest.raises(NeuralabError, match=rf"{tmp_path}/x: {message}"):
        read_idx(tmp_path / "x")


def test_a_truncated_gzip_file_is_refused_by_name(tmp_path):
    write_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(NeuralabError, match=r"train-images-idx3-ubyte\.gz: is not a complete gzip"):
        MNISTConfig(path=tmp_path).load(seed=0)


def test_labels_outside_the_classes_are_refused(tmp_path):
    write_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.full(500, 12, np.uint8), gz=True)
    with pytest.raises(NeuralabError, match="holds labels from 12 to 12, not 0 to 9"):
        MNISTConfig(path=tmp_path).load(seed=0)


def test_cifar10_binary_files_train_a_cnn_well_above_chance(tmp_path):
    # the folder the official tarball unpacks to, inside the folder the config names
    write_cifar10(tmp_path / "cifar" / "cifar-10-batches-bin")
    experiment = {
        "name": "cifar",
        "seed": 0,
        "data": {"dataset": {"name": "cifar10", "path": str(tmp_path / "cifar")}},
        "model": {"family": "cnn", "channels": [8]},
        "optim": {"name": "adam", "lr": 0.01},
        "train": {"epochs": 3, "batch_size": 32},
    }
    run = neuralab.train(experiment, out=tmp_path / "runs", write_report=False)
    assert run.test_metrics["accuracy"] >= 0.6  # chance is 0.1
    meta = neuralab.load(run.path).meta
    assert (meta.input_shape, meta.sizes["test"]) == ((3, 32, 32), 60)
    assert meta.label_names[:2] == ("airplane", "automobile")


def test_cifar_records_keep_channel_order(tmp_path):
    images = np.zeros((2, 3, 32, 32), np.uint8)
    images[0, 0], images[1, 2] = 200, 100  # red, then blue
    for name in [*(f"data_batch_{b}.bin" for b in range(1, 6)), "test_batch.bin"]:
        (tmp_path / name).write_bytes(cifar_records(images, np.array([3, 7])))
    raw = CIFAR10Config(path=tmp_path).load(seed=0)
    assert raw.x.shape == (10, 3, 32, 32)
    assert (raw.x[0, 0] == 200).all()
    assert (raw.x[0, 1:] == 0).all()
    assert (raw.x[1, 2] == 100).all()
    assert raw.y[:2].tolist() == [3, 7]


def test_cifar100_reads_fine_or_coarse_labels_and_their_names(tmp_path):
    images = np.zeros((3, 3, 32, 32), np.uint8)
    coarse, fine = np.array([0, 19, 4]), np.array([99, 5, 50])
    for name in ("train.bin", "test.bin"):
        (tmp_path / name).write_bytes(cifar_records(images, coarse, fine))
    raw = CIFAR100Config(path=tmp_path).load(seed=0)
    assert raw.y.tolist() == [99, 5, 50]
    assert raw.label_names == tuple(str(i) for i in range(100))  # no names file
    (tmp_path / "coarse_label_names.txt").write_text("\n".join(f"group{i}" for i in range(20)))
    raw = CIFAR100Config(path=tmp_path, labels="coarse").load(seed=0)
    assert raw.y.tolist() == [0, 19, 4]
    assert raw.label_names[19] == "group19"


def test_a_truncated_cifar_file_is_refused_by_name(tmp_path):
    write_cifar10(tmp_path, per_batch=2)
    path = tmp_path / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(NeuralabError, match=r"data_batch_3\.bin: holds 6145 bytes, not a whole"):
        CIFAR10Config(path=tmp_path).load(seed=0)


def test_the_published_split_is_kept_and_folds_are_refused(tmp_path):
    write_mnist(tmp_path)
    config = DataConfig.model_validate({"dataset": {"name": "mnist", "path": str(tmp_path)}})
    bundle = load_data(config, task=None, seed=0)
    assert bundle.split.test.tolist() == list(range(1297, 1797))
    folds = DataConfig.model_validate(
        {"dataset": {"name": "mnist", "path": str(tmp_path)}, "split": {"folds": 3}}
    )
    with pytest.raises(NeuralabError, match="fixed, published test split"):
        load_data(folds, task=None, seed=0)
