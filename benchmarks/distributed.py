"""Samples per second for 1 vs N data-parallel processes (torchrun, gloo on the CPU).

    python benchmarks/distributed.py [--nproc 2] [--epochs 5]

Trains the digits CNN example's model for a few epochs in one process and in N, alternating
the two over repeats, and reports the median training samples/s of each and their ratio.
Writes benchmarks/results/distributed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from neuralab.card import read_card

HERE = Path(__file__).resolve().parent
EXPERIMENT = """\
name: bench-ddp
seed: 0
data: {dataset: mnist1d}
model: {family: cnn, channels: [32, 64], kernel_size: 5}
optim: {name: adam, lr: 0.003}
train: {epochs: EPOCHS, batch_size: 128}
"""


def run_once(config: Path, nproc: int, out: Path) -> float:
    """Seconds of training (the card's train_seconds) for one run with `nproc` processes."""
    command = [sys.executable, "-m", "neuralab", "train", str(config), "--out", str(out)]
    if nproc > 1:
        command += ["--nproc", str(nproc)]
    subprocess.run(command, check=True, capture_output=True)
    newest = max(out.iterdir(), key=lambda p: p.stat().st_mtime)
    return read_card(newest).train_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    samples = 3600 * args.epochs  # mnist1d's training split with the default val fraction
    seconds: dict[int, list[float]] = {1: [], args.nproc: []}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "e.yaml"
        config.write_text(EXPERIMENT.replace("EPOCHS", str(args.epochs)))
        for _ in range(args.repeats):
            for nproc in seconds:  # alternate, so drifting load hits both alike
                seconds[nproc].append(run_once(config, nproc, Path(tmp) / f"runs{nproc}"))
    rate = {n: samples / statistics.median(s) for n, s in seconds.items()}
    result = {
        "benchmark": "distributed",
        "model": "mnist1d cnn [32, 64], batch 128 (global)",
        "samples_per_second": {str(n): round(r, 1) for n, r in rate.items()},
        "speedup": round(rate[args.nproc] / rate[1], 3),
        "seconds": {str(n): s for n, s in seconds.items()},
        "machine": {
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "platform": platform.platform(),
        },
        "measured": time.strftime("%Y-%m-%d %H:%M"),
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "distributed.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["samples_per_second"]), "speedup", result["speedup"])


if __name__ == "__main__":
    main()
