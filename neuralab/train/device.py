"""Where training runs and in what precision: one `Placement` the loop consults.

Data stays on the CPU in the `DataBundle`; each batch moves to the device on its way into
the model, and outputs come back for metrics. For the small in-memory sets neuralab trains
on, that costs little and keeps every metric and checkpoint device-independent.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from neuralab.errors import NeuralabError
from neuralab.train.diagnostics import TrainingWarning

Precision = Literal[32, "bf16", "fp16"]
DEVICE_PATTERN = r"auto|cpu|cuda|cuda:\d+|mps"


@dataclass(frozen=True)
class Placement:
    """The device, the autocast dtype (None: full fp32) and, for fp16, a gradient scaler."""

    device: torch.device = torch.device("cpu")
    dtype: torch.dtype | None = None
    scaler: torch.amp.GradScaler | None = None

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)


CPU = Placement()  # the default: full precision on the CPU


def resolve_device(name: str) -> torch.device:
    """`auto` -> CUDA, else Apple's MPS, else CPU; a named device must exist here."""
    if not re.fullmatch(DEVICE_PATTERN, name):
        raise NeuralabError(
            "train.device", f"unknown device '{name}'", "use auto, cpu, cuda, cuda:N or mps"
        )
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise NeuralabError(
                "train.device",
                f"'{name}' asked for, but CUDA is not available here",
                "use device: auto or cpu",
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise NeuralabError(
                "train.device",
                f"'{name}' asked for, but this machine has {torch.cuda.device_count()} GPU(s)",
                "number GPUs from 0",
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise NeuralabError(
            "train.device",
            "'mps' asked for, but it is not available here",
            "use device: auto or cpu",
        )
    return device


def make_placement(device_name: str, precision: Precision) -> Placement:
    """Check the device and precision go together, before anything is trained."""
    device = resolve_device(device_name)
    if precision == 32:
        return Placement(device)
    if precision == "fp16":
        if device.type != "cuda":
            raise NeuralabError(
                "train.precision",
                f"fp16 needs a CUDA device, but training runs on {device.type}",
                "use precision: bf16 on CPU",
            )
        # fp16's narrow range underflows small gradients: scale the loss up, the grads down
        return Placement(device, torch.float16, torch.amp.GradScaler("cuda"))
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise NeuralabError(
            "train.precision", "this GPU has no bf16 support", "use precision: fp16"
        )
    return Placement(device, torch.bfloat16)


def compile_model(model: nn.Module, sample: torch.Tensor) -> None:
    """`torch.compile` the model's forward in place (the state dict keeps its names).

    Compilation is lazy, so one forward pass on `sample` is tried here: where the compiler
    cannot handle the model or this machine (no C++ toolchain, an unsupported op), the
    model stays eager and one warning says why.
    """
    model.compile()
    try:
        with torch.no_grad():
            was_training = model.training
            model.eval()
            model(sample)
            model.train(was_training)
    except Exception as error:  # the compiler's failures have no common base class
        warnings.warn(
            f"torch.compile failed ({type(error).__name__}: {str(error).splitlines()[0][:200]}); "
            "training without it",
            TrainingWarning,
            stacklevel=2,
        )
        uncompile(model)


def uncompile(model: nn.Module) -> None:
    """Undo `nn.Module.compile`: it sets `_compiled_call_impl`, which `__call__` prefers."""
    model._compiled_call_impl = None
