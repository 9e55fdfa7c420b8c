"""Adversarial (GANs): two players' losses, which measure no sample quality."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch.nn import functional as F

from neuralab.errors import NeuralabError
from neuralab.tasks.base import BaseTask

if TYPE_CHECKING:
    from pathlib import Path

    from neuralab.card import Card
    from neuralab.runs import Predictor
    from neuralab.tasks.prediction import Prediction


def discriminator_loss(real_logit: torch.Tensor, fake_logit: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of telling real samples (1) from generated ones (0)."""
    return F.binary_cross_entropy_with_logits(
        real_logit, torch.ones_like(real_logit)
    ) + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))


def generator_loss(fake_logit: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss, -log D(G(z)): strong gradients while the
    discriminator still wins easily (Goodfellow et al. 2014, section 3)."""
    return F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit))


@dataclass(frozen=True)
class Adversarial(BaseTask):
    """A GAN's two players. The output holds, per sample, the discriminator's logits for
    that real sample and for one generated sample, (N, 2); the target is unused.

    `d_loss` and `g_loss` are each player's loss, `d_real` and `d_fake` the mean
    probability the discriminator gives real and generated samples of being real (both
    near 0.5 when neither player wins). `loss` is d_loss + g_loss. None of these measures
    sample quality, so nothing is selected or stopped on them: look at `samples.png`.
    """

    metric_names: tuple[str, ...] = ("d_loss", "g_loss", "d_real", "d_fake")
    main_metric: str = "g_loss"
    name: ClassVar[str] = "adversarial"
    trivial_output: ClassVar[str] = "a discriminator that cannot tell real from generated"
    loss_should_fall: ClassVar[bool] = False

    @property
    def curves(self) -> tuple[str, ...]:
        return self.metric_names

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        del target
        return discriminator_loss(output[:, 0], output[:, 1]) + generator_loss(output[:, 1])

    def metrics(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        del target
        real, fake = output[:, 0], output[:, 1]
        return {
            "d_loss": discriminator_loss(real, fake).item(),
            "g_loss": generator_loss(fake).item(),
            "d_real": real.sigmoid().mean().item(),
            "d_fake": fake.sigmoid().mean().item(),
        }

    def predict(self, predictor: Predictor, inputs: Any) -> Prediction:
        raise NeuralabError(
            "predict", "a GAN run makes samples, not predictions", "use neuralab generate RUN"
        )

    def report_section(self, run_dir: Path, card: Card, model, bundle) -> str:
        from neuralab.report.sections import adversarial_section  # matplotlib: lazily

        return adversarial_section(model, bundle)
