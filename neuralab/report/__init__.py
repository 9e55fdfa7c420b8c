"""Figures and reports drawn from a run's records."""

from neuralab.report.curves import plot_curves

__all__ = ["plot_curves"]
