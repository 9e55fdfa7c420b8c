"""Verified, atomic downloads of the public datasets: `neuralab datasets download NAME`.

`SOURCES` is the one table of what is fetched: each dataset's official base URL and, per
file, the sha256 its publishers' files are known by. A file is written to
`DIR/.NAME.partial`, its sha256 checked, and only then moved into place with `os.replace`
(a tarball is unpacked into a hidden folder first and moved likewise), so an interrupted or
corrupted download leaves nothing half-written behind. A `mirror` replaces the base URL,
for a local copy of the files (the tests serve one from a temporary folder).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from neuralab.data.digest import file_sha256
from neuralab.errors import NeuralabError

CHUNK_BYTES = 2**20
TIMEOUT_SECONDS = 60
# (file name, bytes so far, total bytes or None when the server does not say)
Progress = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class RemoteFile:
    """One file at a dataset's base URL, and the sha256 it must have.

    `unpack`: the folder a tarball holds, which is unpacked into place of the archive.
    """

    name: str
    sha256: str
    unpack: str | None = None


@dataclass(frozen=True)
class Source:
    base_url: str
    files: tuple[RemoteFile, ...]


# The mirror TensorFlow uses for MNIST (Yann LeCun's own host often refuses downloads);
# Fashion-MNIST from its authors' repository; CIFAR from Alex Krizhevsky's page.
SOURCES = {
    "mnist": Source(
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        (
            RemoteFile(
                "train-images-idx3-ubyte.gz",
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            ),
            RemoteFile(
                "train-labels-idx1-ubyte.gz",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            ),
            RemoteFile(
                "t10k-images-idx3-ubyte.gz",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            ),
            RemoteFile(
                "t10k-labels-idx1-ubyte.gz",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            ),
        ),
    ),
    "fashion_mnist": Source(
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        (
            RemoteFile(
                "train-images-idx3-ubyte.gz",
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            ),
            RemoteFile(
                "train-labels-idx1-ubyte.gz",
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            ),
            RemoteFile(
                "t10k-images-idx3-ubyte.gz",
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            ),
            RemoteFile(
                "t10k-labels-idx1-ubyte.gz",
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            ),
        ),
    ),
    "cifar10": Source(
        "https://www.cs.toronto.edu/~kriz/",
        (
            RemoteFile(
                "cifar-10-binary.tar.gz",
                "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
                unpack="cifar-10-batches-bin",
            ),
        ),
    ),
    "cifar100": Source(
        "https://www.cs.toronto.edu/~kriz/",
        (
            RemoteFile(
                "cifar-100-binary.tar.gz",
                "58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec",
                unpack="cifar-100-binary",
            ),
        ),
    ),
}


def download(
    name: str, folder: Path, *, mirror: str | None = None, progress: Progress | None = None
) -> list[Path]:
    """Fetch dataset `name`'s files into `folder`, each checked against its sha256.

    Files already there (with the right sha256) or folders already unpacked are kept.

    Args:
        name: A key of `SOURCES`.
        folder: Where the files go; created if needed.
        mirror: A base URL serving the same file names, instead of the official one.
        progress: Called as bytes arrive.

    Returns:
        The files and folders the dataset now has in `folder`.

    Raises:
        NeuralabError: For an unknown name, a failed download, or a file whose sha256
            differs (naming the file and both hashes); nothing of that file is kept.
    """
    if name not in SOURCES:
        raise NeuralabError(
            "NAME", f"'{name}' has no files to download", f"downloadable: {', '.join(SOURCES)}"
        )
    source = SOURCES[name]
    base = (mirror or source.base_url).rstrip("/") + "/"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # e.g. a file of that name, or no permission
        raise NeuralabError("--to", f"cannot create folder {folder} ({error.strerror})") from None
    return [_fetch_one(base, remote, folder, progress) for remote in source.files]


def _fetch_one(base: str, remote: RemoteFile, folder: Path, progress: Progress | None) -> Path:
    target = folder / (remote.unpack or remote.name)
    if remote.unpack and target.is_dir():
        return target
    if target.is_file() and file_sha256(target) == remote.sha256:
        return target
    partial = folder / f".{remote.name}.partial"
    try:
        digest = _stream(base + remote.name, partial, progress)
        if digest != remote.sha256:
            raise NeuralabError(
                str(folder / remote.name),
                f"sha256 {digest} does not match the published {remote.sha256}",
                "the download is corrupted or the mirror serves another file; nothing was kept",
            )
        if remote.unpack:
            _unpack(partial, folder, remote.unpack, remote.name)
        else:
            os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _stream(url: str, path: Path, progress: Progress | None) -> str:
    """Write `url` to `path`, hashing as it arrives; returns the sha256."""
    digest = hashlib.sha256()
    name = url.rsplit("/", 1)[-1]
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            with path.open("wb") as file:
                while chunk := response.read(CHUNK_BYTES):
                    file.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(name, done, total)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        reason = getattr(error, "reason", error)
        raise NeuralabError(
            url, f"download failed: {reason}", "check the connection, or give --mirror URL"
        ) from None
    return digest.hexdigest()


def _unpack(archive: Path, folder: Path, unpack: str, name: str) -> None:
    """Unpack the tarball's folder `unpack` into `folder`, whole or not at all."""
    staging = folder / f".{unpack}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(staging, filter="data")  # refuses links and paths out of staging
        if not (staging / unpack).is_dir():
            raise NeuralabError(name, f"the archive holds no folder '{unpack}'")
        os.replace(staging / unpack, folder / unpack)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise NeuralabError(name, f"cannot be unpacked ({error})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
