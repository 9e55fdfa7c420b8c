"""Checkpoint writes survive SIGKILL at any instant; a plain write would not."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time

import pytest

from neuralab.errors import NeuralabError
from neuralab.train.state import checkpoints, load_checkpoint

# A writer that saves ~4 MB checkpoints as fast as it can, either atomically (the real
# `save_checkpoint`) or by writing straight into the final folder (what we must not do).
WRITER = """
import sys, torch
from pathlib import Path
from neuralab.train.state import save_checkpoint, _encode, PREFIX
from safetensors.torch import save_file
directory, mode = Path(sys.argv[1]), sys.argv[2]
state = {"weights": torch.randn(1000, 1000), "step": 0}
for step in range(1, 10**6):
    state["step"] = step
    if mode == "atomic":
        save_checkpoint(directory, step, state, keep=3)
    else:
        final = directory / f"{PREFIX}{step:09d}"
        final.mkdir(parents=True)
        save_file({"t": state["weights"]}, str(final / "state.safetensors"))
        (final / "state.json").write_text("{}")
        (final / "manifest.json").write_text("{}")
"""


def kill_writer(directory, mode: str, seed: int) -> None:
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(directory), mode])
    random.seed(seed)
    deadline = time.monotonic() + 60
    while not checkpoints(directory) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(random.uniform(0.0, 0.3))
    process.kill()
    process.wait()


def damaged(directory) -> list[str]:
    broken = []
    for path in checkpoints(directory):
        try:
            load_checkpoint(path)
        except NeuralabError as error:
            broken.append(str(error))
    return broken


# `make chaos` raises the count: 4 kills in the suite, 50 there.
WRITE_KILLS = int(os.environ.get("NEURALAB_CHAOS_WRITE_KILLS", "4"))


@pytest.mark.parametrize("seed", range(WRITE_KILLS))
def test_every_surviving_checkpoint_verifies_after_sigkill(tmp_path, seed):
    kill_writer(tmp_path, "atomic", seed)
    assert checkpoints(tmp_path)
    assert damaged(tmp_path) == []


def test_the_check_catches_a_plain_non_atomic_write(tmp_path):
    # Same harness, naive writer: within a few kills one lands mid-write and is caught.
    found = []
    for seed in range(8):
        folder = tmp_path / str(seed)
        kill_writer(folder, "plain", seed)
        found += damaged(folder)
        if found:
            break
    assert found, "the harness failed to notice torn writes"
