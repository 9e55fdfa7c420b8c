"""What every `data.dataset` source declares: the keys that hold its file paths, and the
shorthand that names it. The source's class answers; nothing keeps a table of sources by
name (the `DatasetConfig` union in `data/__init__.py` is the registry)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Self

from neuralab.schema import Strict


class DataSource(Strict):
    """A dataset config class: `load(seed)` returns the samples as `RawData`."""

    name: str  # each source narrows it to its own name, the registry's discriminator
    # the keys holding file or folder paths: relative ones are read from the experiment
    # file's folder, and a run fingerprints what they point at (neuralab/run_data.py)
    path_keys: ClassVar[tuple[str, ...]] = ()
    # `dataset: {<shorthand>: PATH}` means `{name: <name>, <path_keys[0]>: PATH}`
    shorthand: ClassVar[str | None] = None

    def carry_into(self, run_dir: Path) -> Self:
        """The source training reads once the run folder exists: samples handed over from
        Python are copied into it; files elsewhere and generated sets stay where they are."""
        return self

    def files(self) -> dict[str, Path]:
        """Every file or folder this source reads, by its key (none: generated data, checked
        by its samples' fingerprint alone)."""
        return {
            key: Path(path) for key in self.path_keys if (path := getattr(self, key)) is not None
        }
