"""A run folder's own data: the split it trained on and a fingerprint of its source.

At the end of training, `save_split` writes `split.safetensors` (which source samples went
to train, val and test) and `source_record` builds the card's `source` entry: every file
the source read, by absolute path, path relative to the run folder and sha256, plus a
sha256 of the samples themselves. Every command that needs the data afterwards calls
`load_run_data`, which rebuilds exactly that data from the folder: it finds each file at
its absolute path, else relative to the run folder (so a project moved whole, runs and
data together, still works), refuses a file that changed, and splits by the stored indices
instead of splitting again. A folder source (images) is fingerprinted by every file in it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from neuralab.card import Source, SourceFile, read_card
from neuralab.config import Experiment, load_config, load_raw, set_key
from neuralab.data import DataBundle, DatasetConfig, SplitIndices
from neuralab.data.digest import file_sha256
from neuralab.errors import NeuralabError
from neuralab.plan import plan
from neuralab.runs import CONFIG
from neuralab.tasks import Task

SPLIT = "split.safetensors"
PARTS = ("train", "val", "test")


def save_split(run_dir: Path, split: SplitIndices) -> None:
    """Write the split's indices (int64 tensors) and the samples' sha256 (metadata)."""
    tensors = {part: torch.as_tensor(getattr(split, part), dtype=torch.int64) for part in PARTS}
    save_file(tensors, str(run_dir / SPLIT), metadata={"samples_sha256": split.samples_sha256})


def read_split(run_dir: Path) -> SplitIndices:
    with safe_open(str(run_dir / SPLIT), framework="pt") as file:
        metadata = file.metadata() or {}
        train, val, test = (file.get_tensor(part).numpy() for part in PARTS)
    if "samples_sha256" not in metadata:
        raise NeuralabError(str(run_dir / SPLIT), "has no samples_sha256", "retrain the run")
    return SplitIndices(train, val, test, metadata["samples_sha256"])


def source_record(source: DatasetConfig, run_dir: Path, split: SplitIndices) -> Source:
    """The card's `source` entry: each file the source read and the samples' sha256.

    Paths relative to the run folder are taken from the folder where it is written; a
    run folder is only renamed in place afterwards, so they stay valid.
    """
    files = []
    for key, path in source.files().items():
        absolute = path.resolve()
        files.append(
            SourceFile(
                key=f"data.dataset.{key}",
                path=str(absolute),
                relative=os.path.relpath(absolute, run_dir.resolve()),
                sha256=file_sha256(absolute),
            )
        )
    return Source(files=files, samples_sha256=split.samples_sha256)


def saved_experiment(run_dir: Path, *, trust_code: bool) -> Experiment:
    """A run's experiment as its folder saved it, its model rebuilt from the folder alone
    (a user's network from the run's own copy, if trusted)."""
    return _in_run(load_config(run_dir / CONFIG), run_dir, trust_code)


def load_run_data(run_dir: str | Path, *, trust_code: bool = False) -> tuple[DataBundle, Task]:
    """The data and task a run trained with, rebuilt from its folder alone.

    Raises:
        NeuralabError: When a source file is missing or changed since training (naming
            it), or the source's samples differ from those the split was made from.
    """
    run_dir = Path(run_dir)
    card = read_card(run_dir)
    raw, split = load_raw(run_dir / CONFIG), None
    # a run trained before folders stored their split is split again from config and
    # seed, as such runs always were (without a check that the data is unchanged)
    if card.source is not None and (run_dir / SPLIT).is_file():
        for entry in card.source.files:
            set_key(raw, entry.key, str(_unchanged_file(entry, run_dir)))
        split = read_split(run_dir)
    planned = plan(_in_run(load_config(raw), run_dir, trust_code), split=split)
    return planned.bundle, planned.task


def _in_run(experiment: Experiment, run_dir: Path, trust_code: bool) -> Experiment:
    model = experiment.model.in_run(run_dir, trust_code=trust_code)
    return experiment.model_copy(update={"model": model})


def _unchanged_file(entry: SourceFile, run_dir: Path) -> Path:
    """The recorded file at its absolute path, else relative to the run folder; refused
    when what is there now has another sha256."""
    moved = (run_dir.resolve() / entry.relative).resolve()  # a clean path in any error
    candidates = dict.fromkeys([Path(entry.path), moved])
    present = [path for path in candidates if path.exists()]
    hashes = {path: file_sha256(path) for path in present}
    for path, sha256 in hashes.items():
        if sha256 == entry.sha256:
            return path
    if present:
        changed = present[0]
        raise NeuralabError(
            str(changed),
            f"changed since this run was trained (sha256 {hashes[changed][:12]}..., "
            f"trained on {entry.sha256[:12]}...)",
            "restore the file the run was trained on, or train a new run on this data",
        )
    raise NeuralabError(
        entry.key,
        f"file not found: {entry.path}, nor {entry.relative} from the run folder",
        "put the data back, or move it together with the run folder",
    )
