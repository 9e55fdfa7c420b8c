"""MNIST and Fashion-MNIST from their IDX files, CIFAR-10 and CIFAR-100 from their binary version.

Each reads a folder (`dataset: {name: mnist, path: DIR}`) that `neuralab datasets download`
fills, and keeps the published train/test split as `RawData.x_test`/`y_test`. IDX files are
parsed by their header (magic number, element type, dimensions), raw or gzipped; CIFAR's
binary records are a label byte (two for CIFAR-100: coarse, fine) and 3,072 pixel bytes,
channel by channel. The pickled "python version" of CIFAR is never read: unpickling a
downloaded file can run any code.

`files()` is the folder: a run fingerprints every file in it (neuralab/run_data.py), so a
changed, added or removed file is refused by name afterwards.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from neuralab.data.bundle import RawData
from neuralab.data.source import DataSource
from neuralab.errors import NeuralabError

# The IDX element types, by the third byte of the magic number (all big-endian).
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# (train images, train labels, test images, test labels): the same names for both sets.
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
DIGIT_NAMES = tuple(str(digit) for digit in range(10))
FASHION_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CIFAR10_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR_PIXELS = 3 * 32 * 32
# The folders the official binary tarballs unpack to; `path` may name them or their parent.
CIFAR10_FOLDER = "cifar-10-batches-bin"
CIFAR100_FOLDER = "cifar-100-binary"


class MNISTConfig(DataSource):
    """MNIST digits from the IDX files in `path`: 60,000 + 10,000 test 28x28 grey images."""

    name: Literal["mnist"] = "mnist"
    path_keys: ClassVar[tuple[str, ...]] = ("path",)
    path: Path

    def load(self, seed: int) -> RawData:
        del seed  # the files are fixed
        return _idx_set(self.path, self.name, DIGIT_NAMES)


class FashionMNISTConfig(DataSource):
    """Fashion-MNIST from the IDX files in `path`: 60,000 + 10,000 test 28x28 clothing images."""

    name: Literal["fashion_mnist"] = "fashion_mnist"
    path_keys: ClassVar[tuple[str, ...]] = ("path",)
    path: Path

    def load(self, seed: int) -> RawData:
        del seed
        return _idx_set(self.path, self.name, FASHION_NAMES)


class CIFAR10Config(DataSource):
    """CIFAR-10's binary files in `path`: 50,000 + 10,000 test 32x32 colour images, 10 classes."""

    name: Literal["cifar10"] = "cifar10"
    path_keys: ClassVar[tuple[str, ...]] = ("path",)
    path: Path

    def load(self, seed: int) -> RawData:
        del seed
        folder = _cifar_folder(self.path, CIFAR10_FOLDER)
        batches = [f"data_batch_{i}.bin" for i in range(1, 6)]
        layout = {"label_bytes": 1, "label_index": 0, "label_count": 10}
        x, y = _cifar_records(folder, batches, self.name, **layout)
        x_test, y_test = _cifar_records(folder, ["test_batch.bin"], self.name, **layout)
        return RawData(
            x, y, kind="image", task="classification", label_names=CIFAR10_NAMES,
            x_test=x_test, y_test=y_test,
        )  # fmt: skip


class CIFAR100Config(DataSource):
    """CIFAR-100's binary files in `path`: 50,000 + 10,000 test 32x32 colour images."""

    name: Literal["cifar100"] = "cifar100"
    path_keys: ClassVar[tuple[str, ...]] = ("path",)
    path: Path
    labels: Literal["fine", "coarse"] = "fine"  # 100 classes, or their 20 superclasses

    def load(self, seed: int) -> RawData:
        del seed
        folder = _cifar_folder(self.path, CIFAR100_FOLDER)
        count = 100 if self.labels == "fine" else 20
        # each record starts with its coarse label, then its fine one
        layout = {"label_bytes": 2, "label_index": int(self.labels == "fine"), "label_count": count}
        x, y = _cifar_records(folder, ["train.bin"], self.name, **layout)
        x_test, y_test = _cifar_records(folder, ["test.bin"], self.name, **layout)
        names = _names_file(folder / f"{self.labels}_label_names.txt", count)
        return RawData(
            x, y, kind="image", task="classification", label_names=names,
            x_test=x_test, y_test=y_test,
        )  # fmt: skip


def _not_found(folder: Path, file: str, dataset: str) -> NeuralabError:
    return NeuralabError(
        "data.dataset.path",
        f"{folder / file} not found",
        f"download it: neuralab datasets download {dataset} --to {folder}",
    )


def _idx_set(folder: Path, dataset: str, label_names: tuple[str, ...]) -> RawData:
    """The four IDX files of MNIST or Fashion-MNIST: images (N, 1, 28, 28) as uint8."""
    x, y, x_test, y_test = (_find_idx(folder, stem, dataset) for stem in MNIST_FILES)
    for images, labels, part in ((x, y, "train"), (x_test, y_test, "test")):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise NeuralabError(
                "data.dataset.path",
                f"the {part} images have shape {images.shape} and labels {labels.shape}",
                "expected (N, H, W) images and N labels",
            )
    return RawData(
        x[:, None], _labels(y, len(label_names), folder), kind="image", task="classification",
        label_names=label_names, x_test=x_test[:, None],
        y_test=_labels(y_test, len(label_names), folder),
    )  # fmt: skip


def _labels(values: np.ndarray, count: int, where: Path) -> np.ndarray:
    """Class ids as int64, each below the number of classes."""
    if len(values) and not 0 <= values.min() <= values.max() < count:
        raise NeuralabError(
            str(where),
            f"holds labels from {values.min()} to {values.max()}, not 0 to {count - 1}",
            "the files are corrupted or of another dataset",
        )
    return values.astype(np.int64)


def _find_idx(folder: Path, stem: str, dataset: str) -> np.ndarray:
    """The IDX file `stem` in `folder`, raw or gzipped."""
    for name in (stem, f"{stem}.gz"):
        if (folder / name).is_file():
            return read_idx(folder / name)
    raise _not_found(folder, f"{stem}(.gz)", dataset)


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (raw or `.gz`) as an array of the shape and type its header states."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:  # not gzip, or cut short
            raise NeuralabError(str(path), f"is not a complete gzip file ({error})") from None
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in IDX_TYPES:
        raise NeuralabError(str(path), "is not an IDX file (its magic number is wrong)")
    dimensions = data[3]
    header = 4 + 4 * dimensions
    if len(data) < header:
        raise NeuralabError(str(path), "is cut short inside its IDX header")
    shape = struct.unpack(f">{dimensions}I", data[4:header])
    dtype = np.dtype(IDX_TYPES[data[2]])
    expected = math.prod(shape) * dtype.itemsize
    if len(data) - header != expected:
        raise NeuralabError(
            str(path),
            f"holds {len(data) - header} bytes of data, but its header says {shape} "
            f"({expected} bytes)",
            "the file is truncated or corrupted; download it again",
        )
    return np.frombuffer(data, dtype, offset=header).reshape(shape)


def _cifar_folder(path: Path, unpacked: str) -> Path:
    """`path` itself, or the folder the official tarball unpacks to inside it."""
    return path / unpacked if (path / unpacked).is_dir() else path


def _cifar_records(
    folder: Path,
    files: list[str],
    dataset: str,
    *,
    label_bytes: int,
    label_index: int,
    label_count: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels of CIFAR binary files, concatenated."""
    record = label_bytes + CIFAR_PIXELS
    images, labels = [], []
    for name in files:
        path = folder / name
        if not path.is_file():
            raise _not_found(folder, name, dataset)
        data = path.read_bytes()
        if not data or len(data) % record:
            raise NeuralabError(
                str(path),
                f"holds {len(data)} bytes, not a whole number of {record}-byte records",
                "the file is truncated or corrupted; download it again",
            )
        records = np.frombuffer(data, np.uint8).reshape(-1, record)
        images.append(records[:, label_bytes:].reshape(-1, 3, 32, 32))
        labels.append(records[:, label_index])
    return np.concatenate(images), _labels(np.concatenate(labels), label_count, folder)


def _names_file(path: Path, count: int) -> tuple[str, ...]:
    """Class names, one a line, from the tarball's names file; numbers without it."""
    if path.is_file():
        names = tuple(
            line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
        )
        if len(names) == count:
            return names
    return tuple(str(i) for i in range(count))
