"""Dense autoencoder: MLP encoder -> small latent code -> MLP decoder, shaped like the input."""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field, PositiveInt
from torch import nn

from neuralab.models.blocks import Activation, Init, init_weights, make_activation
from neuralab.models.network import NetworkConfig


class AutoEncoder(nn.Module):
    """Compresses each sample to `latent_size` numbers and reconstructs it from them.

    Any input shape works: samples are flattened on the way in and the reconstruction is
    reshaped to the input's shape on the way out. The decoder mirrors the encoder.

    Args:
        input_shape: Shape of one sample, e.g. (1, 8, 8) or (F,).
        hidden_sizes: Width of each encoder hidden layer, first to last (decoder reversed).
        latent_size: Size of the code between encoder and decoder.
        activation: Nonlinearity after each hidden layer.
        dropout: Probability of zeroing a hidden unit during training.
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        hidden_sizes: tuple[int, ...],
        latent_size: int,
        *,
        activation: Activation = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        in_features = math.prod(input_shape)
        encoder_widths = [in_features, *hidden_sizes, latent_size]
        self.encoder = self._dense(encoder_widths, activation, dropout)
        self.decoder = self._dense(encoder_widths[::-1], activation, dropout)
        self.input_shape = tuple(input_shape)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, *input_shape) -> latent codes (N, latent_size)."""
        return self.encoder(x.flatten(1))

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return self.decoder(latent).view(len(latent), *self.input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    @staticmethod
    def _dense(widths: list[int], activation: Activation, dropout: float) -> nn.Sequential:
        """Linear layers through `widths`; activation and dropout between, none after the last."""
        layers: list[nn.Module] = []
        for i, (width, size) in enumerate(zip(widths, widths[1:], strict=False)):
            layers.append(nn.Linear(width, size))
            if i < len(widths) - 2:
                layers += [make_activation(activation), nn.Dropout(dropout)]
        return nn.Sequential(*layers)


class AutoEncoderConfig(NetworkConfig):
    """The `model:` section when `family: autoencoder` (the task becomes reconstruction)."""

    family: Literal["autoencoder"] = "autoencoder"
    hidden_sizes: tuple[PositiveInt, ...] = (64,)
    latent_size: PositiveInt = 2  # two numbers per sample draw as a map in the report
    activation: Activation = "relu"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    init: Init = "auto"

    def build(self, *, input_shape: tuple[int, ...], num_outputs: int) -> AutoEncoder:
        # `num_outputs` (classes or targets) is ignored: the output is always the input's
        # shape. It is accepted so every family builds through the same call.
        del num_outputs
        model = AutoEncoder(
            input_shape,
            self.hidden_sizes,
            self.latent_size,
            activation=self.activation,
            dropout=self.dropout,
        )
        init_weights(model, self.init, self.activation)
        return model
