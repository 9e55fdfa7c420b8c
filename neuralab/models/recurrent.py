"""Recurrent network: an RNN, LSTM or GRU reads the input step by step; a linear head reads out.

Sequences (C, L) are L steps of C features; images (C, H, W) are H steps (rows) of C*W
features each. The readout is the final hidden state (both directions when bidirectional)
or the mean of the hidden states over all steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from neuralab.models.backbone import FeaturesAndHead
from neuralab.models.blocks import init_weights, require_sequence_or_image
from neuralab.models.network import NetworkConfig

Cell = Literal["rnn", "lstm", "gru"]
_CELLS: dict[str, Callable[..., nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RecurrentNetwork(FeaturesAndHead):
    """A (stacked, optionally bidirectional) RNN, LSTM or GRU with a linear head.

    Args:
        input_shape: (channels, length) for sequences or (channels, height, width) for images.
        hidden_size: Hidden units per direction in every layer.
        num_outputs: Number of output units.
        cell: `rnn` (Elman, tanh), `lstm` (Hochreiter & Schmidhuber 1997) or `gru`
            (Cho et al. 2014).
        num_layers: Recurrent layers stacked on each other.
        bidirectional: Also read each sequence backwards and join both readouts.
        dropout: Dropout between stacked layers and before the head.
        readout: `last` takes the final hidden state, `mean` averages every step's.
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        hidden_size: int,
        num_outputs: int,
        *,
        cell: Cell = "lstm",
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        readout: Literal["last", "mean"] = "last",
    ) -> None:
        super().__init__()
        self.image = len(input_shape) == 3
        in_features = input_shape[0] * (input_shape[2] if self.image else 1)
        self.recurrent = _CELLS[cell](
            in_features,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            # PyTorch applies this dropout between layers only, and warns if there is one.
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.readout = readout
        self.num_directions = 2 if bidirectional else 1
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.num_directions * hidden_size, num_outputs)

    def steps(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, L) -> (B, L, C); (B, C, H, W) -> (B, H, C * W): time steps first."""
        if self.image:
            return x.permute(0, 2, 1, 3).flatten(2)
        return x.transpose(1, 2)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        outputs, state = self.recurrent(self.steps(x))  # outputs: (B, T, directions * H)
        if self.readout == "mean":
            return outputs.mean(dim=1)
        hidden = state[0] if isinstance(state, tuple) else state  # LSTM state is (h, c)
        # hidden: (layers * directions, B, H); the last layer's forward and backward finals
        return torch.cat(list(hidden[-self.num_directions :]), dim=1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(features))


class RNNConfig(NetworkConfig):
    """The `model:` section when `family: rnn`."""

    family: Literal["rnn"] = "rnn"
    cell: Cell = "lstm"
    hidden_size: int = Field(64, ge=1)
    num_layers: int = Field(1, ge=1)
    bidirectional: bool = False
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    readout: Literal["last", "mean"] = "last"

    def build(self, *, input_shape: tuple[int, ...], num_outputs: int) -> RecurrentNetwork:
        require_sequence_or_image("rnn", input_shape)
        model = RecurrentNetwork(
            input_shape,
            self.hidden_size,
            num_outputs,
            cell=self.cell,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            dropout=self.dropout,
            readout=self.readout,
        )
        # Recurrent weights get their own scheme (see blocks); the head reads tanh states.
        init_weights(model, "auto", "tanh")
        return model
