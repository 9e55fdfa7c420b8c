"""`card.json`: what a run folder says about its run, typed and versioned.

The card holds what a later load needs (the model spec, the task, the data description
with its scaling statistics, the source fingerprint) and what the run measured (metrics,
timings, training health, versions). `Card` is its schema; `read_card` and `write_card` are
the only code that touches the file. A card carries its `format`; one written before cards
had it is format 1. A card of another format, or with a key that is missing, unknown or
of the wrong type, is refused naming card.json and the key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import (
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)
from pydantic_core import ErrorDetails

from neuralab.data import DataMeta
from neuralab.errors import NeuralabError, Problem
from neuralab.schema import Strict

CARD = "card.json"
FORMAT: Final = 1  # raise it when a change would make an older neuralab misread a card


class Diagnostics(Strict):
    """Training health: the gradient-health warnings and per-layer gradient norms by epoch."""

    warnings: list[str] = []
    gradient_norms: dict[str, list[float]] = {}


class InitFrom(Strict):
    """What `model.init_from` loaded from an earlier run, layer by layer."""

    run: str
    loaded: list[str]
    rebuilt: list[str]  # head layers left freshly initialised because the classes differ
    skipped: list[str]  # "layer: reason"
    unused: list[str]  # layers of the source run this model has not


class Transfer(Strict):
    """Which parameters trained, at which learning-rate multiplier, and where from."""

    init_from: InitFrom | None
    trainable_parameters: int
    frozen_parameters: int
    frozen: list[str]
    lr_factors: dict[str, float]
    unfreeze_at_epoch: int | None


class Privacy(Strict):
    """The DP-SGD budget asked for and what training spent of it."""

    epsilon_target: float
    epsilon_spent: float
    delta: float
    max_grad_norm: float
    noise_multiplier: float
    sample_rate: float
    accountant: str


class Calibration(Strict):
    """Temperature scaling fitted on the validation split by `neuralab calibrate`."""

    temperature: float
    val_ece_before: float
    val_ece_after: float
    test_ece_before: float
    test_ece_after: float


class SourceFile(Strict):
    """One file the data source read: where it was and what it held."""

    key: str  # the config key naming it, e.g. data.dataset.path
    path: str  # absolute, as trained
    relative: str  # from the run folder, for a project moved whole
    sha256: str


class Source(Strict):
    """The data the run trained on: its files and a fingerprint of its samples."""

    files: list[SourceFile]
    samples_sha256: str


class Versions(Strict):
    """The software and platform that produced the numbers."""

    model_config = ConfigDict(populate_by_name=True)  # `scikit_learn=` in code
    neuralab: str
    torch: str
    numpy: str
    scikit_learn: str = Field(alias="scikit-learn")
    python: str
    platform: str
    torch_threads: int  # results are identical per thread count, not across counts


class Card(Strict):
    """A run's card. Optional sections are `None` when the run has none, and then absent
    from card.json.

    `model` is the family spec as recorded (validated by the family registry when a run
    loads); `task_settings` is whatever the task keeps to rebuild itself (`task_from_card`).
    `metrics` maps a split (`val`, `test`) to metric names and values.
    """

    format: Literal[1] = FORMAT
    name: str
    model: dict[str, Any]
    task: str
    task_settings: dict[str, Any] = {}
    data: DataMeta
    metrics: dict[str, dict[str, float]]
    num_parameters: int
    train_seconds: float
    inference_ms_per_1000: float
    epochs_run: int
    best_epoch: int
    seed: int
    # how many data-parallel processes trained the last session; like the thread count it
    # changes the float sums (None: a card from before it was recorded)
    processes: int | None = None
    diagnostics: Diagnostics | None = None  # deep families only
    transfer: Transfer | None = None  # deep families only
    versions: Versions
    privacy: Privacy | None = None
    confusion_matrix: list[list[int]] | None = None  # classifiers: [true][predicted] counts
    source: Source | None = None  # None: a run from before folders stored their data
    calibration: Calibration | None = None

    @property
    def family(self) -> str:
        return str(self.model["family"])

    @model_serializer(mode="wrap")
    def _omit_absent_sections(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}


def read_card(run_dir: str | Path) -> Card:
    """The card of the run folder `run_dir`.

    Raises:
        NeuralabError: When `run_dir` has no card.json (not a run folder), or its card
            is not JSON, of another format, or has a missing, unknown or wrong-typed key.
    """
    path = Path(run_dir) / CARD
    if not path.is_file():
        raise NeuralabError(
            str(run_dir),
            "not a run directory (no card.json)",
            "pass a folder printed by `neuralab train`",
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise NeuralabError(str(path), f"not valid JSON: {error}") from None
    if not isinstance(raw, dict):
        raise NeuralabError(str(path), "a card must be a JSON object")
    if raw.get("format", FORMAT) != FORMAT:
        raise NeuralabError(
            f"{path}: format",
            f"{raw['format']!r}, but this neuralab reads card format {FORMAT}",
            "load the run with the neuralab version that trained it",
        )
    try:
        return Card.model_validate(raw if "format" in raw else _from_before_format(raw))
    except ValidationError as error:
        raise NeuralabError.many(_problem(path, e) for e in error.errors()) from None


# The target kinds that cards written before the `format` key named after tasks.
TARGET_KINDS_BEFORE_FORMAT = {"language_model": "next_token", "seq2seq": "sequence_pairs"}


def _from_before_format(raw: dict[str, Any]) -> dict[str, Any]:
    """A card written before `format` (neuralab 0.1.0 until issue 17), as format 1 reads it:
    its data's target kind by today's name, and the task's settings, which that card left
    implied: a classifier's class count, a multi-task run's heads (then under `tasks`)."""
    raw, data = dict(raw), dict(raw.get("data") or {})
    kind = data.get("task")
    if kind in TARGET_KINDS_BEFORE_FORMAT:
        data["task"] = TARGET_KINDS_BEFORE_FORMAT[kind]
    if "tasks" in raw:  # a multi-task run's heads
        data["task"] = "several_targets"
        raw["task_settings"] = {"heads": raw.pop("tasks")}
    elif kind == "classification" and raw.get("task") == kind and "task_settings" not in raw:
        raw["task_settings"] = {"num_classes": data.get("num_outputs")}
    raw["data"] = data
    return raw


def _problem(path: Path, error: ErrorDetails) -> Problem:
    """One invalid key of a card: where it is, and the value found when it is a plain one."""
    key = ".".join(map(str, error["loc"]))
    found = error.get("input")
    shown = f" (found {found!r})" if isinstance(found, str | int | float | bool) else ""
    return Problem(
        f"{path}: {key}", f"{error['msg']}{shown}", "retrain the run, or restore its card"
    )


def write_card(run_dir: str | Path, card: Card) -> None:
    """Write `card` as `run_dir`/card.json, atomically: a reader sees the old card or the
    new one, never part of one, and a failure leaves the old one in place."""
    path = Path(run_dir) / CARD
    text = json.dumps(card.model_dump(mode="json", by_alias=True), indent=2) + "\n"
    # beside the card, so the rename stays on one file system; opened normally (not
    # mkstemp) so the card gets the usual permissions
    temporary = path.with_name(f".{CARD}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
