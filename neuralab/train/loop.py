"""The training loop: one readable function, `fit`.

What one batch does to the weights (autocast, input noise, L1/L2 penalties, gradient
clipping, the optimizer step) is the family's `Step` (steps.py); the LR schedule and data
augmentation are inline behind a plain `if`; what observes or stops is a callback. Batches come from
indexing the tensors with a seeded permutation: no per-sample Python on the hot path.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from neuralab.data import AugmentConfig, DataBundle
from neuralab.errors import NeuralabError
from neuralab.tasks import Summarized, Task
from neuralab.train.callbacks import Callback, TrainState
from neuralab.train.device import CPU, Placement
from neuralab.train.distributed import SINGLE, Shard, agree, gather, wrap
from neuralab.train.state import CheckpointWriter, StopFlag
from neuralab.train.steps import NO_EXTRAS, SUPERVISED, Step, StepSettings

EVAL_BATCH_SIZE = 1024
# (number of training samples, order generator) -> one epoch's batches as index tensors
BatchDraw = Callable[[int, torch.Generator], list[torch.Tensor]]
# (a batch's outputs, targets) -> the few numbers its metrics need (`tasks.Summarized`)
Summarize = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# added to the seed for the augmentation generator: a stream of its own, not the batch
# order's numbers drawn again
AUGMENT_SEED_OFFSET = 2**32


@dataclass(frozen=True)
class Checkpointing:
    """Where and how often `fit` saves its full state, and the flag that asks it to stop.

    Checkpoints are written every `every` steps (if set), when a stop is asked for, after
    the last epoch, and at any other epoch end at least `seconds` after the previous
    checkpoint: a 20 ms epoch need not wait on a disk write each time.
    """

    directory: Path
    every: int | None = None
    keep: int = 2
    stop: StopFlag | None = None
    seconds: float = 0.0


class TrainingInterrupted(NeuralabError):
    """SIGINT/SIGTERM arrived: the state was checkpointed and training stopped."""


@dataclass
class EpochProgress:
    """How far the current epoch got: its batches (index tensors) and what the done batches
    produced (kept so a resumed epoch reports the same train metrics)."""

    batches: list[torch.Tensor]
    next_batch: int = 0
    outputs: list[torch.Tensor] = field(default_factory=list)
    targets: list[torch.Tensor] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)

    def remaining(self) -> Iterator[torch.Tensor]:
        """The index tensors of the batches not yet done."""
        for index in self.batches[self.next_batch :]:
            self.next_batch += 1
            yield index

    def record(
        self, output: torch.Tensor, target: torch.Tensor, loss: float, summarize: Summarize | None
    ) -> None:
        """Keep what the epoch's train metrics need: the outputs, or the task's summary of
        them (a language model's logits are too large to keep for an epoch)."""
        # metrics are computed on the CPU in fp32, whatever the device and precision
        output = output.detach().float().cpu()
        self.outputs.append(output if summarize is None else summarize(output, target.cpu()))
        self.targets.append(target)
        self.losses.append(loss * len(target))


def fit(
    model: nn.Module,
    task: Task,
    bundle: DataBundle,
    *,
    step: Step = SUPERVISED,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    schedule_interval: str,
    epochs: int,
    batch_size: int,
    seed: int,
    settings: StepSettings = NO_EXTRAS,
    callbacks: Sequence[Callback] = (),
    checkpointing: Checkpointing | None = None,
    resume: dict[str, Any] | None = None,
    placement: Placement = CPU,
    shard: Shard = SINGLE,
    draw_batches: BatchDraw | None = None,
    augment: AugmentConfig | None = None,
) -> TrainState:
    """Train `model` on `bundle`'s training split, validating every epoch.

    The test split is never read here: model selection sees only train and val. Given
    `resume` (a checkpoint's state), training continues exactly where it stopped, to the
    same weights an uninterrupted run reaches. Under torchrun (`shard`), every rank draws
    the same global batches and trains on its share of each through DDP. `draw_batches`
    picks each epoch's batches from the order generator (default: shuffled, consecutive;
    DP-SGD draws Poisson ones). `step` updates the weights on each batch (the family's
    choice: `Supervised`, or a GAN's `Adversarial`). `augment` changes each training batch
    at random, from a generator of its own that the checkpoints carry.
    """
    net = wrap(model, shard)
    torch.manual_seed(seed)  # dropout and input noise draw from the global generator
    order = torch.Generator().manual_seed(seed)
    augmenting = torch.Generator().manual_seed(seed + AUGMENT_SEED_OFFSET)
    state = TrainState(model, optimizer, epochs, num_batches(len(bundle.x_train), batch_size))
    extras = _Extras(order, augmenting, scheduler, callbacks, placement.scaler)
    # training seconds so far, read only when a checkpoint is written
    saver = (
        _Saver(checkpointing, extras, lambda: time.perf_counter() - started)
        if checkpointing
        else NO_SAVER
    )
    summarize = task.summarize if isinstance(task, Summarized) else None
    progress = _restore(resume, state, extras) if resume else None
    seconds_before = resume["seconds"] if resume else 0.0
    for callback in callbacks:
        callback.on_fit_start(state)
    started = time.perf_counter() - seconds_before
    with saver:
        while state.epoch < epochs and not state.should_stop:
            draw = draw_batches or partial(shuffled_batches, batch_size=batch_size)
            progress = progress or EpochProgress(draw(len(bundle.x_train), order))
            model.train()
            for index in progress.remaining():
                if augment is None:  # this rank's share alone, when distributed
                    x, y = bundle.x_train[shard.of(index)], bundle.y_train[shard.of(index)]
                else:  # the whole batch, so every rank draws alike; then this rank's share
                    x = augment.apply(bundle.x_train[index], augmenting)
                    x, y = shard.of(x), shard.of(bundle.y_train[index])
                output, loss = step(
                    net,
                    task,
                    optimizer,
                    x.to(placement.device),
                    y.to(placement.device),
                    settings,
                    placement,
                )
                _advance(scheduler, schedule_interval, "step")
                state.step += 1
                state.loss, state.batch = loss.item(), x
                progress.record(output, y, state.loss, summarize)
                for callback in callbacks:
                    callback.on_step_end(state)
                saver.after_step(state, progress)
            _advance(scheduler, schedule_interval, "epoch")
            state.epoch += 1
            state.metrics = _epoch_metrics(
                model, task, bundle, progress, time.perf_counter() - started, placement, shard
            )
            state.history.append({"epoch": state.epoch, **state.metrics})
            progress = None
            for callback in callbacks:
                callback.on_epoch_end(state)
            state.should_stop = agree(state.should_stop, shard)
            saver.after_epoch(state)
    for callback in callbacks:
        callback.on_fit_end(state)
    return state


def _advance(scheduler, interval: str, boundary: str) -> None:
    """Step the LR schedule at the boundary (batch or epoch) it is defined on."""
    if scheduler is not None and interval == boundary:
        scheduler.step()


def _epoch_metrics(
    model,
    task: Task,
    bundle: DataBundle,
    progress: EpochProgress,
    seconds: float,
    placement: Placement,
    shard: Shard,
) -> dict[str, float]:
    train_outputs = gather(progress.outputs, shard)
    train_target = torch.cat(gather(progress.targets, shard))
    if isinstance(task, Summarized):
        train = task.summary_scores(torch.stack(train_outputs).sum(dim=0))
        del train["loss"]  # the loss is the mean of the steps' losses, as for other tasks
    else:
        train = task.metrics(torch.cat(train_outputs), train_target)
    return {
        "train_loss": sum(gather(progress.losses, shard)) / len(train_target),
        **{f"train_{k}": v for k, v in train.items()},
        **{
            f"val_{k}": v
            for k, v in evaluate(model, task, bundle.x_val, bundle.y_val, placement).items()
        },
        "seconds": seconds,
    }


@dataclass(frozen=True)
class _Extras:
    """What a checkpoint holds besides the `TrainState`: the batch-order and augmentation
    generators, the LR schedule, stateful callbacks and the fp16 gradient scaler."""

    order: torch.Generator
    augmenting: torch.Generator
    scheduler: Any
    callbacks: Sequence[Callback]
    scaler: torch.amp.GradScaler | None


class _Saver:
    """Carries out a `Checkpointing` policy for one `fit`, through a background writer."""

    def __init__(
        self, checkpointing: Checkpointing, extras: _Extras, elapsed: Callable[[], float]
    ) -> None:
        self.policy, self.extras, self.elapsed = checkpointing, extras, elapsed
        self.writer = CheckpointWriter(checkpointing.directory, checkpointing.keep)

    def __enter__(self) -> _Saver:
        self.writer.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.writer.__exit__(*exc_info)

    def after_step(self, state: TrainState, progress: EpochProgress) -> None:
        """Save when a step checkpoint is due or a stop was asked for; then honour the stop."""
        policy = self.policy
        stop = policy.stop is not None and policy.stop.requested
        if stop or (policy.every is not None and state.step % policy.every == 0):
            self.save(state, progress)
        if stop:
            raise TrainingInterrupted(
                str(policy.directory.parent),
                f"interrupted at epoch {state.epoch + 1}, step {state.step}; state saved",
                f"resume with: neuralab resume {policy.directory.parent}",
            )

    def after_epoch(self, state: TrainState) -> None:
        last = state.epoch == state.num_epochs or state.should_stop
        if last or self.writer.seconds_since_save() >= self.policy.seconds:
            self.save(state, None)

    def save(self, state: TrainState, progress: EpochProgress | None) -> None:
        scheduler, scaler, callbacks = (
            self.extras.scheduler,
            self.extras.scaler,
            self.extras.callbacks,
        )
        everything = {
            "model": state.model.state_dict(),
            "optimizer": state.optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "scaler": scaler.state_dict() if scaler is not None else None,
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "order": self.extras.order.get_state(),
                "augment": self.extras.augmenting.get_state(),
                "python": random.getstate(),
                "numpy": np.random.get_state(),
            },
            "epoch": state.epoch,
            "step": state.step,
            "loss": state.loss,
            "metrics": state.metrics,
            "history": state.history,
            "seconds": self.elapsed(),
            "progress": None
            if progress is None
            else {
                "batches": progress.batches,
                "next_batch": progress.next_batch,
                "outputs": progress.outputs,
                "targets": progress.targets,
                "losses": progress.losses,
            },
            # by class name: a resumed run may bring different stateless observers
            "callbacks": {
                type(c).__name__: c.state_dict() for c in callbacks if hasattr(c, "state_dict")
            },
        }
        self.writer.save(state.step, everything)


class _NoSaver:
    """No checkpoints (a helper rank, an lr sweep, a test)."""

    def __enter__(self) -> _NoSaver:
        return self

    def __exit__(self, *exc_info: Any) -> None: ...

    def after_step(self, state: TrainState, progress: EpochProgress) -> None: ...

    def after_epoch(self, state: TrainState) -> None: ...


NO_SAVER = _NoSaver()


def _restore(saved: dict[str, Any], state: TrainState, extras: _Extras) -> EpochProgress | None:
    state.model.load_state_dict(saved["model"])
    state.optimizer.load_state_dict(saved["optimizer"])
    if extras.scheduler is not None:
        extras.scheduler.load_state_dict(saved["scheduler"])
    if extras.scaler is not None and saved.get("scaler") is not None:
        extras.scaler.load_state_dict(saved["scaler"])
    rng = saved["rng"]
    torch.set_rng_state(rng["torch"])
    if rng.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    extras.order.set_state(rng["order"])
    if "augment" in rng:  # checkpoints written before augmentation existed lack it
        extras.augmenting.set_state(rng["augment"])
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    state.epoch, state.step, state.loss = saved["epoch"], saved["step"], saved["loss"]
    state.metrics, state.history = saved["metrics"], saved["history"]
    for callback in extras.callbacks:
        if type(callback).__name__ in saved["callbacks"]:
            callback.load_state_dict(saved["callbacks"][type(callback).__name__])  # type: ignore[attr-defined]
    progress = saved["progress"]
    return None if progress is None else EpochProgress(**progress)


def batch_indices(
    permutation: torch.Tensor, batch_size: int, *, start: int = 0
) -> Iterator[torch.Tensor]:
    """Index tensors of consecutive batches of `permutation`, from batch number `start`.

    A last batch of one sample is dropped: batch norm cannot normalise a single sample.
    """
    n = len(permutation)
    for first in range(start * batch_size, n, batch_size):
        index = permutation[first : first + batch_size]
        if len(index) == 1 and n > 1:
            return
        yield index


def shuffled_batches(
    num_samples: int, generator: torch.Generator, *, batch_size: int
) -> list[torch.Tensor]:
    """One epoch of consecutive batches of a seeded permutation: every sample once."""
    return list(batch_indices(torch.randperm(num_samples, generator=generator), batch_size))


def batches(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled mini-batches by tensor indexing, in an order drawn from `generator`."""
    for index in batch_indices(torch.randperm(len(x), generator=generator), batch_size):
        yield x[index], y[index]


def num_batches(num_samples: int, batch_size: int) -> int:
    full, rest = divmod(num_samples, batch_size)
    return full + (1 if rest > 1 or (rest == 1 and num_samples == 1) else 0)


@torch.no_grad()
def predict_outputs(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    placement: Placement = CPU,
) -> torch.Tensor:
    """Raw outputs for `x` in large chunks, as fp32 on the CPU; a module is put in
    evaluation mode first. Chunks run on the placement's device and precision.

    Any callable from tensors to outputs works (the classical baselines are such).
    """
    if isinstance(model, nn.Module):
        model.eval()
    outputs = []
    with placement.autocast():
        for i in range(0, len(x), EVAL_BATCH_SIZE):
            output = model(x[i : i + EVAL_BATCH_SIZE].to(placement.device))
            outputs.append(output.float().cpu())
    return torch.cat(outputs)


def evaluate(
    model: Callable[[torch.Tensor], torch.Tensor],
    task: Task,
    x: torch.Tensor,
    y: torch.Tensor,
    placement: Placement = CPU,
) -> dict[str, float]:
    """Loss and every task metric on one split (summed chunk by chunk, for a task that
    summarizes its outputs)."""
    if not isinstance(task, Summarized):
        return score(task, predict_outputs(model, x, placement), y)
    chunks = [
        task.summarize(
            predict_outputs(model, x[i : i + EVAL_BATCH_SIZE], placement),
            y[i : i + EVAL_BATCH_SIZE],
        )
        for i in range(0, len(x), EVAL_BATCH_SIZE)
    ]
    total = torch.stack(chunks).sum(dim=0)
    return task.summary_scores(total)


def score(task: Task, output: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Loss and every task metric for outputs already computed."""
    return {"loss": task.loss(output, y).item(), **task.metrics(output, y)}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
