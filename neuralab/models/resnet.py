"""Residual network: a conv stem, stages of pre-activation residual blocks, global average pool.

1-D convolutions for sequences (C, L), 2-D for images (C, H, W): the data decides. Each
stage after the first opens with a stride-2 block while the spatial size is at least 2
(He et al. 2016, "Identity Mappings in Deep Residual Networks").
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, PositiveInt
from torch import nn

from neuralab.models.backbone import FeaturesAndHead
from neuralab.models.blocks import (
    Activation,
    Init,
    OddKernelSize,
    ResidualBlock,
    init_weights,
    make_activation,
    require_sequence_or_image,
)
from neuralab.models.network import NetworkConfig


class ResNet(FeaturesAndHead):
    """A pre-activation ResNet classifier or regressor.

    Args:
        input_shape: (channels, length) for sequences or (channels, height, width) for images.
        stem_channels: Output channels of the first (plain) convolution.
        stages: Channels of each stage, first to last.
        num_outputs: Number of output units.
        blocks_per_stage: Residual blocks in every stage.
        kernel_size: Odd kernel size of every convolution but the 1x1 skips.
        activation: Nonlinearity inside the blocks and before the pool.
        dropout: Dropout between the two convolutions of each block.
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        stem_channels: int,
        stages: tuple[int, ...],
        num_outputs: int,
        *,
        blocks_per_stage: int = 2,
        kernel_size: int = 3,
        activation: Activation = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        dims: Literal[1, 2] = 1 if len(input_shape) == 2 else 2
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        norm = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
        # The stem has no norm or activation of its own: the first block starts with both.
        self.stem = conv(
            input_shape[0], stem_channels, kernel_size, padding=kernel_size // 2, bias=False
        )
        blocks, in_channels, size = [], stem_channels, min(input_shape[1:])
        for index, channels in enumerate(stages):
            for position in range(blocks_per_stage):
                stride = 2 if index > 0 and position == 0 and size >= 2 else 1
                blocks.append(
                    ResidualBlock(
                        dims,
                        in_channels,
                        channels,
                        stride=stride,
                        kernel_size=kernel_size,
                        activation=activation,
                        dropout=dropout,
                    )
                )
                size, in_channels = -(-size // stride), channels
        self.stages = nn.Sequential(*blocks)
        # Pre-activation blocks return un-normalised sums, so one last norm and activation
        # come before the pool (as in the paper).
        self.final = nn.Sequential(norm(in_channels), make_activation(activation))
        self.head = nn.Linear(in_channels, num_outputs)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.final(self.stages(self.stem(x)))
        return x.mean(dim=tuple(range(2, x.ndim)))  # global average pool -> (B, C)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)


class ResNetConfig(NetworkConfig):
    """The `model:` section when `family: resnet`."""

    family: Literal["resnet"] = "resnet"
    stem_channels: int = Field(32, ge=1)
    stages: tuple[PositiveInt, ...] = Field((32, 64), min_length=1)
    blocks_per_stage: int = Field(2, ge=1)
    kernel_size: OddKernelSize = 3
    activation: Activation = "relu"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    init: Init = "auto"

    def build(self, *, input_shape: tuple[int, ...], num_outputs: int) -> ResNet:
        require_sequence_or_image("resnet", input_shape)
        model = ResNet(
            input_shape,
            self.stem_channels,
            self.stages,
            num_outputs,
            blocks_per_stage=self.blocks_per_stage,
            kernel_size=self.kernel_size,
            activation=self.activation,
            dropout=self.dropout,
        )
        init_weights(model, self.init, self.activation)
        return model
