"""Export a trained network to ONNX or TorchScript, checked against PyTorch on the test set.

The exported graph maps standardised inputs to raw outputs, as the PyTorch model does;
standardisation and the output activation stay in `Predictor` (they come from the card).
A file is written next to the weights only after its outputs on the run's whole test
split matched PyTorch's within `TOLERANCE`; otherwise nothing is left behind.

ONNX uses PyTorch's torch.export-based exporter and ONNX Runtime to check (the optional
extra `neuralab[onnx]`). TorchScript uses `torch.jit.trace`, which PyTorch has deprecated
in favour of torch.export: it is kept for runtimes that still load `.pt` TorchScript.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import TypeAdapter
from torch import nn

from neuralab.baselines import Baseline
from neuralab.card import Card, read_card
from neuralab.errors import NeuralabError
from neuralab.models import ModelConfig
from neuralab.run_data import load_run_data
from neuralab.runs import Predictor
from neuralab.train.loop import predict_outputs

ExportFormat = Literal["onnx", "torchscript"]
FILES = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt"}
TOLERANCE = 1e-4
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")  # the exporter colours its messages


@dataclass(frozen=True)
class Exported:
    """Where the exported model went, and how far it is from PyTorch on the test split."""

    path: Path
    max_abs_difference: float
    num_samples: int


def export(run_dir: str | Path, target: ExportFormat, *, trust_code: bool = False) -> Exported:
    """Write `model.onnx` or `model.torchscript.pt` into `run_dir`, verified on its test split.

    A run of the user's own network executes its `code/` copy to load: `trust_code` must be
    true. The exported file holds a graph, not that code: serving it needs no trust.
    """
    run_dir = Path(run_dir)
    if target not in FILES:
        raise NeuralabError("--format", f"'{target}' is not a format", "valid: onnx, torchscript")
    predictor = Predictor.load(run_dir, trust_code=trust_code)
    family = predictor.card.family
    if isinstance(predictor.model, Baseline):
        raise NeuralabError(
            str(run_dir), f"'{family}' is a scikit-learn baseline", "only networks are exported"
        )
    _refuse_unfaithful(predictor.card, target)
    model = predictor.model.eval()
    x_test = load_run_data(run_dir, trust_code=trust_code)[0].x_test
    final = run_dir / FILES[target]
    partial = final.with_name(f".{final.name}.partial")
    try:
        exported: nn.Module
        if target == "onnx":
            exported = _write_onnx(model, x_test[:2], partial)
        else:
            exported = _write_torchscript(model, x_test[:2], partial, family)
        difference = _difference(exported, model, x_test, target, family)
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    return Exported(final, difference, len(x_test))


def _difference(
    exported: nn.Module, model: nn.Module, x_test: torch.Tensor, target: str, family: str
) -> float:
    """The largest gap between the exported and the PyTorch outputs on the test split;
    an exported graph that fails there, or is further than `TOLERANCE`, is an error."""
    try:
        outputs = predict_outputs(exported, x_test)
    except Exception as error:  # e.g. a graph that fixed the example's batch size
        raise NeuralabError(
            target,
            f"the exported '{family}' graph fails on the test split: {first_line(error)}",
            "please report the model family",
        ) from None
    difference = float((outputs - predict_outputs(model, x_test)).abs().max())
    if not difference <= TOLERANCE:
        raise NeuralabError(
            target,
            f"exported outputs differ from PyTorch's by {difference:.3g} on the test split",
            f"more than {TOLERANCE}; please report the model family",
        )
    return difference


def _refuse_unfaithful(card: Card, target: str) -> None:
    """Refuse runs whose predictions no exported forward pass reproduces, naming what serves
    them instead (docs/serving.md has the support matrix)."""
    refusal = TypeAdapter(ModelConfig).validate_python(card.model).export_refusal()
    if refusal is not None:
        raise NeuralabError(target, *refusal)


def _write_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> OnnxModule:
    require_onnxruntime()
    batch = torch.export.Dim("batch")
    # torch.export and onnxscript warn (and log, e.g. that torchvision's ops are skipped)
    # about their own internals: nothing a user can act on.
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=True,
                input_names=["input"],
                output_names=["output"],
                dynamic_shapes=({0: batch},),
                verbose=False,
            )
        except Exception as error:  # the exporter raises many types; its message says why
            raise NeuralabError("onnx", f"export failed: {first_line(error)}") from None
        finally:
            registration.setLevel(level)
    return OnnxModule(path)


def _write_torchscript(
    model: nn.Module, example: torch.Tensor, path: Path, family: str
) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # see the module docstring
        # PyTorch's RNN modules check sizes in Python, which the tracer warns of; whether
        # the trace is faithful is what the check on the whole test split decides.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        try:
            traced = torch.jit.trace(model, example)
        except Exception as error:  # e.g. a Transformer body fails the tracer's own check
            raise NeuralabError(
                "torchscript",
                f"tracing '{family}' failed: {first_line(error)}",
                "TorchScript is deprecated; use --format onnx",
            ) from None
        torch.jit.save(traced, str(path))
        return torch.jit.load(str(path))


def require_onnxruntime() -> None:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise NeuralabError(
            "onnx", "onnxruntime is not installed", "pip install 'neuralab[onnx]'"
        ) from None


class OnnxModule(nn.Module):
    """An ONNX file run by ONNX Runtime behind a module's interface, so `Predictor` and
    `predict_outputs` use it exactly as they use the PyTorch network."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One thread each, as PyTorch here: tiny models lose more to thread hand-offs.
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (output,) = self.session.run(["output"], {"input": x.numpy()})
        return torch.from_numpy(output)


class OnnxPredictor(Predictor):
    """A run's exported `model.onnx`, predicting like `Predictor` (same scaling, labels)."""

    @classmethod
    def load(cls, run_dir: str | Path, *, trust_code: bool = False) -> OnnxPredictor:
        """The run's `model.onnx`; `trust_code` is not needed: a graph runs no Python code
        from the run, even when a `code/` copy of the user's network trained it."""
        run_dir = Path(run_dir)
        path = run_dir / FILES["onnx"]
        if not path.is_file():
            raise NeuralabError(
                run_dir.name,
                "has no model.onnx",
                f"run `neuralab export {run_dir} --format onnx` first",
            )
        card = read_card(run_dir)
        return cls(OnnxModule(path), card.data, card)

    # The graph is the forward pass only; sampling, search and generation loops stay in
    # PyTorch. Refused here, with the fix, rather than failing inside the server.
    runs_loops = False

    def generate_text(self, *args: Any, **kwargs: Any) -> str:
        raise self._python_only("generation")

    def translate(self, texts: list[str]) -> list[str]:
        raise self._python_only("sequence decoding")

    def samples(self, n: int, *, seed: int = 0) -> np.ndarray:
        raise self._python_only("sampling")

    def _python_only(self, what: str) -> NeuralabError:
        return NeuralabError(
            self.card.name,
            f"the ONNX runtime does not run {what}: model.onnx holds the forward pass only",
            "serve this run with `--runtime torch`",
        )


def first_line(error: Exception) -> str:
    """An exporter's message, first line only and without its terminal colour codes."""
    lines = ANSI_ESCAPE.sub("", str(error)).strip().splitlines()
    return lines[0] if lines else type(error).__name__
