"""Training-loop overhead: one model, data, batch size, optimizer and number of steps trained
three ways in one process, the order rotated every repeat (ABC, BCA, CAB, ...).

(a) a hand-written PyTorch loop indexing the in-memory tensors: the floor;
(b) `neuralab.train`, as a user runs it: progress bar (drawn to a terminal that is
    /dev/null), metrics log, per-epoch validation with every metric, the NaN guard, the
    gradient-health watch and durable checkpoints by the default policy (epoch ends at
    least `train.checkpoint_seconds`, 10 s, apart, and the last epoch's end);
(b_epoch) the same with a checkpoint at every epoch's end (`checkpoint_seconds: 0`): what
    the background writer costs when it writes all the time;
(b_fit) `neuralab.train.fit` called directly with the progress bar, the metrics log and
    per-epoch validation, and no checkpoints: like for like with (c);
(c) PyTorch Lightning's `Trainer`, progress bar, logger and checkpointing off.

All three draw the same batches in the same order from the same tensors (Lightning through
a batch sampler, so no per-sample collate) and start from the same weights, so they end at
the same weights: `same_weights` in the result checks that they did the same work. Each
arm is timed over its epochs loop (training and per-epoch validation), not its setup.
Reported: seconds per epoch (median over repeats) and the ratios to (a), each the median
of the per-repeat ratios (arms of one repeat run back to back, so drift in the machine's
load cancels), in wall time and in the process's CPU time (which other jobs on a busy
machine disturb much less; it leaves out time spent waiting for the disk).

    python -m benchmarks.overhead [--quick]
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import nn
from torch.nn import functional as F

import neuralab
from benchmarks.common import FitTimer, machine, median, parse_args, write_result
from neuralab.config import Experiment, load_config
from neuralab.data import DataBundle, load_data
from neuralab.tasks import make_task
from neuralab.train import MetricsLog, ProgressBar, fit

# The MNIST-1D paper's CNN setup (Greydanus 2020): three conv layers of 25 channels,
# Adam at 1e-2, batches of 100. Our cnn family pools where the paper strides.
CASES: dict[str, dict[str, Any]] = {
    "mnist1d-cnn": {
        "data": {"dataset": "mnist1d", "split": {"val": 0.1}},
        "model": {"family": "cnn", "channels": [25, 25, 25], "kernel_size": 5, "batch_norm": False},
        "optim": {"name": "adam", "lr": 0.01},
        "train": {"batch_size": 100},
    },
    # examples/digits-mlp.yaml without its schedule: the model and optimizer are the same.
    "digits-mlp": {
        "data": {"dataset": "digits"},
        "model": {"family": "mlp", "hidden_sizes": [128, 64], "dropout": 0.1},
        "optim": {"name": "adam", "lr": 0.001},
        "train": {"batch_size": 64},
    },
}
EPOCHS = {"mnist1d-cnn": 8, "digits-mlp": 30}
REPEATS = 15  # short runs, many pairs: the per-repeat ratios vary by ~10% even when quiet
ARMS = ("a", "b", "b_epoch", "b_fit", "c")


@dataclass
class Timing:
    """One arm's run: its epochs loop in wall and CPU seconds, its whole call, its result."""

    loop_seconds: float
    loop_cpu_seconds: float
    wall_seconds: float
    weights: dict[str, torch.Tensor]


class Clock:
    """Wall and process CPU seconds of a stretch of code."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    @contextmanager
    def measure(self) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.wall, self.cpu = time.perf_counter() - wall, time.process_time() - cpu


def experiment_for(case: str, epochs: int) -> Experiment:
    spec = CASES[case]
    train = {**spec["train"], "epochs": epochs}
    return load_config({**spec, "name": f"overhead-{case}", "seed": 0, "train": train})


def hand_written(experiment: Experiment, bundle: DataBundle) -> Timing:
    """(a) The loop one writes by hand: shuffled index batches, then a validation pass."""
    started = time.perf_counter()
    model, optimizer = _model_and_optimizer(experiment, bundle)
    x, y, x_val, y_val = bundle.x_train, bundle.y_train, bundle.x_val, bundle.y_val
    batch_size = experiment.train.batch_size
    torch.manual_seed(experiment.seed)
    order = torch.Generator().manual_seed(experiment.seed)
    clock = Clock()
    with clock.measure():
        for _ in range(experiment.train.epochs):
            model.train()
            total = 0.0
            for index in torch.randperm(len(x), generator=order).split(batch_size):
                if len(index) == 1:  # batch norm cannot take one sample; neuralab drops it too
                    continue
                loss = F.cross_entropy(model(x[index]), y[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.item() * len(index)
            model.eval()
            with torch.no_grad():
                output = model(x_val)
                val_loss = F.cross_entropy(output, y_val).item()
                val_accuracy = (output.argmax(1) == y_val).float().mean().item()
            del total, val_loss, val_accuracy  # computed as a real loop would, then unused
    return Timing(clock.wall, clock.cpu, time.perf_counter() - started, _copy(model))


def with_neuralab(experiment: Experiment, bundle: DataBundle) -> Timing:
    """(b) `neuralab.train`, timed from inside by a callback; it rebuilds the bundle."""
    del bundle
    timer = FitTimer()
    with tempfile.TemporaryDirectory() as out, _terminal_bar() as bar:
        started = time.perf_counter()
        run = neuralab.train(experiment, out=out, callbacks=[timer, bar])
        wall = time.perf_counter() - started
        weights = _copy(neuralab.load(run.path).model)
    return Timing(timer.seconds, timer.cpu_seconds, wall, weights)


def with_neuralab_every_epoch(experiment: Experiment, bundle: DataBundle) -> Timing:
    """(b_epoch) `neuralab.train` checkpointing at every epoch's end."""
    train = experiment.train.model_copy(update={"checkpoint_seconds": 0.0})
    return with_neuralab(experiment.model_copy(update={"train": train}), bundle)


def with_fit(experiment: Experiment, bundle: DataBundle) -> Timing:
    """(b_fit) `neuralab.train.fit` with a progress bar, a metrics log and validation."""
    started = time.perf_counter()
    model, optimizer = _model_and_optimizer(experiment, bundle)
    task = make_task(bundle.meta, experiment.train.loss)
    clock = Clock()
    with tempfile.TemporaryDirectory() as out, _terminal_bar() as bar, clock.measure():
        fit(
            model,
            task,
            bundle,
            optimizer=optimizer,
            scheduler=None,
            schedule_interval="epoch",
            epochs=experiment.train.epochs,
            batch_size=experiment.train.batch_size,
            seed=experiment.seed,
            callbacks=[MetricsLog(Path(out) / "metrics.jsonl"), bar],
        )
    return Timing(clock.wall, clock.cpu, time.perf_counter() - started, _copy(model))


def with_lightning(experiment: Experiment, bundle: DataBundle) -> Timing:
    """(c) Lightning's Trainer on the same batches, fed by a batch sampler."""
    from benchmarks.lightning_arm import fit_with_lightning

    started = time.perf_counter()
    model, optimizer = _model_and_optimizer(experiment, bundle)
    wall, cpu = fit_with_lightning(model, optimizer, bundle, experiment)
    return Timing(wall, cpu, time.perf_counter() - started, _copy(model))


@contextmanager
def _terminal_bar() -> Iterator[ProgressBar]:
    """The progress bar a terminal shows, drawn into /dev/null."""
    with open(os.devnull, "w") as devnull:
        yield ProgressBar("val_accuracy", console=Console(file=devnull, force_terminal=True))


def _model_and_optimizer(
    experiment: Experiment, bundle: DataBundle
) -> tuple[nn.Module, torch.optim.Optimizer]:
    """Built as `neuralab.train` builds them, after the same seeding: the same weights."""
    torch.manual_seed(experiment.seed)
    model = experiment.model.build(
        input_shape=bundle.meta.input_shape, num_outputs=bundle.meta.num_outputs
    )
    return model, experiment.optim.build(model.parameters())


def _copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


RUNNERS: dict[str, Callable[[Experiment, DataBundle], Timing]] = {
    "a": hand_written,
    "b": with_neuralab,
    "b_epoch": with_neuralab_every_epoch,
    "b_fit": with_fit,
    "c": with_lightning,
}


def run_case(case: str, epochs: int, repeats: int, threads: int) -> dict[str, Any]:
    experiment = experiment_for(case, epochs)
    bundle = load_data(experiment.data, task=experiment.task, seed=experiment.seed)
    warm = experiment_for(case, 1)
    for arm in ARMS:  # first calls pay for lazy imports and allocator growth
        RUNNERS[arm](warm, bundle)
    timings: dict[str, list[Timing]] = {arm: [] for arm in ARMS}
    for repeat in range(repeats):
        shift = repeat % len(ARMS)
        for arm in ARMS[shift:] + ARMS[:shift]:
            torch.set_num_threads(threads)  # in case a framework changed it
            timings[arm].append(RUNNERS[arm](experiment, bundle))
    seconds = {arm: [t.loop_seconds / epochs for t in timings[arm]] for arm in ARMS}
    cpu = {arm: [t.loop_cpu_seconds / epochs for t in timings[arm]] for arm in ARMS}
    result = {
        "case": case,
        "experiment": experiment.model_dump(mode="json", include={"data", "model", "optim"}),
        "batch_size": experiment.train.batch_size,
        "epochs": epochs,
        "train_samples": len(bundle.x_train),
        "val_samples": len(bundle.x_val),
        "repeats": repeats,
        "seconds_per_epoch": seconds,
        "cpu_seconds_per_epoch": cpu,
        "median_seconds_per_epoch": {arm: median(seconds[arm]) for arm in ARMS},
        "median_cpu_seconds_per_epoch": {arm: median(cpu[arm]) for arm in ARMS},
        "wall_seconds": {arm: [t.wall_seconds for t in timings[arm]] for arm in ARMS},
        "ratios": _ratios(seconds),
        "cpu_ratios": _ratios(cpu),
        # the same batches from the same start through the same math: the same end
        "same_weights": {arm: _same(timings["a"], timings[arm]) for arm in ARMS[1:]},
    }
    print(
        f"{case}: s/epoch "
        + "  ".join(f"{arm} {result['median_seconds_per_epoch'][arm]:.4f}" for arm in ARMS)
        + "  ratios "
        + "  ".join(f"{k} {v:.3f}" for k, v in result["ratios"].items())
        + "  cpu ratios "
        + "  ".join(f"{k} {v:.3f}" for k, v in result["cpu_ratios"].items())
        + f"  same weights {result['same_weights']}"
    )
    return result


def _ratios(seconds: dict[str, list[float]]) -> dict[str, float]:
    return {
        f"{arm}/a": median([s / a for s, a in zip(seconds[arm], seconds["a"], strict=True)])
        for arm in ARMS[1:]
    }


def _same(reference: list[Timing], other: list[Timing]) -> bool:
    return all(
        torch.equal(a.weights[k], b.weights[k])
        for a, b in zip(reference, other, strict=True)
        for k in a.weights
    )


def main(argv: list[str] | None = None) -> Path:
    args = parse_args("training-loop overhead: hand-written loop, neuralab, Lightning", argv)
    started, before = time.perf_counter(), machine()
    warnings.filterwarnings("ignore", module="lightning")
    repeats = 2 if args.quick else REPEATS
    cases = [
        run_case(case, 1 if args.quick else epochs, repeats, args.threads)
        for case, epochs in EPOCHS.items()
    ]
    return write_result(args, "overhead", started, {"machine": before, "cases": cases})


if __name__ == "__main__":
    main()
