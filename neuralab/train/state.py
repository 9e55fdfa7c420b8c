"""Checkpoints: the full training state, written so that a crash at any instant leaves
either the previous checkpoint or the new one, never a half-written one.

Tensors go to safetensors and everything else to JSON: nothing is ever unpickled. Each
checkpoint is a folder written under a temporary name, flushed and fsynced file by file,
closed by a manifest of sha256 sums, then renamed into place (`os.replace`) and the
parent folder fsynced. Loading verifies the manifest; a damaged checkpoint is skipped for
the previous one, and the caller is told.

Training saves through a `CheckpointWriter`: the state is copied at once (a `Snapshot`)
and written on a background thread, so the disk's fsyncs overlap the next epoch's
training instead of stalling it (the same idea as PyTorch's `dcp.async_save`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save

from neuralab.errors import NeuralabError

MANIFEST = "manifest.json"
TENSORS = "state.safetensors"
SKELETON = "state.json"
PREFIX = "step-"
PLAIN = frozenset({type(None), bool, int, float, str})  # JSON stores these as they are


@dataclass(frozen=True)
class Snapshot:
    """A checkpoint's content taken at one instant: the JSON skeleton and private copies of
    its tensors, so that training may go on changing the live state while it is written."""

    skeleton: Any
    tensors: dict[str, torch.Tensor]


def snapshot(state: dict[str, Any]) -> Snapshot:
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _encode(state, tensors, "t")
    copies = {
        k: v.detach().clone(memory_format=torch.contiguous_format) for k, v in tensors.items()
    }
    return Snapshot(skeleton, copies)


def save_checkpoint(directory: Path, step: int, state: dict[str, Any], *, keep: int) -> Path:
    """Write `state` as `directory/step-<step>` atomically; keep the newest `keep`."""
    return write_checkpoint(directory, step, snapshot(state), keep=keep)


class CheckpointWriter:
    """Writes checkpoints on one background thread, one at a time.

    `save` copies the state at once and returns while the copy is written. It first waits
    for the previous write, so checkpoints land in order and at most one is in flight; a
    write's error is raised by the next `save` or by `close`. Leaving the `with` block
    waits for the last write: once training returns (or stops on Ctrl-C), its checkpoints
    are on disk.
    """

    def __init__(self, directory: Path, keep: int) -> None:
        self.directory, self.keep = directory, keep
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="neuralab-checkpoint")
        self._pending: Future[Path] | None = None
        self._saved_at = time.monotonic()

    def seconds_since_save(self) -> float:
        """Since the last `save` (or since this writer was made)."""
        return time.monotonic() - self._saved_at

    def save(self, step: int, state: dict[str, Any]) -> None:
        self._saved_at = time.monotonic()
        copied = snapshot(state)
        self.wait()
        self._pending = self._executor.submit(
            write_checkpoint, self.directory, step, copied, keep=self.keep
        )

    def wait(self) -> None:
        """Block until the write in flight is on disk; raise its error, if any."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> CheckpointWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.wait()
        except Exception as write_error:
            if error is None:
                raise
            # training already failed: say so first, and keep the write's failure beside it
            error.add_note(f"the last checkpoint was not written either: {write_error}")
        finally:
            self._executor.shutdown()


def write_checkpoint(directory: Path, step: int, copied: Snapshot, *, keep: int) -> Path:
    """Write a snapshot as `directory/step-<step>` atomically; keep the newest `keep`."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{PREFIX}{step:09d}"
    for leftover in directory.glob(".*"):  # debris of writes or deletes that were killed
        shutil.rmtree(leftover, ignore_errors=True)
    temporary = directory / f".{final.name}.tmp-{os.getpid()}"
    temporary.mkdir()
    files = {TENSORS: save(copied.tensors), SKELETON: json.dumps(copied.skeleton).encode()}
    for name, data in files.items():
        _write_synced(temporary / name, data)
    sums = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    _write_synced(temporary / MANIFEST, json.dumps({"sha256": sums}).encode())
    _fsync(temporary)
    if final.exists():  # a resumed run re-saving the same step
        _remove(final)
    os.replace(temporary, final)
    _fsync(directory)
    for old in checkpoints(directory)[keep:]:
        _remove(old)
    return final


def _remove(checkpoint: Path) -> None:
    """Delete a checkpoint so that a kill mid-way never leaves a half-deleted one under a
    valid name: rename it out of sight first (atomic), then delete the files."""
    doomed = checkpoint.with_name(f".{checkpoint.name}.deleting-{os.getpid()}")
    os.replace(checkpoint, doomed)
    _fsync(checkpoint.parent)
    shutil.rmtree(doomed, ignore_errors=True)


def checkpoints(directory: Path) -> list[Path]:
    """Finished checkpoint folders, newest first."""
    if not directory.is_dir():
        return []
    return sorted((p for p in directory.iterdir() if p.name.startswith(PREFIX)), reverse=True)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read and verify one checkpoint; any damage raises a NeuralabError saying what."""
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise NeuralabError(str(path), "checkpoint has no manifest (its write never finished)")
    try:
        sums = json.loads(manifest_path.read_bytes())["sha256"]
    except (ValueError, KeyError, TypeError):
        raise NeuralabError(str(path), "checkpoint manifest is unreadable") from None
    for name in (TENSORS, SKELETON):
        file = path / name
        if not file.is_file():
            raise NeuralabError(str(path), f"checkpoint file {name} is missing")
        if _sha256(file) != sums.get(name):
            raise NeuralabError(str(path), f"checkpoint file {name} fails its sha256 check")
    tensors = load_file(str(path / TENSORS))
    return _decode(json.loads((path / SKELETON).read_bytes()), tensors)


def latest_checkpoint(directory: Path) -> tuple[Path, dict[str, Any], list[str]]:
    """The newest checkpoint that verifies, and a line for each newer one skipped."""
    skipped: list[str] = []
    for path in checkpoints(directory):
        try:
            return path, load_checkpoint(path), skipped
        except NeuralabError as error:
            skipped.append(f"skipped {path.name}: {error.problems[0].what}")
    where = str(directory.parent)
    if skipped:
        raise NeuralabError(
            where,
            "no valid checkpoint: " + "; ".join(skipped),
            "start the run again with neuralab train",
        )
    raise NeuralabError(
        where,
        "no checkpoint to resume from",
        "the run stopped before its first checkpoint; start it again",
    )


def _encode(value: Any, tensors: dict[str, torch.Tensor], key: str) -> Any:
    """JSON-able skeleton of `value`, built afresh; tensors are moved to `tensors` and
    referenced."""
    if type(value) in PLAIN:
        return value
    if isinstance(value, torch.Tensor):
        tensors[key] = value
        return {"__tensor__": key}
    if isinstance(value, np.ndarray):  # numpy's RNG state
        tensors[key] = torch.from_numpy(value)
        return {"__ndarray__": key}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict | list | tuple):
        return _encode_container(value, tensors, key)
    if isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot checkpoint a {type(value).__name__} at {key}")


def _encode_container(
    value: dict | list | tuple, tensors: dict[str, torch.Tensor], key: str
) -> Any:
    """Containers of plain values (the metric history, Python's RNG state) are copied in
    one pass, the rest item by item: the snapshot is taken on the training thread."""
    if isinstance(value, dict):
        if PLAIN.issuperset(map(type, value)) and PLAIN.issuperset(map(type, value.values())):
            return {"__dict__": [[k, v] for k, v in value.items()]}
        items = [
            [_encode(k, tensors, f"{key}.k{i}"), _encode(v, tensors, f"{key}.{i}")]
            for i, (k, v) in enumerate(value.items())
        ]
        return {"__dict__": items}
    if PLAIN.issuperset(map(type, value)):
        encoded = list(value)
    else:
        encoded = [_encode(v, tensors, f"{key}.{i}") for i, v in enumerate(value)]
    return {"__tuple__": encoded} if isinstance(value, tuple) else encoded


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__ndarray__" in value:
            return tensors[value["__ndarray__"]].numpy()
        if "__tuple__" in value:
            return tuple(_decode(v, tensors) for v in value["__tuple__"])
        return {_decode(k, tensors): _decode(v, tensors) for k, v in value["__dict__"]}
    return value


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class StopFlag:
    """Set by SIGINT/SIGTERM while training runs: the loop then checkpoints at the next
    step boundary and stops cleanly instead of dying mid-write."""

    def __init__(self) -> None:
        self.requested = False

    def request(self, signum: int, frame: Any) -> None:
        self.requested = True


@contextmanager
def stop_on_signals() -> Iterator[StopFlag]:
    """Route SIGINT and SIGTERM to a flag for the duration (main thread only)."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {sig: signal.signal(sig, flag.request) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
