"""Keys every network family shares: where its weights start and which of them stay fixed.

Each family's config class derives from `NetworkConfig`, so `model.init_from`,
`model.init_strict` and `model.freeze` read the same whatever the family. What they do is
in `neuralab/transfer.py`.
"""

from __future__ import annotations

from pydantic import Field

from neuralab.schema import Strict


class NetworkConfig(Strict):
    """The keys of the `model:` section that are not about the architecture."""

    # a run directory (or a glob such as runs/digits-pretrain-*: the newest match)
    init_from: str | None = None
    # a layer whose shape differs from the source's is an error unless this is false
    # (the output head is rebuilt either way when the classes differ)
    init_strict: bool = True
    # parameter names or prefixes (`features`, `features.0`) kept fixed while training
    freeze: tuple[str, ...] = Field(default=())
