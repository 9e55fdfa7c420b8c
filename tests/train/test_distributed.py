"""Data-parallel training: two gloo processes under torchrun reach the single-process
result for the same global batch, and only rank 0 writes a run directory."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

import neuralab
from neuralab.api import resume
from neuralab.train.distributed import SINGLE, Shard
from neuralab.train.state import checkpoints, load_checkpoint

EXPERIMENT = """\
name: ddp
seed: 0
data: {dataset: digits}
model: {family: mlp, hidden_sizes: [32]}
optim: {name: adam, lr: 0.01}
train: {epochs: 3, batch_size: 128, checkpoint_seconds: 0}
"""


def test_two_processes_match_one_and_write_one_run(tmp_path):
    (tmp_path / "e.yaml").write_text(EXPERIMENT)
    single = neuralab.train(tmp_path / "e.yaml", out=tmp_path / "one")
    done = subprocess.run(
        [sys.executable, "-m", "neuralab", "train", str(tmp_path / "e.yaml")]
        + ["--nproc", "2", "--out", str(tmp_path / "two")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    written = list((tmp_path / "two").iterdir())
    assert [p.name.startswith("ddp-") for p in written] == [True]  # one, and not a .partial
    assert done.stdout.count("run: ") == 1  # rank 0 alone reports
    card = json.loads((written[0] / "card.json").read_text())
    assert (card["processes"], single.card.processes) == (2, 1)
    # Same global batches; each rank takes half and DDP averages the gradients. Only the
    # uneven last batch (105 = 53 + 52) and float summation order differ.
    assert card["metrics"]["test"]["accuracy"] == pytest.approx(
        single.test_metrics["accuracy"], abs=0.01
    )
    assert card["metrics"]["test"]["loss"] == pytest.approx(single.test_metrics["loss"], rel=0.02)
    assert single.test_metrics["accuracy"] > 0.8  # and the run learned something
    resumed = resume_in_one_process_from_epoch_2(written[0], tmp_path)
    assert resumed.card.processes == 1  # its last session ran in one process
    assert resumed.card.metrics["test"]["accuracy"] == pytest.approx(
        card["metrics"]["test"]["accuracy"], abs=0.01
    )
    assert resumed.card.metrics["test"]["loss"] == pytest.approx(
        card["metrics"]["test"]["loss"], rel=0.02
    )


def resume_in_one_process_from_epoch_2(ddp_run, tmp_path):
    """As if the two-process run had been killed during epoch 3: its folder, less the last
    checkpoint, resumed by one process on the same global batches."""
    partial = tmp_path / f".{ddp_run.name}.partial"
    shutil.copytree(ddp_run, partial)
    newest = checkpoints(partial / "checkpoints")[0]
    assert load_checkpoint(newest)["epoch"] == 3
    shutil.rmtree(newest)
    run = resume(partial)
    lines = (run.path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    return run


def test_a_shard_takes_every_world_th_sample():
    import torch

    index = torch.arange(10)
    assert Shard(0, 2).of(index).tolist() == [0, 2, 4, 6, 8]
    assert Shard(1, 2).of(index).tolist() == [1, 3, 5, 7, 9]
    assert SINGLE.of(index) is index


def test_baselines_refuse_nproc(run_cli, tmp_path):
    (tmp_path / "e.yaml").write_text("data: {dataset: digits}\nmodel: {family: logreg}\n")
    code, _, err = run_cli("train", str(tmp_path / "e.yaml"), "--nproc", "2")
    assert code == 2
    assert err.startswith("error: --nproc: ")
