"""Pieces shared by several model families, written once: activations by name, weight
initialisation by name, the convolution and upsampling blocks, the pre-activation residual
block and positional encodings."""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
from pydantic import AfterValidator, Field
from torch import nn

from neuralab.errors import NeuralabError

Activation = Literal["relu", "leaky_relu", "tanh", "sigmoid", "gelu"]
Init = Literal["auto", "kaiming", "xavier", "orthogonal", "normal"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}


def make_activation(name: Activation) -> nn.Module:
    return _ACTIVATIONS[name]()


def init_weights(model: nn.Module, scheme: Init, activation: Activation) -> None:
    """Initialise every linear, convolution, attention and recurrent weight in place.

    `auto` picks He (Kaiming) init for the ReLU family, whose variance it preserves
    (He et al. 2015), and Xavier/Glorot for tanh and sigmoid (Glorot & Bengio 2010).
    Biases start at zero. Attention's stacked query/key/value projection is treated as a
    linear weight; this also gives each layer of an `nn.TransformerEncoder` its own draw,
    where PyTorch's deep copies of one layer would all start alike.
    """
    if scheme == "auto":
        scheme = "kaiming" if activation in ("relu", "leaky_relu", "gelu") else "xavier"
    for module in model.modules():
        if isinstance(module, nn.RNNBase):
            _init_recurrent(module)
        elif isinstance(module, nn.MultiheadAttention) and module.in_proj_weight is not None:
            _init_matrix(module.in_proj_weight, scheme, activation)
            if module.in_proj_bias is not None:
                nn.init.zeros_(module.in_proj_bias)
        elif isinstance(
            module, nn.Linear | nn.Conv1d | nn.Conv2d | nn.ConvTranspose1d | nn.ConvTranspose2d
        ):
            _init_matrix(module.weight, scheme, activation)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def _init_matrix(weight: torch.Tensor, scheme: Init, activation: Activation) -> None:
    if scheme == "kaiming":
        nonlinearity: Literal["relu", "leaky_relu"] = (
            "leaky_relu" if activation == "leaky_relu" else "relu"
        )
        nn.init.kaiming_normal_(weight, nonlinearity=nonlinearity)
    elif scheme == "xavier":
        gain = nn.init.calculate_gain(activation if activation != "gelu" else "relu")
        nn.init.xavier_uniform_(weight, gain=gain)
    elif scheme == "orthogonal":
        nn.init.orthogonal_(weight)
    else:
        nn.init.normal_(weight, std=0.02)


def _init_recurrent(module: nn.RNNBase) -> None:
    """Input weights Xavier, recurrent weights orthogonal per gate, LSTM forget bias 1.

    Orthogonal recurrent matrices start with every singular value 1, so early gradients
    neither vanish nor explode through time (Saxe et al. 2014); a forget-gate bias of 1
    makes a fresh LSTM remember by default (Gers et al. 2000; Jozefowicz et al. 2015).
    This is the same for every `init` scheme: those name the feed-forward weights.
    """
    hidden = module.hidden_size
    for name, parameter in module.named_parameters():
        if name.startswith("weight_ih"):
            nn.init.xavier_uniform_(parameter)
        elif name.startswith("weight_hh"):
            for gate in parameter.data.split(hidden):
                nn.init.orthogonal_(gate)
        elif name.startswith("bias"):
            nn.init.zeros_(parameter)
            # PyTorch orders LSTM gates (input, forget, cell, output); one bias is enough.
            if isinstance(module, nn.LSTM) and name.startswith("bias_ih"):
                nn.init.ones_(parameter.data[hidden : 2 * hidden])


def conv_block(
    dims: Literal[1, 2],
    in_channels: int,
    out_channels: int,
    *,
    kernel_size: int,
    batch_norm: bool,
    activation: Activation,
    pool: Literal["max", "avg", "none"],
) -> nn.Sequential:
    """Conv ("same" padding) -> optional batch norm -> activation -> optional 2x pooling."""
    conv = nn.Conv1d if dims == 1 else nn.Conv2d
    norm = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
    layers: list[nn.Module] = [
        conv(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=not batch_norm)
    ]
    if batch_norm:
        layers.append(norm(out_channels))
    layers.append(make_activation(activation))
    if pool != "none":
        pool_cls = {
            ("max", 1): nn.MaxPool1d,
            ("max", 2): nn.MaxPool2d,
            ("avg", 1): nn.AvgPool1d,
            ("avg", 2): nn.AvgPool2d,
        }[(pool, dims)]
        layers.append(pool_cls(2))
    return nn.Sequential(*layers)


def upsample_block(
    dims: Literal[1, 2],
    in_channels: int,
    out_channels: int,
    *,
    batch_norm: bool,
    activation: Activation | None,
) -> nn.Sequential:
    """Transposed conv (kernel 4, stride 2, padding 1: exactly doubles each spatial size,
    as in DCGAN, Radford et al. 2016) -> optional batch norm -> optional activation."""
    conv = nn.ConvTranspose1d if dims == 1 else nn.ConvTranspose2d
    norm = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
    layers: list[nn.Module] = [conv(in_channels, out_channels, 4, 2, 1, bias=not batch_norm)]
    if batch_norm:
        layers.append(norm(out_channels))
    if activation is not None:
        layers.append(make_activation(activation))
    return nn.Sequential(*layers)


def halvable_shape(family: str, input_shape: tuple[int, ...], num_halvings: int) -> tuple[int, ...]:
    """The spatial shape after `num_halvings` stride-2 steps; every size must divide evenly
    so the decoder or generator can double back to exactly the input's shape."""
    require_sequence_or_image(family, input_shape)
    spatial = input_shape[1:]
    factor = 2**num_halvings
    if any(size % factor for size in spatial):
        raise NeuralabError(
            "model.channels",
            f"{family} halves the input {num_halvings} times (once per entry of channels), "
            f"so each of its sizes {spatial} must be divisible by {factor}",
            "use fewer channels entries",
        )
    return tuple(size // factor for size in spatial)


class ResidualBlock(nn.Module):
    """Pre-activation residual block: BN -> act -> conv -> BN -> act -> dropout -> conv, + skip.

    Normalisation and activation come before each convolution, so the skip path is a
    clean identity from block to block (He et al. 2016, "Identity Mappings in Deep
    Residual Networks"). When the block changes the channel count or the stride, the
    skip is a 1x1 convolution applied to the pre-activated input, as in the paper's
    code. Dropout between the convolutions follows Wide ResNets (Zagoruyko & Komodakis
    2016).

    Args:
        dims: 1 for sequences (B, C, L), 2 for images (B, C, H, W).
        in_channels: Channels of the block's input.
        out_channels: Channels of the block's output.
        stride: Stride of the first convolution (2 halves the spatial size, rounding up).
        kernel_size: Odd kernel size of both convolutions ("same" padding).
        activation: Nonlinearity before each convolution.
        dropout: Dropout probability between the two convolutions.
    """

    def __init__(
        self,
        dims: Literal[1, 2],
        in_channels: int,
        out_channels: int,
        *,
        stride: int = 1,
        kernel_size: int = 3,
        activation: Activation = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        norm = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
        padding = kernel_size // 2
        # Convolutions right after a batch norm need no bias: the next norm removes it.
        self.norm1 = norm(in_channels)
        self.act1 = make_activation(activation)
        self.conv1 = conv(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.norm2 = norm(out_channels)
        self.act2 = make_activation(activation)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = conv(out_channels, out_channels, kernel_size, 1, padding, bias=False)
        self.projection = (
            conv(in_channels, out_channels, 1, stride, bias=False)
            if stride != 1 or in_channels != out_channels
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = self.act1(self.norm1(x))
        skip = x if self.projection is None else self.projection(activated)
        out = self.conv1(activated)
        out = self.conv2(self.dropout(self.act2(self.norm2(out))))
        return out + skip


class PositionalEncoding(nn.Module):
    """Adds position information to a batch of token embeddings (B, T, d_model).

    `sinusoidal` adds fixed sines and cosines of geometrically spaced wavelengths
    (Vaswani et al. 2017): no parameters, and nearby positions get similar codes.
    `learned` adds a trained vector per position, initialised small (std 0.02) as in
    BERT and ViT (Dosovitskiy et al. 2021).

    Args:
        d_model: Width of each token embedding.
        max_len: Most tokens a sequence may have.
        kind: `sinusoidal` or `learned`.
    """

    table: torch.Tensor  # the sinusoidal codes, a buffer

    def __init__(
        self, d_model: int, max_len: int, kind: Literal["sinusoidal", "learned"] = "sinusoidal"
    ) -> None:
        super().__init__()
        self.learned: nn.Parameter | None = None
        if kind == "learned":
            self.learned = nn.Parameter(torch.zeros(1, max_len, d_model))
            nn.init.trunc_normal_(self.learned, std=0.02)
            return
        position = torch.arange(max_len, dtype=torch.float32)[:, None]
        frequency = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        table = torch.zeros(1, max_len, d_model)
        table[0, :, 0::2] = torch.sin(position * frequency)
        table[0, :, 1::2] = torch.cos(position * frequency)[:, : d_model // 2]
        # Not saved with the weights: it is a function of the shape alone.
        self.register_buffer("table", table, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        codes = self.learned if self.learned is not None else self.table
        return x + codes[:, : x.shape[1]]


def require_sequence_or_image(family: str, input_shape: tuple[int, ...]) -> None:
    """Refuse tabular data, naming the family and pointing to the MLP."""
    if len(input_shape) not in (2, 3):
        raise NeuralabError(
            "model.family",
            f"{family} needs image (C, H, W) or sequence (C, L) inputs, but this data has "
            f"shape {input_shape}",
            "use family: mlp for tabular data",
        )


def _must_be_odd(value: int) -> int:
    if value % 2 == 0:
        raise ValueError(f"must be odd so 'same' padding keeps the size, got {value}")
    return value


# A convolution kernel size that "same" padding (kernel // 2 each side) can preserve.
OddKernelSize = Annotated[int, Field(ge=1), AfterValidator(_must_be_odd)]
