"""Figures and reports drawn from a run's records."""

from neuralab.report.curves import plot_curves
from neuralab.report.html import write_comparison_report, write_run_report

__all__ = ["plot_curves", "write_comparison_report", "write_run_report"]
