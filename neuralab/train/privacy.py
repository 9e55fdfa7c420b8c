"""Differentially private training (DP-SGD, Abadi et al. 2016) through Opacus.

`privacy: {epsilon: 3.0, delta: 1.0e-5, max_grad_norm: 1.0}` makes `fit` draw Poisson
batches (each sample joins each step independently with probability batch_size / N), clip
every sample's gradient to `max_grad_norm` and add Gaussian noise whose scale Opacus
calibrates so that the configured epochs spend at most `epsilon`. The spent epsilon is
logged every epoch. Layers DP-SGD cannot train are refused before anything is written.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from pydantic import Field
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from neuralab.errors import NeuralabError, Problem
from neuralab.schema import Strict
from neuralab.train.callbacks import Callback, TrainState
from neuralab.train.distributed import current
from neuralab.train.steps import TrainForward

if TYPE_CHECKING:
    from neuralab.config import Experiment
    from neuralab.family import Family


# Each step's batch is empty with probability (1 - q)^N; the sample rate q is 1 / ceil(N / B),
# so from B = 32 on that is below 1e-9. Should one come, its step still runs: noise only,
# with loss 0 (see `steps.Supervised`), as the accountant assumes.
MIN_BATCH_SIZE = 32


class PrivacyConfig(Strict):
    """The `privacy:` section: train with DP-SGD within an (epsilon, delta) budget."""

    epsilon: float = Field(gt=0.0)
    delta: float = Field(1.0e-5, gt=0.0, lt=1.0)
    max_grad_norm: float = Field(1.0, gt=0.0)
    # PRV (Gopi et al. 2021) gives tighter bounds than RDP, so less noise for the same epsilon
    accountant: Literal["prv", "rdp"] = "prv"


def experiment_problems(experiment: Experiment) -> list[Problem]:
    """Settings that DP-SGD cannot honour, each naming its key (empty without privacy)."""
    if experiment.privacy is None:
        return []
    problems = []
    if experiment.train.grad_clip is not None:
        problems.append(
            Problem(
                "train.grad_clip",
                "DP-SGD clips each sample's gradient itself",
                "remove train.grad_clip; set privacy.max_grad_norm instead",
            )
        )
    if experiment.train.batch_size < MIN_BATCH_SIZE:
        problems.append(
            Problem(
                "train.batch_size",
                f"{experiment.train.batch_size} is too small for DP-SGD's Poisson batches, "
                "which would sometimes be empty",
                f"use {MIN_BATCH_SIZE} or more",
            )
        )
    if experiment.train.compile:
        problems.append(
            Problem(
                "train.compile",
                "Opacus' per-sample gradient hooks need the eager model",
                "remove train.compile",
            )
        )
    if experiment.train.precision != 32:
        problems.append(
            Problem(
                "train.precision",
                "DP-SGD here clips and adds noise in 32-bit only",
                "remove train.precision",
            )
        )
    if current().distributed:
        problems.append(
            Problem(
                "--nproc",
                "DP-SGD trains in one process: its Poisson batches are not sharded",
                "drop --nproc",
            )
        )
    for key in ("l1", "l2"):
        if getattr(experiment.regularization, key):
            problems.append(
                Problem(
                    f"regularization.{key}",
                    "a weight penalty's gradient would bypass the per-sample clipping",
                    "remove it; optim.weight_decay is applied after the noise and is safe",
                )
            )
    return problems


def check_model(model: nn.Module, spec: Family) -> None:
    """Refuse, before training, every layer DP-SGD cannot train, naming it and the fix."""
    from opacus.utils.module_utils import trainable_modules
    from opacus.validators import ModuleValidator

    if isinstance(model, TrainForward):  # Opacus' wrapper calls `forward` only
        raise NeuralabError(
            "privacy",
            f"'{spec.family}' trains through its own forward_train (teacher forcing, a VAE's "
            "KL term), which DP-SGD's wrapper does not call",
            "use mlp, cnn (batch_norm: false) or a plain autoencoder",
        )
    refused: dict[type[nn.Module], list[str]] = {}
    for name, module in trainable_modules(model):
        validate = ModuleValidator.VALIDATORS.get(type(module))
        if validate is not None and validate(module):
            refused.setdefault(type(module), []).append(name)
    problems = []
    for kind, names in refused.items():
        shown = ", ".join(f"'{n}'" for n in names[:3])
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        layers = "layer" if len(names) == 1 else "layers"
        what = f"{layers} {shown}{more} ({kind.__name__}) cannot be trained with DP-SGD"
        problems.append(Problem("privacy", what, _fix(kind, spec)))
    if problems:
        raise NeuralabError.many(problems)


def _fix(kind: type[nn.Module], spec: Family) -> str:
    if issubclass(kind, nn.modules.batchnorm._BatchNorm):
        # one sample's output (and gradient) depends on the others: no per-sample clipping
        fix = (
            spec.without_batch_norm
            or f"{spec.family} has no group-norm option yet; use cnn with batch_norm: false"
        )
        return f"batch norm mixes the samples of a batch; DP-SGD needs group norm or none: {fix}"
    return f"Opacus needs its own version of {kind.__name__}; use mlp or cnn (batch_norm: false)"


@dataclass
class PrivateTraining:
    """What `fit` needs for DP-SGD: the wrapped model and optimizer, the batch sampler and
    the accountant's per-epoch report."""

    model: nn.Module  # Opacus' GradSampleModule around the original model
    optimizer: torch.optim.Optimizer  # Opacus' DPOptimizer around the original optimizer
    accounting: PrivacyAccounting
    sample_rate: float
    noise_multiplier: float

    def draw_batches(self, num_samples: int, generator: torch.Generator) -> list[torch.Tensor]:
        """One epoch of Poisson batches (sizes vary; each sample is in each with rate q)."""
        from opacus.utils.uniform_sampler import UniformWithReplacementSampler

        sampler = UniformWithReplacementSampler(
            num_samples=num_samples, sample_rate=self.sample_rate, generator=generator
        )
        return [torch.tensor(batch, dtype=torch.long) for batch in sampler]

    def summary(self) -> dict[str, Any]:
        """For the card: the budget asked for and what the steps taken spent."""
        config = self.accounting.config
        return {
            "epsilon_target": config.epsilon,
            "epsilon_spent": self.accounting.epsilon(),
            "delta": config.delta,
            "max_grad_norm": config.max_grad_norm,
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "accountant": config.accountant,
        }


def make_private(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    config: PrivacyConfig,
    *,
    epochs: int,
    batch_size: int,
) -> PrivateTraining:
    """Wrap model and optimizer with Opacus, noise calibrated to spend `config.epsilon`
    over `epochs` epochs of Poisson batches of expected size `batch_size`."""
    from opacus import PrivacyEngine

    # The loader only tells Opacus the sample rate (1 / its length); `fit` draws the
    # batches itself, with Opacus' Poisson sampler, from the run's seeded generator.
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=batch_size)
    with quiet():
        engine = PrivacyEngine(accountant=config.accountant)
        private_model, private_optimizer, private_loader = engine.make_private_with_epsilon(
            module=model,
            optimizer=optimizer,
            data_loader=loader,
            target_epsilon=config.epsilon,
            target_delta=config.delta,
            epochs=epochs,
            max_grad_norm=config.max_grad_norm,
            poisson_sampling=True,
        )
    return PrivateTraining(
        private_model,
        private_optimizer,
        PrivacyAccounting(engine, config),
        private_loader.sample_rate,
        private_optimizer.noise_multiplier,
    )


class PrivacyAccounting(Callback):
    """Adds `epsilon` (spent so far, at the configured delta) to every epoch's metrics.

    Must run before `MetricsLog` so the value lands in `metrics.jsonl`. Its state is the
    accountant's history of noisy steps, so a resumed run keeps counting from there.
    """

    def __init__(self, engine: Any, config: PrivacyConfig) -> None:
        self.engine, self.config = engine, config

    def epsilon(self) -> float:
        with quiet():
            return float(self.engine.get_epsilon(self.config.delta))

    def on_epoch_end(self, state: TrainState) -> None:
        state.metrics["epsilon"] = self.epsilon()
        state.history[-1]["epsilon"] = state.metrics["epsilon"]

    def state_dict(self) -> dict[str, Any]:
        return self.engine.accountant.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.engine.accountant.load_state_dict(state)


@contextmanager
def quiet() -> Iterator[None]:
    """Silence three known, harmless warnings of DP training (anything else still shows)."""
    with warnings.catch_warnings():
        # Noise comes from torch's seeded generator so runs repeat and resume exactly;
        # docs/trust.md says why that is not cryptographically secure noise.
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        # The PRV accountant uses an RDP bound only to size its numerical domain.
        warnings.filterwarnings("ignore", message="Optimal order is the")
        # Opacus' per-sample hooks on the first layer, whose input needs no gradient.
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        yield
