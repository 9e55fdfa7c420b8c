"""Models that draw new samples from noise (a GAN, a variational autoencoder), and drawing
them in the data's raw units."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch

from neuralab.data import DataMeta


@runtime_checkable
class Generative(Protocol):
    """A model that draws new samples (standardised units) from noise."""

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor: ...

    def eval(self) -> torch.nn.Module: ...


def generate(model: Generative, meta: DataMeta, n: int, *, seed: int) -> np.ndarray:
    """`n` samples from `model.sample`, in the data's raw units (standardisation undone)."""
    model.eval()
    with torch.no_grad():
        samples = model.sample(n, generator=torch.Generator().manual_seed(seed))
    return samples.cpu().numpy() * np.asarray(meta.x_std) + np.asarray(meta.x_mean)
