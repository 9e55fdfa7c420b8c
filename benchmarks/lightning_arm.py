"""The overhead benchmark's arm (c): PyTorch Lightning's `Trainer` (the `[bench]` extra).

The loaders hand Lightning whole batches cut from the in-memory tensors by a batch sampler
(`batch_size=None` turns off per-sample collation), in the order neuralab's loop draws
them, so the three arms train on exactly the same batches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import lightning as L
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import BatchSampler, DataLoader, Sampler, SequentialSampler, TensorDataset

from neuralab.config import Experiment
from neuralab.data import DataBundle
from neuralab.train.loop import EVAL_BATCH_SIZE, batch_indices, num_batches


class ShuffledBatches(Sampler[torch.Tensor]):
    """A fresh seeded permutation every epoch, cut into batches as neuralab cuts it."""

    def __init__(self, num_samples: int, batch_size: int, seed: int) -> None:
        self.num_samples, self.batch_size = num_samples, batch_size
        self.order = torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[torch.Tensor]:
        permutation = torch.randperm(self.num_samples, generator=self.order)
        return batch_indices(permutation, self.batch_size)

    def __len__(self) -> int:
        return num_batches(self.num_samples, self.batch_size)


class Classifier(L.LightningModule):
    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        super().__init__()
        self.model, self.optimizer = model, optimizer

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], index: int) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self.model(x), y)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], index: int) -> None:
        x, y = batch
        output = self.model(x)
        self.log("val_loss", F.cross_entropy(output, y))
        self.log("val_accuracy", (output.argmax(1) == y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer


class LoopTimer(L.Callback):
    """Wall and CPU seconds of Lightning's epochs loop, without the Trainer's setup."""

    def __init__(self) -> None:
        self.started = self.seconds = self.cpu_started = self.cpu_seconds = 0.0

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.started, self.cpu_started = time.perf_counter(), time.process_time()

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.seconds = time.perf_counter() - self.started
        self.cpu_seconds = time.process_time() - self.cpu_started


def fit_with_lightning(
    model: nn.Module, optimizer: torch.optim.Optimizer, bundle: DataBundle, experiment: Experiment
) -> tuple[float, float]:
    """Train `model` in place; returns the wall and CPU seconds of the epochs loop."""
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)  # no banner per fit
    train = TensorDataset(bundle.x_train, bundle.y_train)
    val = TensorDataset(bundle.x_val, bundle.y_val)
    sampler = ShuffledBatches(len(train), experiment.train.batch_size, experiment.seed)
    val_batches = BatchSampler(SequentialSampler(val), EVAL_BATCH_SIZE, drop_last=False)
    timer = LoopTimer()
    trainer = L.Trainer(
        max_epochs=experiment.train.epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[timer],
    )
    torch.manual_seed(experiment.seed)  # dropout draws from here, as in the other arms
    # Each DataLoader iteration draws a base seed; from its own generator, not dropout's.
    loaders = {
        "train_dataloaders": DataLoader(
            train, sampler=sampler, batch_size=None, generator=torch.Generator()
        ),
        "val_dataloaders": DataLoader(
            val, sampler=val_batches, batch_size=None, generator=torch.Generator()
        ),
    }
    trainer.fit(Classifier(model, optimizer), **loaders)
    return timer.seconds, timer.cpu_seconds
