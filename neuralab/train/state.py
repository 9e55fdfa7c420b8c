"""Checkpoints: the full training state, written so that a crash at any instant leaves
either the previous checkpoint or the new one, never a half-written one.

Tensors go to safetensors and everything else to JSON: nothing is ever unpickled. Each
checkpoint is a folder written under a temporary name, flushed and fsynced file by file,
closed by a manifest of sha256 sums, then renamed into place (`os.replace`) and the
parent folder fsynced. Loading verifies the manifest; a damaged checkpoint is skipped for
the previous one, and the caller is told.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from neuralab.errors import NeuralabError

MANIFEST = "manifest.json"
TENSORS = "state.safetensors"
SKELETON = "state.json"
PREFIX = "step-"


def save_checkpoint(directory: Path, step: int, state: dict[str, Any], *, keep: int) -> Path:
    """Write `state` as `directory/step-<step>` atomically; keep the newest `keep`."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{PREFIX}{step:09d}"
    for leftover in directory.glob(".*"):  # debris of writes or deletes that were killed
        shutil.rmtree(leftover, ignore_errors=True)
    temporary = directory / f".{final.name}.tmp-{os.getpid()}"
    temporary.mkdir()
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _encode(state, tensors, "t")
    save_file(
        {k: v.detach().contiguous().clone() for k, v in tensors.items()}, str(temporary / TENSORS)
    )
    _write_synced(temporary / SKELETON, json.dumps(skeleton).encode())
    _fsync(temporary / TENSORS)
    sums = {name: _sha256(temporary / name) for name in (TENSORS, SKELETON)}
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
    """JSON-able skeleton of `value`; tensors are moved to `tensors` and referenced."""
    if isinstance(value, torch.Tensor):
        tensors[key] = value
        return {"__tensor__": key}
    if isinstance(value, np.ndarray):  # numpy's RNG state
        tensors[key] = torch.from_numpy(value.copy())
        return {"__ndarray__": key}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        items = [
            [_encode(k, tensors, f"{key}.k{i}"), _encode(v, tensors, f"{key}.{i}")]
            for i, (k, v) in enumerate(value.items())
        ]
        return {"__dict__": items}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, tensors, f"{key}.{i}") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, tensors, f"{key}.{i}") for i, v in enumerate(value)]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot checkpoint a {type(value).__name__} at {key}")


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
