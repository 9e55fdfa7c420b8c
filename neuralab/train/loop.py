"""The training loop: one readable function, `fit`.

What changes the math (input noise, L1/L2 penalties, gradient clipping, the LR schedule)
is inline behind a plain `if`; what observes or stops is a callback. Batches come from
indexing the tensors with a seeded permutation: no per-sample Python on the hot path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from neuralab.data import DataBundle
from neuralab.tasks import Task
from neuralab.train.callbacks import Callback, TrainState

EVAL_BATCH_SIZE = 1024


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
) -> TrainState:
    """Train `model` on `bundle`'s training split, validating every epoch.

    The test split is never read here: model selection sees only train and val.
    """
    torch.manual_seed(seed)  # dropout and input noise draw from the global generator
    order = torch.Generator().manual_seed(seed)
    state = TrainState(model, optimizer, epochs, num_batches(len(bundle.x_train), batch_size))
    for callback in callbacks:
        callback.on_fit_start(state)
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        outputs, targets, losses = [], [], []
        for x, y in batches(bundle.x_train, bundle.y_train, batch_size, order):
            output, loss = train_step(
                model,
                task,
                optimizer,
                x,
                y,
                grad_clip=grad_clip,
                l1=l1,
                l2=l2,
                input_noise=input_noise,
            )
            if scheduler is not None and schedule_interval == "step":
                scheduler.step()
            state.step += 1
            state.loss, state.batch = loss.item(), x
            outputs.append(output.detach())
            targets.append(y)
            losses.append(state.loss * len(y))
            for callback in callbacks:
                callback.on_step_end(state)
        if scheduler is not None and schedule_interval == "epoch":
            scheduler.step()
        state.epoch = epoch
        train_output, train_target = torch.cat(outputs), torch.cat(targets)
        state.metrics = {
            "train_loss": sum(losses) / len(train_target),
            **{f"train_{k}": v for k, v in task.metrics(train_output, train_target).items()},
            **{f"val_{k}": v for k, v in evaluate(model, task, bundle.x_val, bundle.y_val).items()},
            "seconds": time.perf_counter() - started,
        }
        state.history.append({"epoch": epoch, **state.metrics})
        for callback in callbacks:
            callback.on_epoch_end(state)
        if state.should_stop:
            break
    for callback in callbacks:
        callback.on_fit_end(state)
    return state


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
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on one batch; returns the batch output and its loss."""
    if input_noise:
        x = x + input_noise * torch.randn_like(x)
    output = model(x)
    loss = task.loss(output, y)
    if l1 or l2:
        loss = loss + weight_penalty(model, l1, l2)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return output, loss


def batches(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled mini-batches by tensor indexing.

    A last batch of one sample is dropped: batch norm cannot normalise a single sample.
    """
    permutation = torch.randperm(len(x), generator=generator)
    for start in range(0, len(x), batch_size):
        index = permutation[start : start + batch_size]
        if len(index) == 1 and len(x) > 1:
            return
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
def predict_outputs(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Raw outputs for `x` in large chunks; a module is put in evaluation mode first.

    Any callable from tensors to outputs works (the classical baselines are such).
    """
    if isinstance(model, nn.Module):
        model.eval()
    return torch.cat([model(x[i : i + EVAL_BATCH_SIZE]) for i in range(0, len(x), EVAL_BATCH_SIZE)])


def evaluate(
    model: Callable[[torch.Tensor], torch.Tensor], task: Task, x: torch.Tensor, y: torch.Tensor
) -> dict[str, float]:
    """Loss and every task metric on one split."""
    output = predict_outputs(model, x)
    return {"loss": task.loss(output, y).item(), **task.metrics(output, y)}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
