"""Does augmentation help when labels are few? The digits CNN on 20 labelled images per
class, with and without the example's `data.augment`, over 3 seeds (docs/data.md).

    python -m benchmarks.augment
"""

from __future__ import annotations

import statistics
import tempfile
import time
from typing import Any

import yaml

import neuralab
from benchmarks.common import EXAMPLES

SEEDS = (0, 1, 2)


def test_accuracies(spec: dict[str, Any], folder: str) -> list[float]:
    """Test accuracy of `spec` trained with each seed."""
    accuracies = []
    for seed in SEEDS:
        run = neuralab.train({**spec, "seed": seed}, out=folder, write_report=False)
        accuracies.append(run.card.metrics["test"]["accuracy"])
    return accuracies


def main() -> None:
    spec = yaml.safe_load((EXAMPLES / "digits-cnn-augment.yaml").read_text())
    without = {**spec, "data": {k: v for k, v in spec["data"].items() if k != "augment"}}
    started = time.perf_counter()
    print("| data.augment | test accuracy per seed | mean ± std |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        augment = yaml.safe_dump(spec["data"]["augment"], default_flow_style=True).strip()
        for name, arm in (("off", without), (augment, spec)):
            scores = test_accuracies(arm, folder)
            per_seed = ", ".join(f"{s:.3f}" for s in scores)
            mean, std = statistics.mean(scores), statistics.stdev(scores)
            print(f"| `{name}` | {per_seed} | {mean:.3f} ± {std:.3f} |", flush=True)
    print(f"\n{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
