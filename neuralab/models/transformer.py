"""Transformer encoder: token embedding, positions, pre-norm self-attention layers, a linear head.

Inputs are cut into non-overlapping patches, each one token (ViT, Dosovitskiy et al. 2021):
an image (C, H, W) into `patch_size` x `patch_size` squares, a sequence (C, L) into windows
of `patch_size` consecutive steps. Left unset, `patch_size` is 4 for images and 1 for
sequences (every step its own token of C features, as before sequences were patched). The
head reads a learned [CLS] token (Devlin et al. 2019) or the mean of all tokens.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, PositiveInt, model_validator
from torch import nn

from neuralab.errors import NeuralabError
from neuralab.models.backbone import FeaturesAndHead
from neuralab.models.blocks import (
    Init,
    PositionalEncoding,
    init_weights,
    require_sequence_or_image,
)
from neuralab.models.network import NetworkConfig


class Transformer(FeaturesAndHead):
    """An encoder-only transformer classifier or regressor.

    Args:
        input_shape: (channels, length) for sequences or (channels, height, width) for images.
        num_outputs: Number of output units.
        d_model: Width of every token embedding.
        num_heads: Attention heads per layer; must divide `d_model`.
        num_layers: Encoder layers.
        dim_feedforward: Hidden width of each layer's feed-forward block.
        dropout: Dropout on embeddings, attention weights and feed-forward outputs.
        activation: Nonlinearity of the feed-forward blocks.
        positional: `sinusoidal` (fixed) or `learned` position codes.
        pooling: `cls` reads a learned extra token, `mean` averages all tokens.
        patch_size: Side of the square patches an image is cut into, or steps in each window
            of a sequence; must divide H and W, or L. None: 4 for images, 1 for sequences.
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_outputs: int,
        *,
        d_model: int = 64,
        num_heads: int = 4,
        num_layers: int = 2,
        dim_feedforward: int = 128,
        dropout: float = 0.1,
        activation: Literal["relu", "gelu"] = "gelu",
        positional: Literal["sinusoidal", "learned"] = "sinusoidal",
        pooling: Literal["cls", "mean"] = "cls",
        patch_size: int | None = None,
    ) -> None:
        super().__init__()
        channels, *sides = input_shape
        if patch_size is None:
            patch_size = 4 if len(sides) == 2 else 1
        self.patch_size = patch_size
        num_tokens, token_features = 1, channels
        for side in sides:  # each axis is cut into side / patch_size steps of patch_size
            num_tokens *= side // patch_size
            token_features *= patch_size
        self.embed = nn.Linear(token_features, d_model)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d_model)) if pooling == "cls" else None
        self.position = PositionalEncoding(
            d_model, num_tokens + (pooling == "cls"), kind=positional
        )
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            d_model,
            num_heads,
            dim_feedforward,
            dropout,
            activation=activation,
            batch_first=True,
            # Pre-norm (Xiong et al. 2020) trains stably without a learning-rate warm-up.
            norm_first=True,
        )
        # A pre-norm stack ends un-normalised, hence the final LayerNorm; nested tensors
        # only serve padded batches and warn when combined with norm_first.
        self.encoder = nn.TransformerEncoder(
            layer, num_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )
        self.head = nn.Linear(d_model, num_outputs)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, L) -> (B, L / p, C * p); (B, C, H, W) -> (B, patches, C * p * p), row by row.

        Each token holds its patch channel by channel, so with p = 1 a sequence token is the
        C values of one step.
        """
        p = self.patch_size
        if x.dim() == 3:
            return x.unfold(2, p, p).transpose(1, 2).flatten(2)  # (B, L/p, C, p) -> C * p
        patches = x.unfold(2, p, p).unfold(3, p, p)  # (B, C, H/p, W/p, p, p)
        return patches.permute(0, 2, 3, 1, 4, 5).flatten(3).flatten(1, 2)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(self.tokens(x))  # (B, T, d_model)
        if self.cls_token is not None:
            tokens = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        encoded = self.encoder(self.dropout(self.position(tokens)))
        return encoded[:, 0] if self.cls_token is not None else encoded.mean(dim=1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)


class TransformerConfig(NetworkConfig):
    """The `model:` section when `family: transformer`."""

    family: Literal["transformer"] = "transformer"
    d_model: int = Field(64, ge=1)
    num_heads: int = Field(4, ge=1)
    num_layers: int = Field(2, ge=1)
    dim_feedforward: int = Field(128, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    activation: Literal["relu", "gelu"] = "gelu"
    positional: Literal["sinusoidal", "learned"] = "sinusoidal"
    pooling: Literal["cls", "mean"] = "cls"
    # null: 4 for images, 1 for sequences (one step per token, as before sequences could be
    # patched). Must divide H and W, or L.
    patch_size: PositiveInt | None = None
    # Xavier, as in the original Transformer and PyTorch's own attention layers; it also
    # learned digits faster here than He init (`auto` with gelu).
    init: Init = "xavier"

    @model_validator(mode="after")
    def _heads_divide_width(self) -> TransformerConfig:
        if self.d_model % self.num_heads:
            raise ValueError(
                f"d_model must be divisible by num_heads, but got "
                f"d_model={self.d_model}, num_heads={self.num_heads}"
            )
        return self

    def build(self, *, input_shape: tuple[int, ...], num_outputs: int) -> Transformer:
        require_sequence_or_image("transformer", input_shape)
        sides = input_shape[1:]
        # the module's default, resolved here so that it is checked like a chosen size
        patch_size = self.patch_size or (4 if len(sides) == 2 else 1)
        if any(side % patch_size for side in sides):
            divisors = [p for p in range(1, min(sides) + 1) if not any(s % p for s in sides)]
            what = "the sequence length" if len(sides) == 1 else "the image size"
            raise NeuralabError(
                "model.patch_size",
                f"{patch_size} does not divide {what} {'x'.join(map(str, sides))}",
                f"use one of {', '.join(map(str, divisors))}",
            )
        model = Transformer(
            input_shape,
            num_outputs,
            d_model=self.d_model,
            num_heads=self.num_heads,
            num_layers=self.num_layers,
            dim_feedforward=self.dim_feedforward,
            dropout=self.dropout,
            activation=self.activation,
            positional=self.positional,
            pooling=self.pooling,
            patch_size=patch_size,
        )
        init_weights(model, self.init, self.activation)
        return model
