"""Your own network: `family: module` builds any `nn.Module` class from a Python file.

`model: {family: module, path: "net.py:Net", args: {hidden: 64}}` imports `net.py` and
builds `Net(input_shape, num_outputs, hidden=64)`; training, checkpoints, resume, compare,
serve and export (where the forward pass traces) then treat it as any other family. The
file is copied into the run folder's `code/`, and a saved run is rebuilt from that copy,
so it predicts after the original is gone. Rebuilding executes the copy: a caller must
say it trusts the run (`--trust-code`, `trust_code=True`) before anything is imported.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Literal

import torch
from pydantic import field_validator
from torch import nn

from neuralab.data import DataMeta
from neuralab.errors import NeuralabError, did_you_mean
from neuralab.models.network import NetworkConfig

CODE = "code"  # the run folder's copy of the user's file lives in this subfolder
WHERE = "model.path"
# A constructor argument as YAML writes it; no mappings, so `--set model.args.x=1` and
# tuning address every argument by one dotted key.
Scalar = bool | int | float | str | None
Argument = Scalar | list[Scalar] | list[list[Scalar]]
POSITIONAL = ("input_shape", "num_outputs")  # passed by neuralab, never in `args`


class ModuleConfig(NetworkConfig):
    """The `model:` section when `family: module`: the user's own `nn.Module` class."""

    family: Literal["module"] = "module"
    # "file.py:ClassName"; a relative file is read from the experiment file's folder
    path: str
    # keyword arguments of the class, after (input_shape, num_outputs)
    args: dict[str, Argument] = {}

    @field_validator("path")
    @classmethod
    def _file_and_class(cls, path: str) -> str:
        file, colon, name = path.rpartition(":")
        if not colon or not file.endswith(".py") or not name.isidentifier():
            raise ValueError(f"'{path}' is not 'file.py:ClassName'")
        return path

    @field_validator("args", mode="before")
    @classmethod
    def _plain_values(cls, args: object) -> object:
        """One clear line for a mapping, instead of one per member of the `Argument` union."""
        if isinstance(args, dict):
            nested = [str(key) for key, value in args.items() if not _plain(value)]
            if nested:
                raise ValueError(
                    f"{', '.join(nested)}: an argument is a number, string, boolean, null, "
                    "or a list of them"
                )
        return args

    @field_validator("args")
    @classmethod
    def _no_positional(cls, args: dict[str, Argument]) -> dict[str, Argument]:
        taken = [key for key in POSITIONAL if key in args]
        if taken:
            raise ValueError(f"{', '.join(taken)} come from the data; remove them from args")
        return args

    @property
    def file(self) -> Path:
        return Path(self.path.rpartition(":")[0])

    @property
    def class_name(self) -> str:
        return self.path.rpartition(":")[2]

    def build(self, *, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
        """Import the file, construct the class, and run one tiny batch through it.

        Raises:
            NeuralabError: Naming `model.path`, for a missing file, a file that fails to
                import, a missing class, a class that is not an `nn.Module`, a constructor
                or forward pass that raises, or an output of the wrong shape.
        """
        network_class = self._network_class()
        arguments = ", ".join([str(input_shape), str(num_outputs)] + _keywords(self.args))
        call = f"{self.class_name}({arguments})"
        # the check leaves the global random state as it was: training draws the same
        # numbers whether or not a model was built to check the file first
        with torch.random.fork_rng(devices=[]):
            try:
                model = network_class(input_shape, num_outputs, **self.args)
            except Exception as error:  # the user's constructor may raise anything
                raise NeuralabError(
                    WHERE,
                    f"{call} raised {type(error).__name__}: {error}",
                    "the class is built as Class(input_shape, num_outputs, **model.args)",
                ) from None
            _check_forward(model, call, input_shape, num_outputs)
        return model

    def check_builds(self, meta: DataMeta) -> None:
        """The user's class imports, builds and answers a tiny batch (see `build`)."""
        self.build(input_shape=meta.input_shape, num_outputs=meta.num_outputs)

    def carry_into(self, run_dir: Path) -> ModuleConfig:
        """Copy the user's file into `run_dir/code/`; train from the copy."""
        _require_file(self.file)
        (run_dir / CODE).mkdir(exist_ok=True)
        shutil.copyfile(self.file, run_dir / CODE / self.file.name)
        return self.as_recorded().in_run(run_dir, trust_code=True)  # the user's own file

    def as_recorded(self) -> ModuleConfig:
        """This spec as a run's card records it: the class read from the run's `code/`."""
        return self.model_copy(update={"path": f"{CODE}/{self.file.name}:{self.class_name}"})

    def in_run(self, run_dir: Path, *, trust_code: bool) -> ModuleConfig:
        """The spec that rebuilds a saved run's network from the copy in `run_dir/code/`.

        Only the file's name is kept from `path`, so a card cannot point outside the run.

        Raises:
            NeuralabError: Unless `trust_code`: loading the run would execute its code.
        """
        relative = f"{CODE}/{self.file.name}"
        if not trust_code:
            raise NeuralabError(
                str(run_dir),
                f"this run carries code ({relative}) that loading would execute",
                "pass --trust-code, or trust_code=True in Python, if you trust its source",
            )
        copy = run_dir / relative
        if not copy.is_file():
            raise NeuralabError(
                str(run_dir),
                f"{relative} is missing, and the run's network is built from it",
                "copy the run folder whole",
            )
        return self.model_copy(update={"path": f"{copy.resolve()}:{self.class_name}"})

    def _network_class(self) -> type[nn.Module]:
        module = _import_file(self.file)
        found = getattr(module, self.class_name, None)
        if found is None:
            classes = _classes(module)
            hint = did_you_mean(self.class_name, classes) if classes else "it defines no class"
            raise NeuralabError(WHERE, f"no class '{self.class_name}' in {self.file}", hint)
        if not (isinstance(found, type) and issubclass(found, nn.Module)):
            raise NeuralabError(
                WHERE,
                f"'{self.class_name}' in {self.file} is not a torch.nn.Module subclass",
                "name a class that derives from nn.Module",
            )
        return found


def _import_file(file: Path) -> ModuleType:
    """Execute `file` as a fresh module with a name of its own (one per file location,
    so two runs' `net.py` never share a module)."""
    _require_file(file)
    resolved = file.resolve()
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    stem = re.sub(r"\W", "_", resolved.stem)
    name = f"neuralab_module_{stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise NeuralabError(WHERE, f"cannot import {file}", "name a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look a class's module up here
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # the user's file may raise anything, SyntaxError included
        del sys.modules[name]
        raise NeuralabError(
            WHERE, f"importing {file} raised {type(error).__name__}: {error}"
        ) from None
    return module


def _require_file(file: Path) -> None:
    if not file.is_file():
        hint = "a relative path is read from the experiment file's folder"
        raise NeuralabError(WHERE, f"file not found: {file}", hint)


def _classes(module: ModuleType) -> list[str]:
    """The classes defined in the user's file (not those it imports), networks first."""
    own = [
        (name, value)
        for name, value in vars(module).items()
        if isinstance(value, type) and value.__module__ == module.__name__
    ]
    networks = [name for name, value in own if issubclass(value, nn.Module)]
    return networks or [name for name, _ in own]


def _plain(value: object, depth: int = 0) -> bool:
    """A value `Argument` allows: a scalar, or a list (of lists) of scalars."""
    if isinstance(value, list):
        return depth < 2 and all(_plain(item, depth + 1) for item in value)
    return value is None or isinstance(value, bool | int | float | str)


def _keywords(args: dict[str, Argument]) -> list[str]:
    return [f"{key}={value!r}" for key, value in args.items()]


def _check_forward(
    model: nn.Module, call: str, input_shape: tuple[int, ...], num_outputs: int
) -> None:
    """Two zero samples through the network: it must give (2, num_outputs)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = model(torch.zeros(2, *input_shape))
    except Exception as error:  # the user's forward may raise anything
        raise NeuralabError(
            WHERE,
            f"{call}'s forward pass on a batch of shape {(2, *input_shape)} raised "
            f"{type(error).__name__}: {error}",
            "forward takes (batch, *input_shape)",
        ) from None
    finally:
        model.train(was_training)
    shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
    if shape != (2, num_outputs):
        raise NeuralabError(
            WHERE,
            f"{call}'s forward pass gives {shape} for a batch of 2, expected {(2, num_outputs)}",
            "return one row of num_outputs scores per sample",
        )
