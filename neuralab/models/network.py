"""Keys every network family shares: where its weights start and which of them stay fixed,
and the training step it takes.

Each family's config class derives from `NetworkConfig`, so `model.init_from`,
`model.init_strict` and `model.freeze` read the same whatever the family. What they do is
in `neuralab/transfer.py`. `step()` is the family's choice of training step
(`neuralab/train/steps.py`): supervised unless the family says otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from pydantic import Field
from torch import nn

from neuralab.data import DataMeta
from neuralab.errors import Problem
from neuralab.family import Family
from neuralab.train.steps import SUPERVISED, Step, setting_problems

if TYPE_CHECKING:
    from neuralab.config import Experiment


class NetworkConfig(Family):
    """The keys of the `model:` section that are not about the architecture."""

    # a network body with an output layer wide enough for several heads reads `tasks:` data
    data_tasks: ClassVar[tuple[str, ...]] = ("classification", "regression", "several_targets")

    # a run directory (or a glob such as runs/digits-pretrain-*: the newest match)
    init_from: str | None = None
    # a layer whose shape differs from the source's is an error unless this is false
    # (the output head is rebuilt either way when the classes differ)
    init_strict: bool = True
    # parameter names or prefixes (`features`, `features.0`) kept fixed while training
    freeze: tuple[str, ...] = Field(default=())

    def build(self, *, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
        """The network for samples of `input_shape` and `num_outputs` outputs."""
        raise NotImplementedError

    def initialised(self, meta: DataMeta, *, seed: int) -> nn.Module:
        """The network for `meta`'s data, its weights drawn from `seed`: the same seed gives
        the same weights, and the caller's global random state is left as it was."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.build(input_shape=meta.input_shape, num_outputs=meta.num_outputs)

    def step(self) -> Step:
        """The training step `fit` takes on each batch (a GAN overrides it)."""
        return SUPERVISED

    def problems(self, experiment: Experiment) -> list[Problem]:
        """The settings this family's training step cannot honour, each with the reason."""
        return setting_problems(self.step(), experiment)
