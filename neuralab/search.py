"""The `search:` section: which config keys a tuning study varies, over which ranges.

Each entry of `space` maps a dotted config key to one dimension, written as a one-key
mapping: `{log_uniform: [low, high]}`, `{uniform: [low, high]}`, `{int: [low, high]}`
or `{choice: [a, b, ...]}`. Ranges are checked here; whether the key exists and accepts
those values is checked against the experiment by `neuralab.tune` before any trial runs.
"""

from __future__ import annotations

import builtins
import math
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from neuralab.errors import did_you_mean
from neuralab.schema import Strict

KINDS = ("log_uniform", "uniform", "int", "choice")


class Dimension(Strict):
    """One searched key: exactly one of the kinds, with its range or its choices."""

    log_uniform: tuple[float, float] | None = None
    uniform: tuple[float, float] | None = None
    int: tuple[builtins.int, builtins.int] | None = None  # the field is named `int`
    choice: list[Any] | None = Field(None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _one_kind(cls, raw: Any) -> Any:
        if not isinstance(raw, dict) or len(raw) != 1:
            raise ValueError(
                "write one of {log_uniform: [low, high]}, {uniform: [low, high]}, "
                "{int: [low, high]}, {choice: [a, b]}"
            )
        kind = next(iter(raw))
        if kind not in KINDS:
            raise ValueError(f"unknown kind '{kind}' ({did_you_mean(str(kind), KINDS)})")
        return raw

    @model_validator(mode="after")
    def _valid_range(self) -> Dimension:
        kind = self.kind
        if kind == "choice":
            return self._distinct_choices()
        low, high = getattr(self, kind)
        if not low < high:
            raise ValueError(f"{kind} needs low < high, but got low={low}, high={high}")
        if kind == "log_uniform" and low <= 0:
            raise ValueError(f"log_uniform needs low > 0, but got low={low}")
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"{kind} needs finite bounds, but got [{low}, {high}]")
        return self

    def _distinct_choices(self) -> Dimension:
        # Optuna finds a stored choice by equality, so `1`, `1.0` and `true`, or `[8]` and
        # the text '[8]', would all come back as the first of them.
        choices, labels = list(self.choice or []), self.labels()
        for index, label in enumerate(labels):
            if label in labels[:index]:
                raise ValueError(
                    f"choices {choices[labels.index(label)]!r} and {choices[index]!r} "
                    "are one choice to the study; keep one of them"
                )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)

    def extremes(self) -> list[Any]:
        """The values at the edges of this dimension: what a trial may set the key to."""
        return list(self.choice) if self.choice is not None else list(getattr(self, self.kind))

    def labels(self) -> list[Any]:
        """What a study stores for each choice: scalars as they are, lists and mappings
        as their YAML text (Optuna stores scalar choices only)."""
        return [
            c if _scalar(c) else yaml.safe_dump(c, default_flow_style=True).strip()
            for c in self.choice or []
        ]

    def chosen(self, label: Any) -> Any:
        """The choice that a study stored as `label`, whatever mix of kinds the choices are."""
        return list(self.choice or [])[self.labels().index(label)]


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


class SearchConfig(Strict):
    """The `search:` section: what to optimise, over which keys, for how many trials.

    `metric` defaults to the task's main validation metric (`val_accuracy`, `val_r2`);
    `direction` is inferred from it (losses and errors are minimised). The pruner may stop
    a trial once it has run `min_epochs` epochs.
    """

    metric: str | None = None
    direction: Literal["maximize", "minimize"] | None = None
    trials: int = Field(20, ge=1)
    space: dict[str, Dimension] = Field(min_length=1)
    pruner: Literal["none", "median", "hyperband"] = "median"
    # The first epochs rank trials by how fast they start (a small batch takes more steps
    # per epoch), not by where they end; a judgement, not a measured gain (docs/tuning.md).
    min_epochs: int = Field(3, ge=1)
    sampler: Literal["tpe", "random"] = "tpe"
