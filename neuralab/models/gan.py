"""Generative adversarial network (DCGAN-style): a conv generator against a conv discriminator.

Radford et al. 2016: no pooling (stride-2 convolutions down, stride-2 transposed
convolutions up), batch norm in both players except the discriminator's first layer,
ReLU in the generator, LeakyReLU(0.2) in the discriminator, N(0, 0.02) weights. The
discriminator also sees how varied its batch is (`MinibatchStd`), which keeps the
generator from collapsing onto a few digits.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar, Literal

import torch
from pydantic import Field, PositiveInt
from torch import nn

from neuralab.models.blocks import Init, halvable_shape, init_weights, upsample_block
from neuralab.models.network import NetworkConfig
from neuralab.tasks import Adversarial, LossName, Task
from neuralab.train.steps import Adversarial as AdversarialStep
from neuralab.train.steps import Step

if TYPE_CHECKING:
    from neuralab.data import DataMeta

# Validation and test score the generator on the same noise every epoch, so their
# numbers compare across epochs.
EVAL_NOISE_SEED = 0


class MinibatchStd(nn.Module):
    """Appends one feature to every sample: the batch's standard deviation, averaged over
    features. A batch of near-identical generated samples then stands out, so the
    generator gains nothing by collapsing onto a few modes (Karras et al. 2018, ProGAN,
    section 3). Input and output (B, F) and (B, F + 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spread = x.std(dim=0, unbiased=False).mean()
        return torch.cat([x, spread.expand(len(x), 1)], dim=1)


class GAN(nn.Module):
    """A generator of samples shaped like the input, and a discriminator that tells them
    from real ones, trained against each other by the `Adversarial` step.

    `forward(x)` gives, per sample, the discriminator's logits for `x` and for one
    generated sample (from fixed noise when evaluating), shape (N, 2).

    Args:
        input_shape: (channels, length) for sequences or (channels, height, width) for
            images; every spatial size divisible by 2 ** len(channels).
        latent_size: Size of the noise vector the generator starts from.
        channels: Generator widths, widest first (each doubles the spatial size); the
            discriminator uses them reversed.
        batch_norm: Batch norm in both players (not on the discriminator's first layer).
        minibatch_std: Show the discriminator each batch's spread (`MinibatchStd`).
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        latent_size: int,
        channels: tuple[int, ...],
        *,
        batch_norm: bool = True,
        minibatch_std: bool = True,
    ) -> None:
        super().__init__()
        start = halvable_shape("gan", input_shape, len(channels))
        dims: Literal[1, 2] = 1 if len(input_shape) == 2 else 2
        self.latent_size = latent_size
        self.generator = self._generator(input_shape[0], start, channels, dims, batch_norm)
        self.discriminator = self._discriminator(
            input_shape[0], start, channels, dims, batch_norm, minibatch_std
        )

    def _generator(self, out_channels, start, channels, dims, batch_norm) -> nn.Sequential:
        widths = [*channels, out_channels]
        layers: list[nn.Module] = [
            nn.Linear(self.latent_size, channels[0] * math.prod(start)),
            nn.Unflatten(1, (channels[0], *start)),
        ]
        if batch_norm:
            layers.append(nn.BatchNorm1d(channels[0]) if dims == 1 else nn.BatchNorm2d(channels[0]))
        layers.append(nn.ReLU())
        for i, (width, size) in enumerate(zip(widths, widths[1:], strict=False)):
            last = i == len(widths) - 2
            # The last layer emits standardised values: no norm, no squashing activation.
            layers.append(
                upsample_block(
                    dims,
                    width,
                    size,
                    batch_norm=batch_norm and not last,
                    activation=None if last else "relu",
                )
            )
        return nn.Sequential(*layers)

    @staticmethod
    def _discriminator(
        in_channels, start, channels, dims, batch_norm, minibatch_std
    ) -> nn.Sequential:
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        norm = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
        widths = [in_channels, *channels[::-1]]
        layers: list[nn.Module] = []
        for i, (width, size) in enumerate(zip(widths, widths[1:], strict=False)):
            normed = batch_norm and i > 0
            layers.append(conv(width, size, 4, 2, 1, bias=not normed))  # halves each size
            if normed:
                layers.append(norm(size))
            layers.append(nn.LeakyReLU(0.2))
        features = channels[0] * math.prod(start)
        layers.append(nn.Flatten())
        if minibatch_std:
            layers.append(MinibatchStd())
        layers.append(nn.Linear(features + int(minibatch_std), 1))
        return nn.Sequential(*layers)

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """`n` generated samples (standardised units), from noise drawn with `generator` on
        the CPU, so a seed gives the same draws on every device."""
        noise = torch.randn(n, self.latent_size, generator=generator)
        return self.generator(noise.to(next(self.generator.parameters()).device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        generator = None if self.training else torch.Generator().manual_seed(EVAL_NOISE_SEED)
        fake = self.sample(len(x), generator=generator)
        return torch.cat([self.discriminator(x), self.discriminator(fake)], dim=1)


class GANConfig(NetworkConfig):
    """The `model:` section when `family: gan` (the task becomes adversarial)."""

    family: Literal["gan"] = "gan"
    data_tasks: ClassVar[tuple[str, ...]] = ("classification", "regression")
    latent_size: PositiveInt = 32
    channels: tuple[PositiveInt, ...] = Field((64, 32), min_length=1)
    batch_norm: bool = True
    minibatch_std: bool = True
    init: Init = "normal"  # N(0, 0.02), as in DCGAN
    samples_every: PositiveInt | None = 5  # epochs between samples.png grids; null: end only

    def task(self, meta: DataMeta, loss: LossName) -> Task:
        """Two players against each other; the data's labels are unused."""
        return Adversarial()

    def step(self) -> Step:
        return AdversarialStep()

    def export_refusal(self) -> tuple[str, str] | None:
        return (
            "'gan' draws noise inside its forward pass (the discriminator's logits on real "
            "and generated samples), so no fixed graph of it can be checked or served",
            "make samples with `neuralab generate RUN`, or serve it with `--runtime torch`",
        )

    def build(self, *, input_shape: tuple[int, ...], num_outputs: int) -> GAN:
        # `num_outputs` (classes) is ignored: a GAN is trained without labels.
        del num_outputs
        model = GAN(
            input_shape,
            self.latent_size,
            self.channels,
            batch_norm=self.batch_norm,
            minibatch_std=self.minibatch_std,
        )
        init_weights(model, self.init, "leaky_relu")
        return model
