"""Training: the loop, its callbacks, optimizers and schedules."""

from neuralab.train.callbacks import Callback, EarlyStopping, MetricsLog, ProgressBar, TrainState
from neuralab.train.loop import count_parameters, evaluate, fit, predict_outputs

__all__ = [
    "Callback",
    "EarlyStopping",
    "MetricsLog",
    "ProgressBar",
    "TrainState",
    "count_parameters",
    "evaluate",
    "fit",
    "predict_outputs",
]
