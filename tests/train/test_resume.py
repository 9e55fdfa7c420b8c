"""Never lose a run: interrupt or kill training anywhere, resume, and get the same bytes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import yaml

import neuralab
from neuralab.api import resume
from neuralab.train import Callback
from tests.conftest import REPO, tiny_experiment

# 1,257 digits in batches of 128: 10 steps an epoch, 30 in all; a checkpoint every 4 steps
# lands mid-epoch as well as at the epoch ends.
SPEC = tiny_experiment(
    model={"family": "mlp", "hidden_sizes": [32], "dropout": 0.2},
    train={
        "epochs": 3,
        "batch_size": 128,
        "checkpoint_every": 4,
        "early_stopping": {"monitor": "val_loss", "patience": 5},
    },
    regularization={"input_noise": 0.05},
    schedule={"name": "onecycle"},
)


class InterruptAt(Callback):
    """Sends this process SIGINT after step `step`, as a user pressing Ctrl-C would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, state) -> None:
        if state.step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The weights and metrics of an uninterrupted run."""
    run = neuralab.train(SPEC, out=tmp_path_factory.mktemp("reference"))
    return (run.path / "model.safetensors").read_bytes(), run.card.metrics


def partial_of(out):
    [partial] = [p for p in out.iterdir() if p.name.endswith(".partial")]
    return partial


@pytest.mark.parametrize("step", [3, 10, 17])  # mid-epoch, epoch boundary, mid-epoch
def test_interrupt_then_resume_equals_an_uninterrupted_run(tmp_path, reference, step):
    with pytest.raises(neuralab.NeuralabError, match=rf"interrupted at epoch \d, step {step}"):
        neuralab.train(SPEC, out=tmp_path, callbacks=[InterruptAt(step)])
    run = resume(partial_of(tmp_path))
    assert (run.path / "model.safetensors").read_bytes() == reference[0]
    assert run.card.metrics == reference[1]
    lines = (run.path / "metrics.jsonl").read_text().splitlines()
    assert [yaml.safe_load(line)["epoch"] for line in lines] == [1, 2, 3]
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())


@pytest.mark.parametrize("damage", ["truncate", "bit_flip", "empty", "no_manifest", "missing_file"])
def test_damaged_newest_checkpoint_falls_back_to_the_previous(tmp_path, reference, damage):
    with pytest.raises(neuralab.NeuralabError):
        neuralab.train(SPEC, out=tmp_path, callbacks=[InterruptAt(13)])
    partial = partial_of(tmp_path)
    newest = sorted((partial / "checkpoints").iterdir())[-1]
    tensors = newest / "state.safetensors"
    data = tensors.read_bytes()
    if damage == "truncate":
        tensors.write_bytes(data[: len(data) // 2])
    elif damage == "bit_flip":
        tensors.write_bytes(data[:-9] + bytes([data[-9] ^ 1]) + data[-8:])
    elif damage == "empty":
        tensors.write_bytes(b"")
    elif damage == "no_manifest":
        (newest / "manifest.json").unlink()
    else:
        tensors.unlink()
    with pytest.warns(UserWarning, match=f"skipped {newest.name}"):
        run = resume(partial)
    assert (run.path / "model.safetensors").read_bytes() == reference[0]


def test_no_valid_checkpoint_fails_loudly(tmp_path):
    with pytest.raises(neuralab.NeuralabError):
        neuralab.train(SPEC, out=tmp_path, callbacks=[InterruptAt(5)])
    partial = partial_of(tmp_path)
    for checkpoint in (partial / "checkpoints").iterdir():
        (checkpoint / "state.json").write_text("{}")
    with pytest.raises(neuralab.NeuralabError, match="no valid checkpoint: skipped"):
        resume(partial)
    assert partial.is_dir()  # the user's run is never deleted by a failed resume


def test_a_pickle_placed_as_a_checkpoint_is_never_executed(tmp_path):
    import pickle

    with pytest.raises(neuralab.NeuralabError):
        neuralab.train(SPEC, out=tmp_path, callbacks=[InterruptAt(5)])
    partial = partial_of(tmp_path)
    marker = tmp_path / "pwned"
    payload = pickle.dumps(
        type("Evil", (), {"__reduce__": lambda self: (marker.write_text, ("ran",))})()
    )
    for checkpoint in (partial / "checkpoints").iterdir():
        (checkpoint / "state.safetensors").write_bytes(payload)
    with pytest.raises(neuralab.NeuralabError, match="no valid checkpoint"):
        resume(partial)
    assert not marker.exists()


def run_cli_process(*args, out):
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "neuralab", *args, "--out", str(out)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def kill_after_step(process, out, step: int) -> None:
    """SIGKILL once a checkpoint at `step` or later exists, after a random extra moment."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        names = [p.name for p in out.glob(".*.partial/checkpoints/step-*")]
        if any(int(name.removeprefix("step-")) >= step for name in names):
            time.sleep(random.uniform(0.0, 0.05))
            break
        time.sleep(0.005)
    process.kill()
    process.communicate()


# `make chaos` raises the count: 5 kill points in the suite, 20 there.
KILL_POINTS = int(os.environ.get("NEURALAB_CHAOS_KILLS", "5"))


@pytest.mark.parametrize("kill_point", range(KILL_POINTS))
def test_sigkill_at_random_points_then_resume_is_byte_identical(tmp_path, reference, kill_point):
    # checkpoints every 2 steps change nothing in the math, so the in-process reference
    # (one thread, like the CLI's default) must match to the byte
    config = tmp_path / "experiment.yaml"
    config.write_text(yaml.safe_dump({**SPEC, "train": {**SPEC["train"], "checkpoint_every": 2}}))
    random.seed(kill_point)
    process = run_cli_process("train", str(config), out=tmp_path)
    kill_after_step(process, tmp_path, step=2 + (6 * kill_point) % 28)  # of 30 steps
    partials = [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    if not partials:  # the run finished before the kill: nothing to resume
        pytest.skip("training finished before the kill")
    resumed = run_cli_process("resume", str(partials[0]), out=tmp_path)
    _, errors = resumed.communicate()
    assert resumed.returncode == 0, errors.decode()
    [done] = [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert (done / "model.safetensors").read_bytes() == reference[0]


def test_train_dash_dash_resume_and_resume_without_a_path(tmp_path, reference, run_cli):
    with pytest.raises(neuralab.NeuralabError):
        neuralab.train(SPEC, out=tmp_path, callbacks=[InterruptAt(7)])
    code, out, err = run_cli("train", "--resume", str(partial_of(tmp_path)))
    assert code == 0, err
    [done] = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert (done / "model.safetensors").read_bytes() == reference[0]
    code, _, err = run_cli("resume", "--out", str(tmp_path))
    assert (code, err.split(" (")[0]) == (2, f"error: {tmp_path}: no interrupted run to resume")
