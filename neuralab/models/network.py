"""Keys every network family shares: where its weights start and which of them stay fixed,
and the training step it takes.

Each family's config class derives from `NetworkConfig`, so `model.init_from`,
`model.init_strict` and `model.freeze` read the same whatever the family. What they do is
in `neuralab/transfer.py`. `step()` is the family's choice of training step
(`neuralab/train/steps.py`): supervised unless the family says otherwise.
"""

from __future__ import annotations

from pydantic import Field

from neuralab.schema import Strict
from neuralab.train.steps import SUPERVISED, Step


class NetworkConfig(Strict):
    """The keys of the `model:` section that are not about the architecture."""

    # a run directory (or a glob such as runs/digits-pretrain-*: the newest match)
    init_from: str | None = None
    # a layer whose shape differs from the source's is an error unless this is false
    # (the output head is rebuilt either way when the classes differ)
    init_strict: bool = True
    # parameter names or prefixes (`features`, `features.0`) kept fixed while training
    freeze: tuple[str, ...] = Field(default=())

    def step(self) -> Step:
        """The training step `fit` takes on each batch (a GAN overrides it)."""
        return SUPERVISED
