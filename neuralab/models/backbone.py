"""The shape the classic families share: `features` (the learned representation), then
`head` (the task's output layer). Transfer learning keeps the first and rebuilds the
second; `forward_features` is the embedding (timm's split)."""

from __future__ import annotations

import torch
from torch import nn


class FeaturesAndHead(nn.Module):
    """`forward(x) = forward_head(forward_features(x))`; by default `self.features` and
    `self.head`, which a family overrides where its features are more than one module."""

    features: nn.Module
    head: nn.Module

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
