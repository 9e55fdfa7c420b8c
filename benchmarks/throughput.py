"""Samples per second of every example model on this machine: training and batched inference.

Training: one epoch of `neuralab.train` on the example as shipped (its batch size, model
and optimizer), timed between consecutive steps, so each epoch's validation and checkpoint
are left out and per-step callbacks are in. Inference: the trained model on the test split
through `predict_outputs` (chunks of 1,024 samples), median of several passes.

    python -m benchmarks.throughput [--quick]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import neuralab
from benchmarks.common import EXAMPLES, ROOT, StepTimer, machine, parse_args, write_result
from neuralab.config import load_config
from neuralab.plan import plan
from neuralab.train import predict_outputs

INFERENCE_PASSES = 5
# Examples that are not one plain training run of a model measured elsewhere here.
SKIPPED = {
    "digits-cnn-tune.yaml": "a search over digits-cnn.yaml, whose model is measured",
    "digits-mlp-tune.yaml": "a search over digits-mlp.yaml, whose model is measured",
    "transfer-finetune.yaml": "starts from a run of transfer-pretrain.yaml (measured)",
    "ablation-optimizers.yaml": "the digits-cnn.yaml model, for a compare --vary sweep",
    "ablation-batchnorm.yaml": "the digits-cnn.yaml model, for a compare --vary sweep",
    "ablation-dropout.yaml": "the digits-mlp.yaml model, for a compare --vary sweep",
}


def measure(example: Path, passes: int) -> dict[str, Any]:
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as out:
        run = neuralab.train(example, overrides=["train.epochs=1"], out=out, callbacks=[timer])
        model = neuralab.load(run.path).model
    experiment = load_config(example)
    x = plan(experiment).bundle.x_test  # the data as training saw it (multi-task too)
    predict_outputs(model, x[:64])  # the first call pays for lazy initialisation
    seconds = []
    for _ in range(passes):
        started = time.perf_counter()
        predict_outputs(model, x)
        seconds.append(time.perf_counter() - started)
    row = {
        "example": str(example.relative_to(ROOT)),
        "family": run.card.family,
        "task": run.card.task,
        "parameters": run.card.num_parameters,
        "batch_size": experiment.train.batch_size,
        "train_samples_per_second": timer.samples_per_second,
        "test_samples": len(x),
        "inference_samples_per_second": len(x) / statistics.median(seconds),
    }
    print(
        f"{row['example']}: train {row['train_samples_per_second']:,.0f}/s"
        f"  inference {row['inference_samples_per_second']:,.0f}/s"
    )
    return row


def main(argv: list[str] | None = None) -> Path:
    args = parse_args("training and inference samples/s of every example", argv)
    started, before = time.perf_counter(), machine()
    passes = 2 if args.quick else INFERENCE_PASSES
    examples = [p for p in sorted(EXAMPLES.glob("*.yaml")) if p.name not in SKIPPED]
    rows = [measure(example, passes) for example in examples]
    payload = {"machine": before, "examples": rows, "skipped": SKIPPED}
    return write_result(args, "throughput", started, payload)


if __name__ == "__main__":
    main()
