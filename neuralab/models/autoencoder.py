"""Autoencoder, dense or convolutional, optionally variational: input -> small latent code -> input.

The variational form (Kingma & Welling 2014) encodes each sample as a Gaussian (mean and
log-variance), decodes a draw from it while training, and adds the KL divergence from the
standard normal prior, weighted by `beta` (Higgins et al. 2017): `forward_train` returns
it as the extra loss the training step adds (`neuralab/train/steps.py`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar, Literal

import torch
from pydantic import Field, PositiveInt
from torch import nn

from neuralab.models.blocks import (
    Activation,
    Init,
    conv_block,
    halvable_shape,
    init_weights,
    make_activation,
    upsample_block,
)
from neuralab.models.network import NetworkConfig
from neuralab.tasks import LossName, Reconstruction, Task

if TYPE_CHECKING:
    from neuralab.data import DataMeta


class AutoEncoder(nn.Module):
    """Compresses each sample to `latent_size` numbers and reconstructs it from them.

    `dense`: samples are flattened, pass through `hidden_sizes`, and the reconstruction is
    reshaped to the input's shape; the decoder mirrors the encoder. `conv`: conv blocks
    (conv, batch norm, activation, 2x max pooling) per entry of `channels`, a linear layer
    to the code; the decoder doubles back with transposed convolutions.

    Args:
        input_shape: Shape of one sample, e.g. (1, 8, 8) or (F,); `conv` needs (C, L) or
            (C, H, W) with each size divisible by 2 ** len(channels).
        hidden_sizes: Width of each dense encoder layer, first to last (decoder reversed).
        latent_size: Size of the code between encoder and decoder.
        kind: `dense` or `conv`.
        channels: Channels of each conv encoder block, first to last (decoder reversed).
        activation: Nonlinearity after each hidden layer.
        dropout: Probability of zeroing a hidden unit during training (dense only).
    """

    codes_per_latent = 1  # numbers the encoder emits per latent dimension

    def __init__(
        self,
        input_shape: tuple[int, ...],
        hidden_sizes: tuple[int, ...],
        latent_size: int,
        *,
        kind: Literal["dense", "conv"] = "dense",
        channels: tuple[int, ...] = (16, 32),
        activation: Activation = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.input_shape, self.latent_size = tuple(input_shape), latent_size
        code_size = self.codes_per_latent * latent_size
        self.dense = kind == "dense"  # dense layers see flat samples
        if self.dense:
            widths = [math.prod(input_shape), *hidden_sizes]
            self.encoder = self._dense([*widths, code_size], activation, dropout)
            self.decoder = self._dense([latent_size, *widths[::-1]], activation, dropout)
        else:
            self.encoder, self.decoder = self._conv(channels, code_size, activation)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, *input_shape) -> latent codes (N, latent_size); a VAE's posterior means."""
        return self._code(x)[:, : self.latent_size]

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        # shape[0], not len(): a traced or exported graph keeps the batch size dynamic
        return self.decoder(latent).view(latent.shape[0], *self.input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self._code(x))

    def _code(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.flatten(1) if self.dense else x)

    def _conv(
        self, channels: tuple[int, ...], code_size: int, activation: Activation
    ) -> tuple[nn.Sequential, nn.Sequential]:
        start = halvable_shape("autoencoder", self.input_shape, len(channels))
        dims: Literal[1, 2] = 1 if len(self.input_shape) == 2 else 2
        widths = [self.input_shape[0], *channels]
        features = channels[-1] * math.prod(start)
        down = [
            conv_block(
                dims, a, b, kernel_size=3, batch_norm=True, activation=activation, pool="max"
            )
            for a, b in zip(widths, widths[1:], strict=False)
        ]
        encoder = nn.Sequential(*down, nn.Flatten(), nn.Linear(features, code_size))
        up = []
        for i, (a, b) in enumerate(zip(widths[::-1], widths[::-1][1:], strict=False)):
            last = i == len(channels) - 1  # emits standardised values: no norm, no activation
            up.append(
                upsample_block(
                    dims, a, b, batch_norm=not last, activation=None if last else activation
                )
            )
        decoder = nn.Sequential(
            nn.Linear(self.latent_size, features),
            make_activation(activation),
            nn.Unflatten(1, (channels[-1], *start)),
            *up,
        )
        return encoder, decoder

    @staticmethod
    def _dense(widths: list[int], activation: Activation, dropout: float) -> nn.Sequential:
        """Linear layers through `widths`; activation and dropout between, none after the last."""
        layers: list[nn.Module] = []
        for i, (width, size) in enumerate(zip(widths, widths[1:], strict=False)):
            layers.append(nn.Linear(width, size))
            if i < len(widths) - 2:
                layers += [make_activation(activation), nn.Dropout(dropout)]
        return nn.Sequential(*layers)


class VariationalAutoEncoder(AutoEncoder):
    """An autoencoder whose encoder gives a Gaussian per sample: a mean and a log-variance
    for each latent dimension. Training (`forward_train`) decodes a draw from it (the
    reparameterisation trick) and returns `beta` x its KL divergence from N(0, I) as the
    extra loss; evaluation decodes the mean. `sample` decodes draws from the prior.

    Args:
        beta: Weight of the KL term (1 is the plain VAE; more pulls codes to the prior).
        The others: as for `AutoEncoder`.
    """

    codes_per_latent = 2  # mean and log-variance

    def __init__(
        self,
        input_shape: tuple[int, ...],
        hidden_sizes: tuple[int, ...],
        latent_size: int,
        *,
        beta: float = 1.0,
        kind: Literal["dense", "conv"] = "dense",
        channels: tuple[int, ...] = (16, 32),
        activation: Activation = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__(
            input_shape,
            hidden_sizes,
            latent_size,
            kind=kind,
            channels=channels,
            activation=activation,
            dropout=dropout,
        )
        self.beta = beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, log_var = self._code(x).chunk(2, dim=1)
        if not self.training:  # evaluation reconstructs from the mean: no sampling noise
            return self.decode(mean)
        return self.decode(_draw(mean, log_var))

    def forward_train(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The reconstruction of a draw from each sample's posterior, and beta x its KL
        term per input value: the MSE loss is a mean over values, so their sum is the
        negative ELBO of a Gaussian decoder (variance 1/2) divided by the values per sample.
        """
        del y  # the target is the input itself
        mean, log_var = self._code(x).chunk(2, dim=1)
        reconstruction = self.decode(_draw(mean, log_var))
        return reconstruction, self.beta * _kl(mean, log_var) / math.prod(self.input_shape)

    def kl_divergence(self, x: torch.Tensor) -> torch.Tensor:
        """KL(posterior of x || N(0, I)) in nats per sample (unweighted), averaged over `x`."""
        return _kl(*self._code(x).chunk(2, dim=1))

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """`n` new samples (standardised units) decoded from draws of the N(0, I) prior;
        the noise is drawn on the CPU, so a seed gives the same draws on every device."""
        noise = torch.randn(n, self.latent_size, generator=generator)
        return self.decode(noise.to(next(self.decoder.parameters()).device))


def _draw(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """One draw from N(mean, exp(log_var)) that gradients flow through (reparameterised)."""
    return mean + (0.5 * log_var).exp() * torch.randn_like(mean)


def _kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, var) || N(0, I)) per sample, summed over the latent dimensions, averaged
    over the batch."""
    return 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).sum(dim=1).mean()


class AutoEncoderConfig(NetworkConfig):
    """The `model:` section when `family: autoencoder` (the task becomes reconstruction)."""

    family: Literal["autoencoder"] = "autoencoder"
    without_batch_norm: ClassVar[str | None] = "set model.kind: dense"
    data_tasks: ClassVar[tuple[str, ...]] = ("classification", "regression")
    kind: Literal["dense", "conv"] = "dense"
    hidden_sizes: tuple[PositiveInt, ...] = (64,)  # dense
    channels: tuple[PositiveInt, ...] = Field((16, 32), min_length=1)  # conv
    latent_size: PositiveInt = 2  # two numbers per sample draw as a map in the report
    variational: bool = False
    beta: float = Field(1.0, ge=0.0)  # weight of the KL term, when variational
    activation: Activation = "relu"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    init: Init = "auto"

    def task(self, meta: DataMeta, loss: LossName) -> Task:
        """The target is the input; the data's labels stay for the report."""
        Reconstruction.check_loss(loss)
        return Reconstruction()

    def build(self, *, input_shape: tuple[int, ...], num_outputs: int) -> AutoEncoder:
        # `num_outputs` (classes or targets) is ignored: the output is always the input's
        # shape. It is accepted so every family builds through the same call.
        del num_outputs
        family, extra = (
            (VariationalAutoEncoder, {"beta": self.beta}) if self.variational else (AutoEncoder, {})
        )
        model = family(
            input_shape,
            self.hidden_sizes,
            self.latent_size,
            kind=self.kind,
            channels=self.channels,
            activation=self.activation,
            dropout=self.dropout,
            **extra,
        )
        init_weights(model, self.init, self.activation)
        return model
