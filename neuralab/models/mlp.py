"""Multi-layer perceptron: Linear -> batch norm -> activation -> dropout, repeated."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field, PositiveInt
from torch import nn

from neuralab.models.backbone import FeaturesAndHead
from neuralab.models.blocks import Activation, Init, init_weights, make_activation
from neuralab.models.network import NetworkConfig


class MLP(FeaturesAndHead):
    """A feed-forward network on flattened inputs.

    Args:
        in_features: Size of each flattened input sample.
        hidden_sizes: Width of each hidden layer, first to last.
        num_outputs: Number of output units (classes, or regression targets).
        activation: Nonlinearity after each hidden layer.
        batch_norm: Normalise each hidden layer's pre-activations over the batch.
        dropout: Probability of zeroing a hidden unit during training.
    """

    def __init__(
        self,
        in_features: int,
        hidden_sizes: tuple[int, ...],
        num_outputs: int,
        *,
        activation: Activation = "relu",
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for size in hidden_sizes:
            layers.append(nn.Linear(width, size, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers += [make_activation(activation), nn.Dropout(dropout)]
            width = size
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_outputs)


class MLPConfig(NetworkConfig):
    """The `model:` section when `family: mlp`."""

    family: Literal["mlp"] = "mlp"
    without_batch_norm: ClassVar[str | None] = "set model.batch_norm: false"
    hidden_sizes: tuple[PositiveInt, ...] = (128, 128)
    activation: Activation = "relu"
    batch_norm: bool = False
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    init: Init = "auto"

    def build(self, *, input_shape: tuple[int, ...], num_outputs: int) -> MLP:
        model = MLP(
            math.prod(input_shape),
            self.hidden_sizes,
            num_outputs,
            activation=self.activation,
            batch_norm=self.batch_norm,
            dropout=self.dropout,
        )
        init_weights(model, self.init, self.activation)
        return model
