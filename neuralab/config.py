"""The experiment file: pydantic models for every section, and `load_config`.

YAML (plus `--set key=value` overrides, merged before validation so they get the same
checks) becomes one validated, frozen `Experiment`. Every mistake in the file is reported
at once, each naming its key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, cast, get_args

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from neuralab.data import DataConfig, TargetKind, expand_shorthand, source_named
from neuralab.errors import NeuralabError, Problem, did_you_mean
from neuralab.models import ModelConfig
from neuralab.models.network import NetworkConfig
from neuralab.multitask import TasksConfig
from neuralab.schema import Strict
from neuralab.search import SearchConfig
from neuralab.tasks import LossName
from neuralab.train.device import DEVICE_PATTERN, Precision
from neuralab.train.optim import AdamConfig, NoScheduleConfig, OptimizerConfig, ScheduleConfig
from neuralab.train.privacy import PrivacyConfig


class EarlyStoppingConfig(Strict):
    """Stop when `monitor` has not improved for `patience` epochs; restore the best weights."""

    monitor: str = "val_loss"
    patience: int = Field(5, ge=1)
    min_delta: float = Field(0.0, ge=0.0)


class TrainConfig(Strict):
    """The `train:` section: how long, in what batches, with which guards."""

    epochs: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=1)
    loss: LossName = "auto"
    early_stopping: EarlyStoppingConfig | None = None
    grad_clip: float | None = Field(None, gt=0.0)
    checkpoint_every: int | None = Field(None, ge=1)
    # an epoch-end checkpoint is skipped until this long after the previous one
    checkpoint_seconds: float = Field(10.0, ge=0.0)
    keep_checkpoints: int = Field(2, ge=1)
    # torch.use_deterministic_algorithms: errors on ops without a deterministic kernel
    deterministic: bool = False
    device: str = Field("auto", pattern=rf"^({DEVICE_PATTERN})$")
    precision: Precision = 32
    compile: bool = False  # torch.compile the model; falls back with a warning
    # the parameters in model.freeze train again from this epoch on (1-based)
    unfreeze_at_epoch: int | None = Field(None, ge=2)


class RegularizationConfig(Strict):
    """Penalties added to the loss (over weights, not biases) and noise added to inputs."""

    l1: float = Field(0.0, ge=0.0)
    l2: float = Field(0.0, ge=0.0)
    input_noise: float = Field(0.0, ge=0.0)


class Experiment(Strict):
    """One experiment: data, model, optimisation and training, all validated up front."""

    name: str = Field("experiment", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    seed: int = Field(0, ge=0)
    # the data's target kind, or a task learned from any data (its family must learn it)
    task: Literal["classification", "regression", "clustering"] | None = None
    data: DataConfig
    model: ModelConfig
    optim: OptimizerConfig = AdamConfig()
    schedule: ScheduleConfig = NoScheduleConfig()
    train: TrainConfig = TrainConfig()
    regularization: RegularizationConfig = RegularizationConfig()
    search: SearchConfig | None = None  # read by `neuralab tune`; `train` ignores it
    # several heads on one body, each with its own target and loss weight (multitask.py)
    tasks: TasksConfig | None = Field(None, min_length=1)
    privacy: PrivacyConfig | None = None  # DP-SGD; see docs/trust.md

    @model_validator(mode="before")
    @classmethod
    def _default_names(cls, raw: Any) -> Any:
        """`optim: {lr: 0.01}` keeps the default optimizer's name (likewise `schedule`)."""
        if isinstance(raw, dict):
            for section in ("optim", "schedule"):
                if isinstance(raw.get(section), dict) and "name" not in raw[section]:
                    default = cls.model_fields[section].default.name
                    raw = {**raw, section: {**raw[section], "name": default}}
        return raw

    @property
    def target_kind(self) -> TargetKind | None:
        """The kind of targets `task` says the data holds (None: the data says, as it does
        for a task learned from any data, such as clustering)."""
        return cast(TargetKind, self.task) if self.task in get_args(TargetKind) else None

    @property
    def network(self) -> NetworkConfig:
        """The model, where only a network can be meant (training deep, inspecting layers)."""
        if not isinstance(self.model, NetworkConfig):
            raise NeuralabError(
                "model.family", f"'{self.model.family}' is a classical baseline, not a network"
            )
        return self.model

    def resolved(self) -> dict[str, Any]:
        """The config with every default filled in, as plain YAML-safe data."""
        return self.model_dump(mode="json", exclude={"search"} if self.search is None else None)


def load_config(
    source: str | Path | dict[str, Any], overrides: list[str] | tuple[str, ...] = ()
) -> Experiment:
    """Read, override and validate an experiment.

    Args:
        source: A YAML file, or the experiment as a dict.
        overrides: `key.path=value` strings; values are parsed as YAML (`0.01`, `[32, 64]`).

    Raises:
        NeuralabError: Naming every invalid key, with the value received and a hint.
    """
    raw = load_raw(source, overrides)
    try:
        return Experiment.model_validate(raw)
    except ValidationError as error:
        raise NeuralabError.many(_problem(e, raw) for e in error.errors()) from None


def load_raw(
    source: str | Path | dict[str, Any], overrides: list[str] | tuple[str, ...] = ()
) -> dict[str, Any]:
    """The experiment as a plain dict, overrides applied and data paths made absolute, not
    yet validated (`neuralab tune` sets searched keys in it before validating each trial)."""
    if isinstance(source, dict):
        raw, base = _copy(source), Path.cwd()
    else:
        path = Path(source)
        raw, base = _read_yaml(path), path.parent
    _expand_shorthand(raw)
    _expand_arrays_shorthand(raw)
    for override in overrides:
        _apply_override(raw, override)
    _expand_shorthand(raw)  # an override may itself be one: `--set 'data.dataset={text: a}'`
    _expand_arrays_shorthand(raw)
    _resolve_data_paths(raw, base)
    _resolve_module_path(raw, base)
    return raw


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise NeuralabError(str(path), "experiment file not found", "check the path")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise NeuralabError(where, f"malformed YAML: {error.problem}") from None
    except yaml.YAMLError as error:
        raise NeuralabError(str(path), f"malformed YAML: {error}") from None
    if raw is None:
        raise NeuralabError(str(path), "experiment file is empty", "see examples/ for a start")
    if not isinstance(raw, dict):
        raise NeuralabError(
            str(path),
            "an experiment must be a mapping of sections",
            "start with keys like name, data, model",
        )
    return raw


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _apply_override(raw: dict[str, Any], override: str) -> None:
    """`optim.lr=0.01` -> raw["optim"]["lr"] = 0.01, creating sections as needed."""
    key, sep, text = override.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", key.strip()):
        raise NeuralabError(
            "--set", f"'{override}' is not key=value", "write e.g. --set optim.lr=0.01"
        )
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    set_key(raw, key.strip(), value)


def set_key(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted `key` in a raw experiment dict, creating sections as needed."""
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        child = node.get(part)
        if isinstance(child, str) and part == "dataset":  # `dataset: digits` shorthand
            child = {"name": child}
        if not isinstance(child, dict):
            child = {}
        node[part] = child
        node = child
    node[leaf] = value


def _expand_shorthand(raw: dict[str, Any]) -> None:
    """A data source's shorthand (`data: {text: PATH}`): before overrides, so `--set
    data.dataset.window=64` finds the dataset section, and again after them."""
    if isinstance(raw.get("data"), dict):
        expand_shorthand(raw["data"])


def _expand_arrays_shorthand(raw: dict[str, Any]) -> None:
    """`dataset: {x: a.npy, y: b.npy}` means `{name: arrays, x: a.npy, y: b.npy}` (before
    and after overrides)."""
    data = raw.get("data")
    dataset = data.get("dataset") if isinstance(data, dict) else None
    if isinstance(dataset, dict) and "name" not in dataset and "x" in dataset:
        dataset["name"] = "arrays"


def _resolve_data_paths(raw: dict[str, Any], base: Path) -> None:
    """Relative data paths are read from the experiment file's folder (a run's own
    `data.npz` from the run folder, where its config.yaml is)."""
    data = raw.get("data")
    dataset = data.get("dataset") if isinstance(data, dict) else None
    if not isinstance(dataset, dict):
        return
    source = source_named(dataset.get("name", "csv"))
    for key in source.path_keys if source else ():
        if isinstance(dataset.get(key), str) and not Path(dataset[key]).is_absolute():
            dataset[key] = str((base / dataset[key]).resolve())


def _resolve_module_path(raw: dict[str, Any], base: Path) -> None:
    """`family: module`'s file, like a CSV, is read from the experiment file's folder."""
    model = raw.get("model")
    if not isinstance(model, dict) or model.get("family") != "module":
        return
    path = model.get("path")
    file, _, name = path.rpartition(":") if isinstance(path, str) else ("", "", "")
    if file.endswith(".py") and not Path(file).is_absolute():  # else the error shows it as written
        model["path"] = f"{(base / file).resolve()}:{name}"


def _problem(error: ErrorDetails, raw: dict[str, Any]) -> Problem:
    """A pydantic error -> Problem with a dotted key (union tags removed) and a hint."""
    keys, parent = _locate(error["loc"])
    where = ".".join(keys)
    received = error.get("input")
    kind = error["type"]
    if kind == "extra_forbidden":
        valid = list(parent.model_fields) if parent else []
        return Problem(where, "unknown key", did_you_mean(keys[-1], valid) if valid else "")
    if kind == "missing":
        return Problem(where, "required key is missing")
    if kind == "union_tag_invalid":
        ctx = error["ctx"]
        tag, expected = ctx["tag"], re.findall(r"'([^']+)'", ctx["expected_tags"])
        discriminator = ctx["discriminator"].strip("'")
        return Problem(
            f"{where}.{discriminator}",
            f"unknown {discriminator} '{tag}'",
            did_you_mean(tag, expected),
        )
    message = error["msg"].removeprefix("Value error, ")
    if isinstance(received, str | int | float | bool) and kind != "value_error":
        message = f"{message}, got {received!r}"
    return Problem(where, message)


def _locate(loc: tuple[Any, ...]) -> tuple[list[str], type[BaseModel] | None]:
    """Follow pydantic's error location through the schema.

    Returns the user's dotted keys, without the union tags pydantic inserts after a
    discriminated field (`('model', 'cnn', 'channels')` -> `model.channels`), and the
    config class that holds the last key.
    """
    keys: list[str] = []
    cls: type[BaseModel] | None = Experiment
    parent = cls
    union: dict[str, type[BaseModel]] = {}
    for part in loc:
        if union:  # this part is the tag that picked a member of the union
            cls, union = union.get(str(part)), {}
            continue
        keys.append(str(part))
        parent = cls
        field = cls.model_fields.get(str(part)) if cls is not None else None
        classes = _model_classes(field.annotation) if field is not None else []
        cls = classes[0] if len(classes) == 1 else None
        if len(classes) > 1:
            union = {_tag(c): c for c in classes}
    return keys, parent


def _model_classes(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [c for arg in get_args(annotation) for c in _model_classes(arg)]


def _tag(cls: type[BaseModel]) -> str:
    """The discriminator value (`family` or `name`) of a union member."""
    field = cls.model_fields.get("family") or cls.model_fields["name"]
    return str(field.default)
