"""What every model family declares, deep or classical: the data it reads, the task it
implies, and its problems with an experiment.

The family's config class answers (STYLE §3a); callers never switch on its name. A
network family derives from `models.network.NetworkConfig`, a classical baseline from
`baselines.BaselineSpec`; both from `Family`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Self

from neuralab.errors import Problem
from neuralab.schema import Strict
from neuralab.tasks import LossName, Task, make_task

if TYPE_CHECKING:
    from neuralab.config import Experiment
    from neuralab.data import DataMeta


class Family(Strict):
    """The defaults: learns what its data implies, from classes or values."""

    family: str  # each family narrows it to its own name, the registry's discriminator
    # the kinds of data (`DataMeta.task`) the family learns from
    data_tasks: ClassVar[tuple[str, ...]] = ("classification", "regression")
    # how to get data it reads, said when the experiment's data is of another kind
    data_hint: ClassVar[str | None] = None
    # the setting that builds it without batch norm, which DP-SGD cannot train
    without_batch_norm: ClassVar[str | None] = None

    def task(self, meta: DataMeta, loss: LossName) -> Task:
        """The task this family learns on `meta`'s data, with the configured loss."""
        return make_task(meta, loss)

    def problems(self, experiment: Experiment) -> list[Problem]:
        """Settings of `experiment` this family cannot honour, all at once."""
        return []

    def check_builds(self, meta: DataMeta) -> None:
        """Fail before any file is written if the model cannot be built for this data; only
        a family whose build runs the user's code needs to look (the others build safely)."""

    def carry_into(self, run_dir: Path) -> Self:
        """The spec training uses once the run folder exists: a family whose code travels
        with the run copies it into `run_dir` and builds from the copy."""
        return self

    def as_recorded(self) -> Self:
        """The spec as the card records it (a carried network: by its copy in the run)."""
        return self

    def in_run(self, run_dir: Path, *, trust_code: bool) -> Self:
        """The spec that rebuilds a saved run's model from `run_dir` alone.

        Raises:
            NeuralabError: When rebuilding would execute code the run carries, unless
                `trust_code`.
        """
        return self

    def export_refusal(self) -> tuple[str, str] | None:
        """Why no exported graph of this family reproduces its predictions, and what serves
        them instead (None: one does; docs/serving.md has the support matrix)."""
        return None
