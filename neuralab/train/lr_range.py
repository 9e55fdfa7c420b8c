"""Learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training Neural
Networks", section 3.3): train for a few hundred batches while the rate grows
exponentially, and read a good rate off the loss curve.

Each step is the family's own training step, so gradient clipping, L1/L2 and input noise
act as they will in training. The model's weights, the optimizer's state and the
global random state are put back afterwards: training then starts exactly as it would
have without the test.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from neuralab.data import DataBundle
from neuralab.errors import NeuralabError
from neuralab.tasks import Task
from neuralab.train.loop import batches
from neuralab.train.steps import NO_EXTRAS, SUPERVISED, Step, StepSettings

# Stated rule: the rate where the smoothed loss is lowest is already at the edge of
# divergence; a tenth of it still descends fast (fastai's `lr_min / 10`).
RULE = "a tenth of the learning rate at which the smoothed loss is lowest"
SMOOTHING = 0.95  # exponential moving average of the batch losses, bias-corrected
DIVERGED = 4.0  # stop once the smoothed loss exceeds this multiple of its minimum
START_LR, END_LR, NUM_STEPS = 1e-7, 10.0, 200


@dataclass(frozen=True)
class LRSweep:
    """The rates tried, the loss at each, and the suggested rate."""

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float
    rule: str = RULE


def lr_range_test(
    model: nn.Module,
    task: Task,
    bundle: DataBundle,
    *,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    seed: int,
    start_lr: float = START_LR,
    end_lr: float = END_LR,
    num_steps: int = NUM_STEPS,
    step: Step = SUPERVISED,
    settings: StepSettings = NO_EXTRAS,
) -> LRSweep:
    """Sweep the rate from `start_lr` to `end_lr` over `num_steps` training batches (fewer
    if the loss diverges), then restore `model` and `optimizer` to their state before."""
    weights = copy.deepcopy(model.state_dict())
    optimizer_state = copy.deepcopy(optimizer.state_dict())
    lrs, losses, smoothed = [], [], []
    step_data = _endless(bundle, batch_size, seed)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model.train()
            average = 0.0
            for lr in np.geomspace(start_lr, end_lr, num_steps):
                for group in optimizer.param_groups:
                    group["lr"] = float(lr)
                x, y = next(step_data)
                _, loss = step(model, task, optimizer, x, y, settings)
                lrs.append(float(lr))
                losses.append(loss.item())
                average = SMOOTHING * average + (1 - SMOOTHING) * losses[-1]
                smoothed.append(average / (1 - SMOOTHING ** len(losses)))
                if not math.isfinite(smoothed[-1]) or smoothed[-1] > DIVERGED * min(smoothed):
                    break
    finally:
        model.load_state_dict(weights)
        optimizer.load_state_dict(optimizer_state)
    finite = np.where(np.isfinite(smoothed), smoothed, np.nan)
    if np.isnan(finite).all():
        raise NeuralabError(
            "lr-find",
            f"the loss was not finite even at the smallest rate, {start_lr:g}",
            "check the data for nan/inf values",
        )
    lowest = int(np.nanargmin(finite))
    return LRSweep(lrs, losses, smoothed, suggestion=lrs[lowest] / 10)


def _endless(bundle: DataBundle, batch_size: int, seed: int) -> Iterator[tuple]:
    """Training batches, reshuffled every pass, for as long as the sweep asks."""
    order = torch.Generator().manual_seed(seed)
    while True:
        yield from batches(bundle.x_train, bundle.y_train, batch_size, order)
