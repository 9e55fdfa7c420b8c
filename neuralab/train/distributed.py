"""Data-parallel training on PyTorch's own engine: torchrun starts the processes,
`torch.distributed` connects them, DistributedDataParallel averages the gradients.

neuralab only decides who does what: every rank trains on its shard of each global batch,
and rank 0 alone writes the run directory. `torchrun` sets RANK and WORLD_SIZE; without
them everything here is a no-op and training is one ordinary process.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from neuralab.errors import NeuralabError


@dataclass(frozen=True)
class Shard:
    """This process's place among `world` processes (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def writes(self) -> bool:
        """Only rank 0 writes files (run directory, metrics, checkpoints)."""
        return self.rank == 0

    def of(self, index: torch.Tensor) -> torch.Tensor:
        """This rank's part of a global batch: every world-th sample from its rank."""
        return index[self.rank :: self.world] if self.distributed else index


SINGLE = Shard()


def current() -> Shard:
    """The shard torchrun assigned to this process, from its environment."""
    return Shard(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)))


@contextlib.contextmanager
def process_group() -> Iterator[Shard]:
    """Join the process group for the duration (gloo on CPU, NCCL with GPUs)."""
    shard = current()
    if not shard.distributed or dist.is_initialized():
        yield shard
        return
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    try:
        yield shard
    finally:
        dist.destroy_process_group()


def wrap(model: nn.Module, shard: Shard) -> nn.Module:
    """The module the training step runs: DDP around `model` when distributed.

    DDP broadcasts rank 0's weights now and all-reduces (averages) gradients in backward,
    so every rank holds the same weights after each step.
    """
    if not shard.distributed:
        return model
    from neuralab.train.steps import TrainForward  # not at the top: steps imports this module

    if isinstance(model, TrainForward):  # DDP synchronises gradients through `forward` only
        raise NeuralabError(
            "--nproc",
            f"{type(model).__name__} trains through its own forward_train, which DDP cannot wrap",
            "train it in one process",
        )
    return nn.parallel.DistributedDataParallel(model)


def gather(values: list, shard: Shard) -> list:
    """Every rank's `values`, concatenated in rank order (for epoch train metrics)."""
    if not shard.distributed:
        return values
    parts: list[list | None] = [None] * shard.world
    dist.all_gather_object(parts, values)
    return [value for part in parts for value in (part or [])]


def agree(flag: bool, shard: Shard) -> bool:
    """Rank 0's decision, on every rank (e.g. early stopping), so no rank waits alone."""
    if not shard.distributed:
        return flag
    decision = [flag]
    dist.broadcast_object_list(decision, src=0)
    return bool(decision[0])


def share(value: str | None, shard: Shard) -> str:
    """Rank 0's `value` (e.g. the run directory it wrote), on every rank."""
    if not shard.distributed:
        return value or ""
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0] or ""


def launch(nproc: int, argv: list[str]) -> int:
    """Run `neuralab ARGV` in `nproc` local processes under torchrun; its exit code."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "neuralab",
        *argv,
    ]
    return subprocess.run(command, check=False).returncode
