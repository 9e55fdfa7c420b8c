"""Optimizers and learning-rate schedules, one config class each, built from the parameters.

The unions `OptimizerConfig` and `ScheduleConfig` are their registries (discriminated on
`name`), read like the model registry.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import Field, PlainValidator, PositiveFloat

from neuralab.errors import NeuralabError
from neuralab.schema import Strict

# Parameters, or parameter groups (`{"params": [...], "lr": ...}`) as torch takes them.
Params = Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]]


def _learning_rate(value: object) -> float | str:
    if value == "auto":
        return "auto"
    try:
        rate = float(value)  # type: ignore[arg-type]  # YAML reads `1e-3` as a string
    except (TypeError, ValueError):
        rate = math.nan
    if isinstance(value, bool) or math.isnan(rate):
        raise ValueError(f"Input should be a number or 'auto', got {value!r}")
    if not 0 < rate < math.inf:
        raise ValueError(f"Input should be greater than 0, got {value!r}")
    return rate


# A positive rate, or "auto": found by the learning-rate range test when training starts.
LearningRate = Annotated[float | Literal["auto"], PlainValidator(_learning_rate)]


def resolved_lr(lr: float | str) -> float:
    if isinstance(lr, str):  # train() and compare() resolve "auto" before building
        raise NeuralabError(
            "optim.lr",
            "'auto' is found by the learning-rate range test, which has not run here",
            "train with neuralab.train, or set a number",
        )
    return lr


class OptimizerBase(Strict):
    """Keys every optimizer shares."""

    # name prefix -> lr multiplier (discriminative rates: `{features: 0.1}` trains the
    # body at a tenth of `lr`); the longest matching prefix wins, the rest get 1
    param_groups: dict[str, PositiveFloat] = Field(default_factory=dict)


class SGDConfig(OptimizerBase):
    """Stochastic gradient descent, with optional (Nesterov) momentum."""

    name: Literal["sgd"] = "sgd"
    lr: LearningRate = 0.01
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    nesterov: bool = False
    weight_decay: float = Field(0.0, ge=0.0)

    def build(self, params: Params) -> torch.optim.Optimizer:
        return torch.optim.SGD(
            params,
            lr=resolved_lr(self.lr),
            momentum=self.momentum,
            nesterov=self.nesterov and self.momentum > 0,
            weight_decay=self.weight_decay,
        )


class AdagradConfig(OptimizerBase):
    """Adagrad: per-parameter rates shrinking with the sum of squared gradients."""

    name: Literal["adagrad"] = "adagrad"
    lr: LearningRate = 0.01
    weight_decay: float = Field(0.0, ge=0.0)

    def build(self, params: Params) -> torch.optim.Optimizer:
        return torch.optim.Adagrad(params, lr=resolved_lr(self.lr), weight_decay=self.weight_decay)


class RMSpropConfig(OptimizerBase):
    """RMSprop: rates scaled by a running average of squared gradients."""

    name: Literal["rmsprop"] = "rmsprop"
    lr: LearningRate = 0.001
    alpha: float = Field(0.99, gt=0.0, lt=1.0)
    momentum: float = Field(0.0, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.0, ge=0.0)

    def build(self, params: Params) -> torch.optim.Optimizer:
        return torch.optim.RMSprop(
            params,
            lr=resolved_lr(self.lr),
            alpha=self.alpha,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
        )


class AdamConfig(OptimizerBase):
    """Adam (Kingma & Ba 2015); weight_decay is the classic L2-in-the-gradient form."""

    name: Literal["adam"] = "adam"
    lr: LearningRate = 0.001
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(0.0, ge=0.0)

    def build(self, params: Params) -> torch.optim.Optimizer:
        return torch.optim.Adam(
            params, lr=resolved_lr(self.lr), betas=self.betas, weight_decay=self.weight_decay
        )


class AdamWConfig(OptimizerBase):
    """AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay."""

    name: Literal["adamw"] = "adamw"
    lr: LearningRate = 0.001
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(0.01, ge=0.0)

    def build(self, params: Params) -> torch.optim.Optimizer:
        return torch.optim.AdamW(
            params, lr=resolved_lr(self.lr), betas=self.betas, weight_decay=self.weight_decay
        )


OptimizerConfig = Annotated[
    SGDConfig | AdagradConfig | RMSpropConfig | AdamConfig | AdamWConfig,
    Field(discriminator="name"),
]


class NoScheduleConfig(Strict):
    """A constant learning rate."""

    name: Literal["none"] = "none"
    interval: ClassVar[str] = "epoch"

    def build(self, optimizer, *, epochs: int, steps_per_epoch: int) -> None:
        return None


class StepScheduleConfig(Strict):
    """Multiply the rate by `gamma` every `step_size` epochs."""

    name: Literal["step"] = "step"
    step_size: int = Field(10, ge=1)
    gamma: float = Field(0.1, gt=0.0, le=1.0)
    interval: ClassVar[str] = "epoch"

    def build(self, optimizer, *, epochs: int, steps_per_epoch: int):
        return torch.optim.lr_scheduler.StepLR(optimizer, self.step_size, self.gamma)


class CosineScheduleConfig(Strict):
    """Cosine annealing from the optimizer's rate to `min_lr` over all epochs."""

    name: Literal["cosine"] = "cosine"
    min_lr: float = Field(0.0, ge=0.0)
    interval: ClassVar[str] = "epoch"

    def build(self, optimizer, *, epochs: int, steps_per_epoch: int):
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs, eta_min=self.min_lr)


class OneCycleScheduleConfig(Strict):
    """One-cycle (Smith 2018): warm up to `max_lr_factor` x lr, then anneal; stepped per batch."""

    name: Literal["onecycle"] = "onecycle"
    max_lr_factor: float = Field(10.0, ge=1.0)
    pct_start: float = Field(0.3, gt=0.0, lt=1.0)
    interval: ClassVar[str] = "step"

    def build(self, optimizer, *, epochs: int, steps_per_epoch: int):
        max_lr = [group["lr"] * self.max_lr_factor for group in optimizer.param_groups]
        # momentum is cycled against the rate only where the optimizer has one to cycle
        defaults = optimizer.defaults
        has_momentum = "betas" in defaults or defaults.get("momentum", 0) > 0
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=max_lr,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            pct_start=self.pct_start,
            cycle_momentum=has_momentum,
        )


ScheduleConfig = Annotated[
    NoScheduleConfig | StepScheduleConfig | CosineScheduleConfig | OneCycleScheduleConfig,
    Field(discriminator="name"),
]
