"""Training health, watched while training runs: vanishing and exploding gradients, a
growing train/val gap, and non-finite losses.

Problems are reported as `TrainingWarning`s (one line, with a concrete suggestion) and
kept in `messages` for the run's card and report. A non-finite loss stops the run with a
`NeuralabError` naming the epoch, the step and the first layer whose gradient broke.
"""

from __future__ import annotations

import math
import warnings

import torch

from neuralab.errors import NeuralabError
from neuralab.train.callbacks import Callback, TrainState

# A first layer whose gradient is this many times smaller than the last layer's learns
# nothing useful: the classic vanishing-gradient picture (Hochreiter 1991; Glorot 2010).
VANISHING_RATIO = 1e-3
EXPLODING_NORM = 1e3
EXPLODING_LOSS_FACTOR = 10.0
OVERFIT_GAP = 0.1  # train minus val accuracy
OVERFIT_LOSS_RISE = 0.2  # val loss this far above its best ...
OVERFIT_PATIENCE = 5  # ... this many epochs after it


class TrainingWarning(UserWarning):
    """A training-health problem worth the user's attention; the run goes on."""


class GradientHealth(Callback):
    """Records per-layer gradient norms (every `every` steps, averaged per epoch) and warns
    once each about vanishing gradients, exploding gradients and overfitting.

    Layers are the parameters with more than one dimension (weight matrices and kernels),
    in the order the model defines them: first is nearest the input.

    With `loss_should_fall` false (a GAN, whose two players' losses trade off) the checks
    that read the loss (a growing loss, a rising val loss) are off.
    """

    def __init__(self, every: int = 5, *, loss_should_fall: bool = True) -> None:
        self.every, self.loss_should_fall = every, loss_should_fall
        self.norms: dict[str, list[float]] = {}
        self.messages: list[str] = []
        self._warned: set[str] = set()
        self._epoch_sums: dict[str, float] = {}
        self._epoch_count = 0
        self._layers: list[tuple[str, torch.nn.Parameter]] | None = None
        self._first_loss = math.nan
        self._best_val_loss, self._best_val_epoch, self._train_loss_at_best = math.inf, 0, 0.0

    def on_step_end(self, state: TrainState) -> None:
        if math.isnan(self._first_loss) and not _empty(state.batch):  # its loss is 0
            self._first_loss = state.loss
        if state.step % self.every:
            return
        if self._layers is None:  # looked up once: this runs every few steps
            self._layers = [
                (name.removeprefix("_module."), parameter)  # Opacus' wrapper, under DP-SGD
                for name, parameter in state.model.named_parameters()
                if parameter.ndim > 1
            ]
        grads = [(name, p.grad) for name, p in self._layers if p.grad is not None]
        norms = torch.stack([g.detach().norm() for _, g in grads]).tolist() if grads else []
        for (name, _), norm in zip(grads, norms, strict=True):
            self._epoch_sums[name] = self._epoch_sums.get(name, 0.0) + norm
        self._epoch_count += 1

    def on_epoch_end(self, state: TrainState) -> None:
        if self._epoch_count:
            for name, total in self._epoch_sums.items():
                self.norms.setdefault(name, []).append(total / self._epoch_count)
        self._epoch_sums, self._epoch_count = {}, 0
        self._check_gradients(state)
        self._check_overfitting(state)

    def _check_gradients(self, state: TrainState) -> None:
        if len(self.norms) < 2:
            return
        latest = [values[-1] for values in self.norms.values()]
        first, last = latest[0], latest[-1]
        if last > 0 and first / last < VANISHING_RATIO:
            self._warn(
                "vanishing",
                f"gradients vanish: the first layer's gradient norm is {first / last:.1e} x "
                f"the last layer's at epoch {state.epoch} (use relu instead of sigmoid/tanh, "
                "add batch_norm, or use residual connections: family resnet; for sequences, "
                "an lstm or gru cell)",
            )
        growing_loss = (
            self.loss_should_fall and state.loss > EXPLODING_LOSS_FACTOR * self._first_loss
        )
        if max(latest) > EXPLODING_NORM or growing_loss:
            self._warn(
                "exploding",
                f"gradients explode: largest layer gradient norm {max(latest):.3g}, loss "
                f"{state.loss:.3g} (started at {self._first_loss:.3g}) at epoch {state.epoch} "
                "(lower optim.lr or set train.grad_clip)",
            )

    def _check_overfitting(self, state: TrainState) -> None:
        metrics = state.metrics
        if "train_accuracy" in metrics and "val_accuracy" in metrics:
            gap = metrics["train_accuracy"] - metrics["val_accuracy"]
            if gap > OVERFIT_GAP:
                self._warn(
                    "overfitting",
                    f"overfitting: train accuracy {metrics['train_accuracy']:.3f} vs val "
                    f"{metrics['val_accuracy']:.3f} at epoch {state.epoch} (add dropout, "
                    "regularization.l2 or optim.weight_decay, or train.early_stopping)",
                )
        elif self.loss_should_fall and self._val_loss_rising(state):
            self._warn(
                "overfitting",
                f"overfitting: val loss {metrics['val_loss']:.3g} has risen "
                f"{OVERFIT_LOSS_RISE:.0%}+ above its best ({self._best_val_loss:.3g}, epoch "
                f"{self._best_val_epoch}) while train loss kept falling (add dropout, "
                "regularization.l2, or train.early_stopping)",
            )

    def _val_loss_rising(self, state: TrainState) -> bool:
        """The classic picture: val loss climbs well above its minimum for several epochs
        while the train loss goes on falling."""
        val, train = state.metrics.get("val_loss"), state.metrics.get("train_loss")
        if val is None or train is None:
            return False
        if val < self._best_val_loss:
            self._best_val_loss, self._best_val_epoch = val, state.epoch
            self._train_loss_at_best = train
            return False
        return (
            state.epoch - self._best_val_epoch >= OVERFIT_PATIENCE
            and val > (1 + OVERFIT_LOSS_RISE) * self._best_val_loss
            and train < self._train_loss_at_best
        )

    def _warn(self, kind: str, message: str) -> None:
        if kind in self._warned:
            return
        self._warned.add(kind)
        self.messages.append(message)
        warnings.warn(message, TrainingWarning, stacklevel=2)

    def state_dict(self) -> dict:
        return {
            "norms": self.norms,
            "messages": self.messages,
            "warned": sorted(self._warned),
            "first_loss": self._first_loss,
            "best_val": [self._best_val_loss, self._best_val_epoch, self._train_loss_at_best],
            "epoch_sums": self._epoch_sums,
            "epoch_count": self._epoch_count,
        }

    def load_state_dict(self, state: dict) -> None:
        self.norms, self.messages = state["norms"], state["messages"]
        self._warned, self._first_loss = set(state["warned"]), state["first_loss"]
        self._best_val_loss, self._best_val_epoch, self._train_loss_at_best = state["best_val"]
        self._epoch_sums, self._epoch_count = state["epoch_sums"], state["epoch_count"]


def _empty(batch: torch.Tensor | None) -> bool:
    return batch is not None and not len(batch)


class NonFiniteGuard(Callback):
    """Stops training at the first NaN or infinite loss, naming where it appeared."""

    def on_step_end(self, state: TrainState) -> None:
        if math.isfinite(state.loss):
            return
        lr = state.optimizer.param_groups[0]["lr"]
        where = first_non_finite(state.model, state.batch)
        epoch = state.epoch + 1  # state.epoch counts finished epochs
        raise NeuralabError(
            "training",
            f"loss became {state.loss} at epoch {epoch}, step {state.step}{where}",
            f"lower optim.lr from {lr:g}, set train.grad_clip, or add batch_norm",
        )


def first_non_finite(model: torch.nn.Module, batch: torch.Tensor | None) -> str:
    """Where it broke, nearest the input first: non-finite weights, else the first layer
    whose output on the latest batch is non-finite, else a non-finite gradient.

    An empty batch (DP-SGD's Poisson draw may hold no sample) has no outputs to check or
    size, so it is named instead.
    """
    for name, parameter in model.named_parameters():
        if not torch.isfinite(parameter).all():
            return f"; first non-finite weights in {name}"
    # an empty batch has no outputs to re-run or size: say so if nothing else is found
    nothing_found = "; the last batch held no samples" if _empty(batch) else ""
    batch = None if _empty(batch) else batch
    layer = _first_non_finite_output(model, batch) if batch is not None else None
    if layer:
        return f"; first non-finite output from layer {layer}"
    for name, parameter in model.named_parameters():
        if parameter.grad is not None and not torch.isfinite(parameter.grad).all():
            return f"; first non-finite gradient in {name}"
    if batch is not None:  # every layer is finite now: say how large the outputs have grown
        with torch.no_grad():
            largest = model(batch).abs().max().item()
        return f"; largest output on the last batch {largest:.3g}"
    return nothing_found


@torch.no_grad()
def _first_non_finite_output(model: torch.nn.Module, batch: torch.Tensor) -> str | None:
    """Re-run the batch with hooks on every leaf module; name the first bad output."""
    broken: list[str] = []

    def hook(name: str):
        def check(module, inputs, output) -> None:
            if not broken and isinstance(output, torch.Tensor) and not output.isfinite().all():
                broken.append(name)

        return check

    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    handles = [module.register_forward_hook(hook(name)) for name, module in leaves]
    try:
        model(batch)
    finally:
        for handle in handles:
            handle.remove()
    return broken[0] if broken else None
