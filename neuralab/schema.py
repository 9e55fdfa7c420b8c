"""The base of every config section: unknown keys are errors and values never change.

Kept apart from `config.py` so that `data/`, `models/` and `train/` can define their own
config classes beside the code they configure, and `config.py` can assemble them.
"""

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A config section: `extra="forbid"` turns a typo into an error, `frozen` keeps it fixed."""

    model_config = ConfigDict(extra="forbid", frozen=True)
