"""Regression: MSE or MAE on standardised targets, scored and predicted in the target's units."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from torch.nn import functional as F

from neuralab.data import DataMeta
from neuralab.tasks.base import BaseTask
from neuralab.tasks.prediction import Prediction

if TYPE_CHECKING:
    from pathlib import Path

    from neuralab.card import Card
    from neuralab.runs import Predictor


@dataclass(frozen=True)
class Regression(BaseTask):
    """MSE or MAE on standardised targets; MSE, MAE and R^2 reported in the target's units."""

    meta: DataMeta
    loss_name: Literal["mse", "mae"] = "mse"
    metric_names: tuple[str, ...] = ("mse", "mae", "r2")
    main_metric: str = "r2"
    name: ClassVar[str] = "regression"
    trivial_output: ClassVar[str] = "predicting the training mean"
    secondary_metric: ClassVar[str | None] = "mae"
    scores_one_target: ClassVar[bool] = True
    data_task: ClassVar[str | None] = "regression"
    losses: ClassVar[tuple[str, ...]] = ("mse", "mae")

    @classmethod
    def from_data(cls, meta: DataMeta, loss: str) -> Regression:
        cls.check_loss(loss)
        return cls(meta, "mse" if loss == "auto" else loss)  # type: ignore[arg-type]

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.loss_name == "mae":
            return F.l1_loss(output, target)
        return F.mse_loss(output, target)

    def metrics(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        predicted = self.meta.unscale_targets(output).numpy()
        truth = self.meta.unscale_targets(target).numpy()
        return {
            "mse": float(mean_squared_error(truth, predicted)),
            "mae": float(mean_absolute_error(truth, predicted)),
            "r2": float(r2_score(truth, predicted)),
        }

    def per_sample_errors(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean absolute error per sample, in the target's units."""
        unscale = self.meta.unscale_targets
        return (unscale(output) - unscale(target)).abs().mean(dim=1)

    def predict(self, predictor: Predictor, inputs: Any) -> Prediction:
        return Prediction(values=self.meta.unscale_targets(predictor.outputs(inputs)).numpy())

    def report_section(self, run_dir: Path, card: Card, model, bundle) -> str:
        from neuralab.report.sections import regression_section  # matplotlib: lazily

        return regression_section(self, model, bundle)

    def settings(self) -> dict[str, Any]:
        return {"loss_name": self.loss_name}

    @classmethod
    def from_card(cls, settings: dict[str, Any], meta: DataMeta) -> Regression:
        return cls(meta, **settings)

    def on_column(self, column: int) -> Regression:
        """The same task scored on one target column (a multi-task head)."""
        meta = self.meta
        own = dataclasses.replace(meta, y_mean=[meta.y_mean[column]], y_std=[meta.y_std[column]])
        return dataclasses.replace(self, meta=own)
