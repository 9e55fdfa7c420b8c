"""Reconstruction (autoencoders): the target is the standardised input itself."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch.nn import functional as F

from neuralab.tasks.base import BaseTask
from neuralab.tasks.prediction import Prediction

if TYPE_CHECKING:
    from pathlib import Path

    from neuralab.card import Card
    from neuralab.data import DataBundle
    from neuralab.runs import Predictor


@dataclass(frozen=True)
class Reconstruction(BaseTask):
    """MSE loss; MSE and MAE per value. Errors are in standardised units, so they compare
    across datasets and pixels. A prediction is an anomaly score: the sample's mean squared
    reconstruction error."""

    metric_names: tuple[str, ...] = ("mse", "mae")
    main_metric: str = "mse"
    name: ClassVar[str] = "reconstruction"
    # a VAE too: an encoder that outputs zeros gives the prior, whose KL term is 0
    trivial_output: ClassVar[str] = "predicting the training mean value"
    secondary_metric: ClassVar[str | None] = "mae"
    losses: ClassVar[tuple[str, ...]] = ("mse",)

    def adapt(self, bundle: DataBundle) -> DataBundle:
        """The target is the input; the labels stay for the report's latent map."""
        return dataclasses.replace(
            bundle,
            y_train=bundle.x_train,
            y_val=bundle.x_val,
            y_test=bundle.x_test,
            labels_test=bundle.y_test,
        )

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(output, target)

    def metrics(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        return {
            "mse": F.mse_loss(output, target).item(),
            "mae": F.l1_loss(output, target).item(),
        }

    def per_sample_errors(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (output - target).pow(2).flatten(1).mean(dim=1)

    def predict(self, predictor: Predictor, inputs: Any) -> Prediction:
        output = predictor.outputs(inputs)  # also checks the samples' shape
        x = np.asarray(inputs, dtype=np.float32)
        meta = predictor.meta
        scaled = meta.scale_inputs(x.reshape(len(x), *meta.input_shape))
        return Prediction(
            values=self.per_sample_errors(output, scaled).numpy(), reconstruction=True
        )

    def report_section(self, run_dir: Path, card: Card, model, bundle) -> str:
        from neuralab.report.sections import reconstruction_section  # matplotlib: lazily

        return reconstruction_section(run_dir, card, model, bundle)
