"""The training loop: one readable function, `fit`.

What changes the math (input noise, L1/L2 penalties, gradient clipping, the LR schedule)
is inline behind a plain `if`; what observes or stops is a callback. Batches come from
indexing the tensors with a seeded permutation: no per-sample Python on the hot path.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from neuralab.data import DataBundle
from neuralab.errors import NeuralabError
from neuralab.tasks import Task
from neuralab.train.callbacks import Callback, TrainState
from neuralab.train.device import CPU, Placement
from neuralab.train.distributed import SINGLE, Shard, agree, gather, wrap
from neuralab.train.state import CheckpointWriter, StopFlag

EVAL_BATCH_SIZE = 1024
# (number of training samples, order generator) -> one epoch's batches as index tensors
BatchDraw = Callable[[int, torch.Generator], list[torch.Tensor]]


@dataclass(frozen=True)
class Checkpointing:
    """Where and how often `fit` saves its full state, and the flag that asks it to stop.

    Checkpoints are written every `every` steps (if set) and at every epoch end.
    """

    directory: Path
    every: int | None = None
    keep: int = 2
    stop: StopFlag | None = None


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

    def remaining(
        self, x: torch.Tensor, y: torch.Tensor, shard: Shard = SINGLE
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches not yet done (this rank's share of each, when distributed)."""
        for index in self.batches[self.next_batch :]:
            self.next_batch += 1
            index = shard.of(index)
            yield x[index], y[index]

    def record(self, output: torch.Tensor, target: torch.Tensor, loss: float) -> None:
        # metrics are computed on the CPU in fp32, whatever the device and precision
        self.outputs.append(output.detach().float().cpu())
        self.targets.append(target)
        self.losses.append(loss * len(target))


def fit(
    model: nn.Module,
    task: Task,
    bundle: DataBundle,
    *,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    schedule_interval: str,
    epochs: int,
    batch_size: int,
    seed: int,
    grad_clip: float | None = None,
    l1: float = 0.0,
    l2: float = 0.0,
    input_noise: float = 0.0,
    callbacks: Sequence[Callback] = (),
    checkpointing: Checkpointing | None = None,
    resume: dict[str, Any] | None = None,
    placement: Placement = CPU,
    shard: Shard = SINGLE,
    draw_batches: BatchDraw | None = None,
) -> TrainState:
    """Train `model` on `bundle`'s training split, validating every epoch.

    The test split is never read here: model selection sees only train and val. Given
    `resume` (a checkpoint's state), training continues exactly where it stopped, to the
    same weights an uninterrupted run reaches. Under torchrun (`shard`), every rank draws
    the same global batches and trains on its share of each through DDP. `draw_batches`
    picks each epoch's batches from the order generator (default: shuffled, consecutive;
    DP-SGD draws Poisson ones).
    """
    net = wrap(model, shard)
    torch.manual_seed(seed)  # dropout and input noise draw from the global generator
    order = torch.Generator().manual_seed(seed)
    state = TrainState(model, optimizer, epochs, num_batches(len(bundle.x_train), batch_size))
    writer = (
        CheckpointWriter(checkpointing.directory, checkpointing.keep) if checkpointing else None
    )
    extras = _Extras(order, scheduler, callbacks, placement.scaler)
    progress = _restore(resume, state, extras) if resume else None
    seconds_before = resume["seconds"] if resume else 0.0
    for callback in callbacks:
        callback.on_fit_start(state)
    started = time.perf_counter() - seconds_before
    with writer or nullcontext():
        while state.epoch < epochs and not state.should_stop:
            draw = draw_batches or partial(shuffled_batches, batch_size=batch_size)
            progress = progress or EpochProgress(draw(len(bundle.x_train), order))
            model.train()
            for x, y in progress.remaining(bundle.x_train, bundle.y_train, shard):
                output, loss = train_step(
                    net,
                    task,
                    optimizer,
                    x.to(placement.device),
                    y.to(placement.device),
                    grad_clip=grad_clip,
                    l1=l1,
                    l2=l2,
                    input_noise=input_noise,
                    placement=placement,
                )
                _advance(scheduler, schedule_interval, "step")
                state.step += 1
                state.loss, state.batch = loss.item(), x
                progress.record(output, y, state.loss)
                for callback in callbacks:
                    callback.on_step_end(state)
                if checkpointing is not None and writer is not None:
                    seconds = time.perf_counter() - started
                    _checkpoint_step(checkpointing, writer, state, extras, progress, seconds)
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
            if writer is not None:
                _save(writer, state, extras, None, time.perf_counter() - started)
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
    train_output = torch.cat(gather(progress.outputs, shard))
    train_target = torch.cat(gather(progress.targets, shard))
    return {
        "train_loss": sum(gather(progress.losses, shard)) / len(train_target),
        **{f"train_{k}": v for k, v in task.metrics(train_output, train_target).items()},
        **{
            f"val_{k}": v
            for k, v in evaluate(model, task, bundle.x_val, bundle.y_val, placement).items()
        },
        "seconds": seconds,
    }


@dataclass(frozen=True)
class _Extras:
    """What a checkpoint holds besides the `TrainState`: the batch-order generator, the LR
    schedule, stateful callbacks and the fp16 gradient scaler."""

    order: torch.Generator
    scheduler: Any
    callbacks: Sequence[Callback]
    scaler: torch.amp.GradScaler | None


def _checkpoint_step(
    checkpointing: Checkpointing,
    writer: CheckpointWriter,
    state: TrainState,
    extras: _Extras,
    progress: EpochProgress,
    seconds: float,
) -> None:
    """Save when a step checkpoint is due or a stop was asked for; then honour the stop."""
    stop = checkpointing.stop is not None and checkpointing.stop.requested
    due = checkpointing.every is not None and state.step % checkpointing.every == 0
    if stop or due:
        _save(writer, state, extras, progress, seconds)
    if stop:
        raise TrainingInterrupted(
            str(checkpointing.directory.parent),
            f"interrupted at epoch {state.epoch + 1}, step {state.step}; state saved",
            f"resume with: neuralab resume {checkpointing.directory.parent}",
        )


def _save(
    writer: CheckpointWriter,
    state: TrainState,
    extras: _Extras,
    progress: EpochProgress | None,
    seconds: float,
) -> None:
    scheduler, scaler = extras.scheduler, extras.scaler
    everything = {
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "order": extras.order.get_state(),
            "python": random.getstate(),
            "numpy": np.random.get_state(),
        },
        "epoch": state.epoch,
        "step": state.step,
        "loss": state.loss,
        "metrics": state.metrics,
        "history": state.history,
        "seconds": seconds,
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
            type(c).__name__: c.state_dict() for c in extras.callbacks if hasattr(c, "state_dict")
        },
    }
    writer.save(state.step, everything)


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
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    state.epoch, state.step, state.loss = saved["epoch"], saved["step"], saved["loss"]
    state.metrics, state.history = saved["metrics"], saved["history"]
    for callback in extras.callbacks:
        if type(callback).__name__ in saved["callbacks"]:
            callback.load_state_dict(saved["callbacks"][type(callback).__name__])  # type: ignore[attr-defined]
    progress = saved["progress"]
    return None if progress is None else EpochProgress(**progress)


def train_step(
    model: nn.Module,
    task: Task,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    grad_clip: float | None,
    l1: float,
    l2: float,
    input_noise: float,
    placement: Placement = CPU,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on one batch; returns the batch output and its loss.

    The forward pass and loss run under the placement's autocast (bf16/fp16); with fp16
    the loss is scaled before backward and the gradients unscaled before clipping.

    Families may hook in: `train_step(x, y, optimizer)` replaces the whole update (a GAN's
    two players), `forward_train(x, y)` replaces the forward pass (a decoder reading the
    true previous tokens: teacher forcing), and `auxiliary_loss()` adds a term computed in
    that forward pass (a VAE's KL divergence).
    """
    custom = getattr(model, "train_step", None)
    if custom is not None:
        return custom(x, y, optimizer)
    if input_noise:
        x = x + input_noise * torch.randn_like(x)
    with placement.autocast():
        forward_train = getattr(model, "forward_train", None)
        output = model(x) if forward_train is None else forward_train(x, y)
        loss = task.loss(output, y)
        auxiliary_loss = getattr(model, "auxiliary_loss", None)
        if auxiliary_loss is not None:
            loss = loss + auxiliary_loss()
        if l1 or l2:
            loss = loss + weight_penalty(model, l1, l2)
        if not len(y):  # an empty DP-SGD Poisson batch: no sample weighs in (a mean is NaN),
            loss = output.sum()  # but its noise-only step must run, as the accountant counts
    optimizer.zero_grad(set_to_none=True)
    scaler = placement.scaler
    if scaler is None:
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        return output, loss
    scaler.scale(loss).backward()
    if grad_clip:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)  # skipped when the scaled gradients overflowed
    scaler.update()
    return output, loss


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


def weight_penalty(model: nn.Module, l1: float, l2: float) -> torch.Tensor:
    """L1 and L2 penalties over weight matrices and kernels (not biases or norm scales)."""
    weights = [p for p in model.parameters() if p.ndim > 1]
    penalty = torch.zeros(())
    if l1:
        penalty = penalty + l1 * sum(w.abs().sum() for w in weights)
    if l2:
        penalty = penalty + l2 * sum(w.pow(2).sum() for w in weights)
    return penalty


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
    """Loss and every task metric on one split."""
    return score(task, predict_outputs(model, x, placement), y)


def score(task: Task, output: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Loss and every task metric for outputs already computed."""
    return {"loss": task.loss(output, y).item(), **task.metrics(output, y)}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
