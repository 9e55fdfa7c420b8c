"""`neuralab datasets download` against a throwaway local mirror (127.0.0.1, a free port).

The official hosts cannot be reached from the test machine, so the tests swap in a table
of the files they generate; the real table is checked for its form only.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import re
import tarfile
import threading

import numpy as np
import pytest

from neuralab.data import DATASETS
from neuralab.data.download import SOURCES, RemoteFile, Source
from neuralab.data.idx_cifar import CIFAR10Config, MNISTConfig
from tests.data.test_idx_cifar import cifar_records, write_mnist


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture
def mirror(tmp_path):
    """(folder served, its URL): a local HTTP server for the duration of a test."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/files"
    server.shutdown()
    server.server_close()


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def served_mnist(monkeypatch, folder, *, wrong: str = "") -> None:
    """Generated MNIST files under `folder/files`, and a table of their hashes (the file
    named `wrong` listed with another hash)."""
    write_mnist(folder / "files")
    files = tuple(
        RemoteFile(path.name, "0" * 64 if path.name == wrong else sha256(path))
        for path in sorted((folder / "files").iterdir())
    )
    monkeypatch.setitem(SOURCES, "mnist", Source("https://unreachable.invalid/", files))


def test_download_verifies_and_writes_every_file(run_cli, tmp_path, mirror, monkeypatch):
    folder, url = mirror
    served_mnist(monkeypatch, folder)
    target = tmp_path / "data" / "mnist"
    code, out, err = run_cli("datasets", "download", "mnist", "--to", str(target), "--mirror", url)
    assert code == 0, err
    assert sorted(p.name for p in target.iterdir()) == sorted(
        p.name for p in (folder / "files").iterdir()
    )
    assert f"wrote {target / 'train-images-idx3-ubyte.gz'}" in out
    assert MNISTConfig(path=target).load(seed=0).x.shape == (1297, 1, 8, 8)
    # files already there with the right sha256 are kept: no server needed again
    code, _, err = run_cli(
        "datasets", "download", "mnist", "--to", str(target), "--mirror", "http://127.0.0.1:9"
    )
    assert code == 0, err


def test_a_corrupted_download_is_refused_and_nothing_is_left(
    run_cli, tmp_path, mirror, monkeypatch
):
    folder, url = mirror
    served_mnist(monkeypatch, folder, wrong="t10k-images-idx3-ubyte.gz")
    target = tmp_path / "mnist"
    code, _, err = run_cli("datasets", "download", "mnist", "--to", str(target), "--mirror", url)
    assert code == 2
    actual = sha256(folder / "files" / "t10k-images-idx3-ubyte.gz")
    assert err.strip().endswith(
        f"error: {target / 't10k-images-idx3-ubyte.gz'}: sha256 {actual} does not match the "
        f"published {'0' * 64} (the download is corrupted or the mirror serves another file; "
        "nothing was kept)"
    )
    assert not (target / "t10k-images-idx3-ubyte.gz").exists()
    assert not [path for path in target.iterdir() if path.name.startswith(".")]


def test_a_tarball_is_unpacked_whole_from_the_mirror_in_the_environment(
    run_cli, tmp_path, mirror, monkeypatch
):
    folder, url = mirror
    (folder / "files").mkdir()
    archive = folder / "files" / "cifar-10-binary.tar.gz"
    records = cifar_records(np.zeros((2, 3, 32, 32), np.uint8), np.array([1, 2]))
    with tarfile.open(archive, "w:gz") as tar:
        for name in [*(f"data_batch_{b}.bin" for b in range(1, 6)), "test_batch.bin"]:
            member = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            member.size = len(records)
            tar.addfile(member, io.BytesIO(records))
    remote = RemoteFile(archive.name, sha256(archive), unpack="cifar-10-batches-bin")
    monkeypatch.setitem(SOURCES, "cifar10", Source("https://unreachable.invalid/", (remote,)))
    monkeypatch.setenv("NEURALAB_DATASETS_MIRROR", url)
    code, _, err = run_cli("datasets", "download", "cifar10", "--to", str(tmp_path / "cifar"))
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "cifar").iterdir()) == ["cifar-10-batches-bin"]
    assert CIFAR10Config(path=tmp_path / "cifar").load(seed=0).y.tolist()[:2] == [1, 2]


def test_an_unreachable_host_is_an_error(run_cli, tmp_path, mirror, monkeypatch):
    folder, url = mirror
    served_mnist(monkeypatch, folder)
    code, _, err = run_cli(
        "datasets", "download", "mnist", "--to", str(tmp_path / "m"), "--mirror", url + "/absent"
    )
    assert code == 2
    assert re.search(r"error: http://127\.0\.0\.1:\d+/files/absent/\S+: download failed", err)
    assert list((tmp_path / "m").iterdir()) == []


def test_an_unknown_name_lists_the_downloadable_ones(run_cli):
    code, _, err = run_cli("datasets", "download", "imagenet")
    assert code == 2
    assert "downloadable: mnist, fashion_mnist, cifar10, cifar100" in err


def test_the_official_table_names_registered_datasets_with_sha256s():
    registered = {cls.model_fields["name"].default for cls in DATASETS}
    assert set(SOURCES) <= registered
    for source in SOURCES.values():
        assert source.base_url.startswith("https://")
        for remote in source.files:
            assert re.fullmatch(r"[0-9a-f]{64}", remote.sha256)


def test_a_target_that_is_a_file_is_an_error(run_cli, tmp_path):
    (tmp_path / "taken").write_text("")
    code, _, err = run_cli("datasets", "download", "mnist", "--to", str(tmp_path / "taken"))
    assert code == 2
    assert f"error: --to: cannot create folder {tmp_path / 'taken'}" in err
