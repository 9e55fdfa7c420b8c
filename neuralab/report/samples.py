"""Grids of generated samples: `samples.png` in a GAN's run directory, refreshed every few
epochs while it trains and written once more at the end."""

from __future__ import annotations

from pathlib import Path

from neuralab.data import DataMeta
from neuralab.models.generative import Generative, generate
from neuralab.report.figures import sample_grid
from neuralab.train.callbacks import Callback, TrainState

SAMPLES = "samples.png"
GRID_SIZE = 64
GRID_SEED = 0  # the same noise every time, so successive grids show the same draws improve


def write_sample_grid(model: Generative, meta: DataMeta, path: Path, n: int, seed: int) -> Path:
    path.write_bytes(sample_grid(generate(model, meta, n, seed=seed), meta.kind))
    return path


class SampleGrid(Callback):
    """Writes `run_dir/samples.png` every `every` epochs (if set) and when training ends."""

    def __init__(self, run_dir: Path, meta: DataMeta, every: int | None) -> None:
        self.path, self.meta, self.every = run_dir / SAMPLES, meta, every

    def on_epoch_end(self, state: TrainState) -> None:
        if self.every and state.epoch % self.every == 0:
            write_sample_grid(self._generative(state), self.meta, self.path, GRID_SIZE, GRID_SEED)

    def on_fit_end(self, state: TrainState) -> None:
        write_sample_grid(self._generative(state), self.meta, self.path, GRID_SIZE, GRID_SEED)

    @staticmethod
    def _generative(state: TrainState) -> Generative:
        if not isinstance(state.model, Generative):
            raise TypeError(f"{type(state.model).__name__} has no sample() to draw a grid from")
        return state.model
