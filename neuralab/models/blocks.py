"""Pieces shared by several model families, written once: activations by name, weight
initialisation by name, and the convolution block."""

from __future__ import annotations

from typing import Literal

from torch import nn

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
    """Initialise every linear and convolution weight in place; biases start at zero.

    `auto` picks He (Kaiming) init for the ReLU family, whose variance it preserves
    (He et al. 2015), and Xavier/Glorot for tanh and sigmoid (Glorot & Bengio 2010).
    """
    if scheme == "auto":
        scheme = "kaiming" if activation in ("relu", "leaky_relu", "gelu") else "xavier"
    nonlinearity = "leaky_relu" if activation == "leaky_relu" else "relu"
    for module in model.modules():
        if not isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d):
            continue
        if scheme == "kaiming":
            nn.init.kaiming_normal_(module.weight, nonlinearity=nonlinearity)
        elif scheme == "xavier":
            gain = nn.init.calculate_gain(activation if activation != "gelu" else "relu")
            nn.init.xavier_uniform_(module.weight, gain=gain)
        elif scheme == "orthogonal":
            nn.init.orthogonal_(module.weight)
        else:
            nn.init.normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


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
