"""Training steps: what one batch does to the weights, as an object the family chooses.

`fit` owns the loop (batches, callbacks, checkpoints); a `Step` owns one update: the
forward pass and loss under the placement's autocast, backward (through the fp16 gradient
scaler), gradient clipping and the optimizer step. `Supervised` serves every family whose
loss is the task's loss of its output, plus the extra term a model may return from
`forward_train`; `Adversarial` takes a GAN's two updates, discriminator then generator.
A family names its step (`NetworkConfig.step()`), and a step names the settings it cannot
honour, so they are refused by key before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast, runtime_checkable

import torch
from torch import nn

from neuralab.errors import Problem
from neuralab.tasks import Task, discriminator_loss, generator_loss
from neuralab.train.device import CPU, Placement
from neuralab.train.distributed import current

if TYPE_CHECKING:
    from neuralab.config import Experiment


@dataclass(frozen=True)
class StepSettings:
    """What changes each step's math besides the model and the optimizer."""

    grad_clip: float | None = None
    l1: float = 0.0
    l2: float = 0.0
    input_noise: float = 0.0

    @classmethod
    def of(cls, experiment: Experiment) -> StepSettings:
        reg = experiment.regularization
        return cls(experiment.train.grad_clip, reg.l1, reg.l2, reg.input_noise)


NO_EXTRAS = StepSettings()


@runtime_checkable
class TrainForward(Protocol):
    """A model whose training pass needs more than `forward(x)`: the targets (a decoder
    reading the true previous tokens: teacher forcing) or a loss term of its own (a VAE's
    KL divergence), returned rather than kept on the module. None: no extra term."""

    def forward_train(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]: ...


class Step(Protocol):
    """One optimisation step on one batch; returns the batch's output and its loss.

    `refused_settings` maps each experiment key the step cannot honour (`--nproc` for
    multi-process training) to the reason, shown when the key is set.
    """

    refused_settings: ClassVar[Mapping[str, str]]

    def __call__(
        self,
        model: nn.Module,
        task: Task,
        optimizer: torch.optim.Optimizer,
        x: torch.Tensor,
        y: torch.Tensor,
        settings: StepSettings = NO_EXTRAS,
        placement: Placement = CPU,
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass(frozen=True)
class Supervised:
    """The task's loss of the model's output (plus a `TrainForward` model's extra term and
    the L1/L2 penalties), one backward pass, one optimizer step."""

    refused_settings: ClassVar[Mapping[str, str]] = MappingProxyType({})

    def __call__(
        self,
        model: nn.Module,
        task: Task,
        optimizer: torch.optim.Optimizer,
        x: torch.Tensor,
        y: torch.Tensor,
        settings: StepSettings = NO_EXTRAS,
        placement: Placement = CPU,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if settings.input_noise:
            x = x + settings.input_noise * torch.randn_like(x)
        with placement.autocast():
            output, loss = training_loss(model, task, x, y)
            if settings.l1 or settings.l2:
                loss = loss + weight_penalty(model, settings.l1, settings.l2)
            if not len(y):  # an empty DP-SGD Poisson batch: no sample weighs in (a mean is NaN),
                loss = output.sum()  # but its noise-only step must run, as the accountant counts
        optimizer.zero_grad(set_to_none=True)
        clipped = list(model.parameters()) if settings.grad_clip else []  # 6 µs a step
        _update(loss, optimizer, clipped, settings.grad_clip, placement)
        return output, loss


SUPERVISED = Supervised()


@runtime_checkable
class TwoPlayers(Protocol):
    """What the adversarial step trains: a generator of samples and a discriminator."""

    generator: nn.Module
    discriminator: nn.Module

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor: ...


@dataclass(frozen=True)
class Adversarial:
    """A GAN's two updates through the one optimizer over both players: the discriminator
    learns to tell the batch from generated samples, then the generator learns to fool the
    updated discriminator. Each update runs under the placement's autocast and gradient
    scaler and clips its own player's gradients.

    Returns the discriminator's (real, fake) logits from its update, (N, 2), and the loss
    the adversarial task computes from them.
    """

    refused_settings: ClassVar[Mapping[str, str]] = MappingProxyType(
        {
            "train.loss": "the adversarial task fixes both players' losses",
            "train.early_stopping": "the players' losses measure no sample quality worth "
            "stopping on; look at samples.png",
            "train.compile": "the step calls each player on its own, and compile wraps the "
            "model's forward only",
            "regularization.l1": "a weight penalty would need a term per player; "
            "optim.weight_decay applies to both",
            "regularization.l2": "a weight penalty would need a term per player; "
            "optim.weight_decay applies to both",
            "regularization.input_noise": "noise on the real samples alone would tell them "
            "from generated ones",
            "privacy": "DP-SGD clips and noises one loss per step; the adversarial step takes two",
            "--nproc": "DDP synchronises gradients through forward, which the adversarial "
            "step does not call",
        }
    )

    def __call__(
        self,
        model: nn.Module,
        task: Task,
        optimizer: torch.optim.Optimizer,
        x: torch.Tensor,
        y: torch.Tensor,
        settings: StepSettings = NO_EXTRAS,
        placement: Placement = CPU,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(model, TwoPlayers):
            raise TypeError(f"the adversarial step trains a GAN, not {type(model).__name__}")
        with placement.autocast():
            fake = model.sample(len(x))
            # fake is detached: this loss reaches the discriminator only
            real_logit = model.discriminator(x)
            fake_logit = model.discriminator(fake.detach())
            loss = discriminator_loss(real_logit, fake_logit)
        _update_player(model.discriminator, loss, optimizer, settings.grad_clip, placement)
        with placement.autocast():
            loss = generator_loss(model.discriminator(fake))
        _update_player(model.generator, loss, optimizer, settings.grad_clip, placement)
        output = torch.cat([real_logit, fake_logit], dim=1).detach().float()
        return output, task.loss(output, y)


def training_loss(
    model: nn.Module, task: Task, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The output and loss of the forward pass training takes: a `TrainForward` model's
    `forward_train` and its extra term (a VAE's KL divergence), else `model(x)`."""
    if not trains_forward(type(model)):
        output = model(x)
        return output, task.loss(output, y)
    output, extra_loss = cast(TrainForward, model).forward_train(x, y)
    loss = task.loss(output, y)
    return output, loss if extra_loss is None else loss + extra_loss


_TRAINS_FORWARD: dict[type, bool] = {}


def trains_forward(cls: type) -> bool:
    """Whether models of this class are `TrainForward`, asked once per class: a protocol
    check on every step cost the digits MLP 8% of its epoch (issue 9's overhead benchmark)."""
    if cls not in _TRAINS_FORWARD:
        _TRAINS_FORWARD[cls] = issubclass(cls, TrainForward)
    return _TRAINS_FORWARD[cls]


def weight_penalty(model: nn.Module, l1: float, l2: float) -> torch.Tensor:
    """L1 and L2 penalties over weight matrices and kernels (not biases or norm scales)."""
    weights = [p for p in model.parameters() if p.ndim > 1]
    penalty = torch.zeros(())
    if l1:
        penalty = penalty + l1 * sum(w.abs().sum() for w in weights)
    if l2:
        penalty = penalty + l2 * sum(w.pow(2).sum() for w in weights)
    return penalty


def setting_problems(step: Step, experiment: Experiment) -> list[Problem]:
    """Each setting of `experiment` that `step` refuses and that is set, with the reason."""
    return [
        Problem(
            key,
            f"the {type(step).__name__.lower()} training step cannot honour it: {why}",
            f"remove {key}",
        )
        for key, why in step.refused_settings.items()
        if _is_set(experiment, key)
    ]


def _is_set(experiment: Experiment, key: str) -> bool:
    """Whether the dotted config `key` differs from its default."""
    if key == "--nproc":  # a launch option, not a key of the experiment
        return current().distributed
    *sections, name = key.split(".")
    owner: Any = experiment
    for section in sections:
        owner = getattr(owner, section)
    default = type(owner).model_fields[name].get_default(call_default_factory=True)
    return getattr(owner, name) != default


def _update_player(
    player: nn.Module,
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    grad_clip: float | None,
    placement: Placement,
) -> None:
    """One update of one player through the optimizer over both. Gradients flow into its
    own parameters only, and PyTorch optimizers skip parameters without one: the other
    player stays put (a generator's loss passes through the discriminator)."""
    parameters = [p for p in player.parameters() if p.requires_grad]
    if not parameters:  # the whole player is frozen (model.freeze)
        return
    optimizer.zero_grad(set_to_none=True)
    _update(loss, optimizer, parameters, grad_clip, placement, inputs=parameters)


def _update(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    parameters: list[nn.Parameter],
    grad_clip: float | None,
    placement: Placement,
    *,
    inputs: list[nn.Parameter] | None = None,
) -> None:
    """Backward (into `inputs` only, if given), clip `parameters`' gradient norm, and take
    one optimizer step.

    With fp16 the loss is scaled before backward and the gradients unscaled before
    clipping; the scaler skips a step whose scaled gradients overflowed.
    """
    scaler = placement.scaler
    if scaler is None:
        loss.backward(inputs=inputs)
        if grad_clip:
            nn.utils.clip_grad_norm_(parameters, grad_clip)
        optimizer.step()
        return
    scaler.scale(loss).backward(inputs=inputs)
    if grad_clip:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(parameters, grad_clip)
    scaler.step(optimizer)
    scaler.update()
