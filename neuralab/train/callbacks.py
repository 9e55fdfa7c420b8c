"""What observes or stops training: plain objects with a few hooks on one `TrainState`.

Hooks: `on_fit_start`, `on_step_end`, `on_epoch_end`, `on_fit_end`. A callback with state
worth resuming has `state_dict()` / `load_state_dict()`.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from neuralab.tasks import is_improvement, lower_is_better


@dataclass
class TrainState:
    """Everything a callback may read, and `should_stop`, the one thing it may set."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    num_epochs: int
    steps_per_epoch: int
    epoch: int = 0
    step: int = 0
    loss: float = math.nan
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    batch: torch.Tensor | None = None  # the latest training inputs, for post-mortems
    should_stop: bool = False


class Callback:
    """Base with no-op hooks; subclasses override the ones they need."""

    def on_fit_start(self, state: TrainState) -> None: ...

    def on_step_end(self, state: TrainState) -> None: ...

    def on_epoch_end(self, state: TrainState) -> None: ...

    def on_fit_end(self, state: TrainState) -> None: ...


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by `min_delta` for `patience` epochs, then put
    back the weights of the best epoch (so the run's model is the one selected on val)."""

    def __init__(self, monitor: str, patience: int, min_delta: float = 0.0) -> None:
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.best = math.nan
        self.best_epoch = 0
        self.wait = 0
        self.best_weights: dict[str, torch.Tensor] | None = None

    def on_epoch_end(self, state: TrainState) -> None:
        value = state.metrics[self.monitor]
        if math.isnan(self.best) or self._improved(value):
            self.best, self.best_epoch, self.wait = value, state.epoch, 0
            weights = state.model.state_dict()
            self.best_weights = {k: v.detach().clone() for k, v in weights.items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            state.should_stop = True

    def on_fit_end(self, state: TrainState) -> None:
        if self.best_weights is not None:
            state.model.load_state_dict(self.best_weights)

    def _improved(self, value: float) -> bool:
        shift = -self.min_delta if lower_is_better(self.monitor) else self.min_delta
        return is_improvement(self.monitor, value, self.best + shift)

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self.best_weights = state.get("best_weights")


class MetricsLog(Callback):
    """Appends one JSON line per epoch: epoch, step, learning rate and every metric."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines = 0

    def on_epoch_end(self, state: TrainState) -> None:
        record = {"epoch": state.epoch, "step": state.step, **state.metrics}
        record["lr"] = state.optimizer.param_groups[0]["lr"]
        with self.path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")
        self.lines += 1

    def state_dict(self) -> dict[str, Any]:
        return {"lines": self.lines}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Drop lines written after the checkpoint, so a resumed log has no duplicates."""
        self.lines = state["lines"]
        if self.path.is_file():
            kept = self.path.read_text(encoding="utf-8").splitlines(keepends=True)[: self.lines]
            self.path.write_text("".join(kept), encoding="utf-8")


class ProgressBar(Callback):
    """A rich progress bar (epoch, step, loss, validation metric, ETA); silent when the
    console is not a terminal, so logs and pipes stay clean.

    rich redraws it `REFRESHES_PER_SECOND` times a second, so it is updated no more often
    than that (and at every epoch end): an update costs more than a small model's step.
    """

    REFRESHES_PER_SECOND = 4  # a redraw holds the GIL for ~1 ms: 10 a second cost 1%

    def __init__(self, monitor: str, console: Console | None = None) -> None:
        self.monitor = monitor
        self.console = console or Console(stderr=True)
        self.progress: Progress | None = None
        self.task_id: Any = None
        self.updated = -math.inf

    def on_fit_start(self, state: TrainState) -> None:
        if not self.console.is_terminal:
            return
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
            refresh_per_second=self.REFRESHES_PER_SECOND,
        )
        total = state.num_epochs * state.steps_per_epoch
        self.task_id = self.progress.add_task(
            "fit", total=total, epoch=f"1/{state.num_epochs}", status=""
        )
        self.progress.start()

    def on_step_end(self, state: TrainState) -> None:
        now = time.monotonic()
        if now - self.updated >= 1 / self.REFRESHES_PER_SECOND:
            self.updated = now
            self._update(state)

    def on_epoch_end(self, state: TrainState) -> None:
        self._update(state)

    def _update(self, state: TrainState) -> None:
        if self.progress is None:
            return
        status = f"loss {state.loss:.4f}"
        if self.monitor in state.metrics:
            status += f"  {self.monitor} {state.metrics[self.monitor]:.4f}"
        epoch = f"{min(state.epoch + 1, state.num_epochs)}/{state.num_epochs}"
        self.progress.update(self.task_id, completed=state.step, epoch=epoch, status=status)

    def on_fit_end(self, state: TrainState) -> None:
        if self.progress is not None:
            self.progress.stop()
