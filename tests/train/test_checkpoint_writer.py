"""Checkpoints are written on a background thread: training goes on meanwhile, and yet
every checkpoint holds the state of its own instant and is on disk when training ends."""

from __future__ import annotations

import threading

import pytest
import torch

import neuralab
from neuralab.train import Callback
from neuralab.train import state as checkpoint_module
from neuralab.train.state import CheckpointWriter, checkpoints, load_checkpoint
from tests.conftest import tiny_experiment

SPEC = tiny_experiment(
    model={"family": "mlp", "hidden_sizes": [16]},
    train={"epochs": 2, "batch_size": 256, "keep_checkpoints": 5, "checkpoint_seconds": 0},
)


class Signal(Callback):
    """Sets `event` at the first step of the second epoch."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def on_step_end(self, state) -> None:
        if state.epoch == 1:
            self.event.set()


def test_training_goes_on_while_the_epoch_checkpoint_is_written(tmp_path, monkeypatch):
    next_epoch_began = threading.Event()
    waited: list[bool] = []
    write = checkpoint_module.write_checkpoint

    def slow_write(*args, **kwargs):
        # a synchronous write would block the training thread here, and the wait time out
        waited.append(next_epoch_began.wait(timeout=20))
        return write(*args, **kwargs)

    monkeypatch.setattr(checkpoint_module, "write_checkpoint", slow_write)
    run = neuralab.train(SPEC, out=tmp_path, callbacks=[Signal(next_epoch_began)])
    assert waited == [True, True]
    # training returned only once the last checkpoint was on disk
    newest = checkpoints(run.path / "checkpoints")[0]
    assert load_checkpoint(newest)["epoch"] == 2


@pytest.mark.parametrize(("seconds", "epochs_saved"), [(0, [1, 2, 3]), (3600, [3])])
def test_epoch_end_checkpoints_wait_for_checkpoint_seconds(tmp_path, seconds, epochs_saved):
    """Short epochs are not each followed by a disk write; the last one always is."""
    spec = {**SPEC, "train": {**SPEC["train"], "epochs": 3, "checkpoint_seconds": seconds}}
    run = neuralab.train(spec, out=tmp_path)
    saved = [load_checkpoint(path)["epoch"] for path in checkpoints(run.path / "checkpoints")]
    assert sorted(saved) == epochs_saved


def test_a_checkpoint_holds_the_state_of_its_instant(tmp_path):
    weights = torch.zeros(3)
    with CheckpointWriter(tmp_path, keep=2) as writer:
        writer.save(1, {"w": weights, "history": [{"loss": 1.0}]})
        weights += 1  # training moves on before the write has finished
    [saved] = checkpoints(tmp_path)
    state = load_checkpoint(saved)
    assert torch.equal(state["w"], torch.zeros(3))
    assert state["history"] == [{"loss": 1.0}]


def unwritable(tmp_path):
    """A checkpoint folder that cannot be made: its parent is a file."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    return blocker / "checkpoints"


def test_a_failed_write_is_raised_by_the_next_save(tmp_path):
    writer = CheckpointWriter(unwritable(tmp_path), keep=2)
    writer.save(1, {"step": 1})
    with pytest.raises(NotADirectoryError, match="file/checkpoints"):
        writer.save(2, {"step": 2})


def fail_while_writing(directory):
    with CheckpointWriter(directory, keep=2) as writer:
        writer.save(1, {"step": 1})
        raise RuntimeError("training broke")


def test_a_training_error_is_not_hidden_by_a_failed_write(tmp_path):
    with pytest.raises(RuntimeError, match="training broke") as raised:
        fail_while_writing(unwritable(tmp_path))
    assert "the last checkpoint was not written either" in raised.value.__notes__[0]
