"""Data-parallel training: two gloo processes under torchrun reach the single-process
result for the same global batch, and only rank 0 writes a run directory."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import neuralab
from neuralab.train.distributed import SINGLE, Shard

EXPERIMENT = """\
name: ddp
seed: 0
data: {dataset: digits}
model: {family: mlp, hidden_sizes: [32]}
optim: {name: adam, lr: 0.01}
train: {epochs: 3, batch_size: 128}
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
    # Same global batches; each rank takes half and DDP averages the gradients. Only the
    # uneven last batch (105 = 53 + 52) and float summation order differ.
    assert card["metrics"]["test"]["accuracy"] == pytest.approx(
        single.test_metrics["accuracy"], abs=0.01
    )
    assert card["metrics"]["test"]["loss"] == pytest.approx(single.test_metrics["loss"], rel=0.02)
    assert single.test_metrics["accuracy"] > 0.8  # and the run learned something


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
