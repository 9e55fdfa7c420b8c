"""Convolutional network: conv blocks (conv -> norm -> activation -> pool), then a linear head.

1-D convolutions for sequences (C, L), 2-D for images (C, H, W): the data decides.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, PositiveInt
from torch import nn

from neuralab.models.backbone import FeaturesAndHead
from neuralab.models.blocks import (
    Activation,
    Init,
    OddKernelSize,
    conv_block,
    init_weights,
    require_sequence_or_image,
)
from neuralab.models.network import NetworkConfig


class CNN(FeaturesAndHead):
    """A plain convolutional classifier or regressor.

    Args:
        input_shape: (channels, length) for sequences or (channels, height, width) for images.
        channels: Output channels of each conv block, first to last.
        num_outputs: Number of output units.
        kernel_size: Odd kernel size of every convolution.
        activation: Nonlinearity after each convolution.
        batch_norm: Batch norm after each convolution.
        pool: Halve the spatial size after each block while it is at least 2.
        dropout: Dropout before the head.
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        channels: tuple[int, ...],
        num_outputs: int,
        *,
        kernel_size: int = 3,
        activation: Activation = "relu",
        batch_norm: bool = True,
        pool: Literal["max", "avg", "none"] = "max",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        dims: Literal[1, 2] = 1 if len(input_shape) == 2 else 2
        in_channels, spatial = input_shape[0], list(input_shape[1:])
        blocks = []
        for out_channels in channels:
            block_pool = pool if min(spatial) >= 2 else "none"
            blocks.append(
                conv_block(
                    dims,
                    in_channels,
                    out_channels,
                    kernel_size=kernel_size,
                    batch_norm=batch_norm,
                    activation=activation,
                    pool=block_pool,
                )
            )
            if block_pool != "none":
                spatial = [s // 2 for s in spatial]
            in_channels = out_channels
        self.features = nn.Sequential(*blocks, nn.Flatten())
        width = in_channels
        for s in spatial:
            width *= s
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, num_outputs))


class CNNConfig(NetworkConfig):
    """The `model:` section when `family: cnn`."""

    family: Literal["cnn"] = "cnn"
    without_batch_norm: ClassVar[str | None] = "set model.batch_norm: false"
    channels: tuple[PositiveInt, ...] = Field((32, 64), min_length=1)
    kernel_size: OddKernelSize = 3
    activation: Activation = "relu"
    batch_norm: bool = True
    pool: Literal["max", "avg", "none"] = "max"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    init: Init = "auto"

    def build(self, *, input_shape: tuple[int, ...], num_outputs: int) -> CNN:
        require_sequence_or_image("cnn", input_shape)
        model = CNN(
            input_shape,
            self.channels,
            num_outputs,
            kernel_size=self.kernel_size,
            activation=self.activation,
            batch_norm=self.batch_norm,
            pool=self.pool,
            dropout=self.dropout,
        )
        init_weights(model, self.init, self.activation)
        return model
