"""Calibrated probabilities: expected calibration error, reliability bins, and temperature
scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks").

A classifier is calibrated when, of the samples it gives 80% confidence, 80% are right.
ECE measures the gap, averaged over confidence bins weighted by how many samples fall in
each. Temperature scaling divides the logits by one number T fitted on the validation
split: accuracy is unchanged (the argmax is), only the confidence moves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

NUM_BINS = 15  # Guo et al.'s choice; equal-width confidence bins over (0, 1]


@dataclass(frozen=True)
class Reliability:
    """Per confidence bin: mean confidence, accuracy and sample count (empty bins kept)."""

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    counts: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error: sum over bins of |accuracy - confidence| x share."""
        gaps = np.abs(self.accuracy - self.confidence) * self.counts
        return float(gaps.sum() / max(self.counts.sum(), 1))


def reliability(
    logits: torch.Tensor, targets: torch.Tensor, num_bins: int = NUM_BINS
) -> Reliability:
    """Bin the test samples by their top-class confidence (softmax of `logits`)."""
    confidence, correct = _top_class(logits, targets)
    index = _bins(confidence, num_bins)
    counts = np.bincount(index, minlength=num_bins)
    safe = np.maximum(counts, 1)
    return Reliability(
        np.linspace(0.0, 1.0, num_bins + 1),
        np.bincount(index, weights=confidence, minlength=num_bins) / safe,
        np.bincount(index, weights=correct, minlength=num_bins) / safe,
        counts,
    )


def expected_calibration_error(
    logits: torch.Tensor, targets: torch.Tensor, num_bins: int = NUM_BINS
) -> float:
    """`reliability(...).ece` in one pass over the bins (sum of |hits - confidence| over
    each bin, over all samples): it runs twice an epoch, for train and validation."""
    confidence, correct = _top_class(logits, targets)
    gaps = np.bincount(_bins(confidence, num_bins), correct - confidence, minlength=num_bins)
    return float(np.abs(gaps).sum() / max(len(confidence), 1))


def _top_class(logits: torch.Tensor, targets: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per sample, the top softmax probability (1 / sum(exp(logits - max)): softmax itself is
    three times slower on the CPU) and whether that class is the target (1.0 or 0.0)."""
    z = logits.detach().float().numpy()
    predicted = z.argmax(axis=1)
    top = np.take_along_axis(z, predicted[:, None], axis=1)
    confidence = 1.0 / np.exp(z - top).sum(axis=1)
    return confidence, (predicted == targets.numpy()).astype(np.float64)


def _bins(confidence: np.ndarray, num_bins: int) -> np.ndarray:
    """Bins are (low, high]; a confidence of exactly 1.0 falls in the last one."""
    return np.clip(np.ceil(confidence * num_bins).astype(np.intp) - 1, 0, num_bins - 1)


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The T > 0 minimising the negative log-likelihood of softmax(logits / T).

    Optimised over log T, so T stays positive, with L-BFGS as in Guo et al.
    """
    logits, targets = logits.detach().double(), targets.detach()
    log_temperature = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [log_temperature], lr=0.1, max_iter=200, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_temperature.exp(), targets)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_temperature.detach().exp())
