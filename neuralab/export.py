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
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from neuralab.baselines import Baseline
from neuralab.config import load_config
from neuralab.data import DataMeta, load_data
from neuralab.errors import NeuralabError
from neuralab.runs import CONFIG, Predictor, read_card
from neuralab.train.loop import predict_outputs

ExportFormat = Literal["onnx", "torchscript"]
FILES = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt"}
TOLERANCE = 1e-4


@dataclass(frozen=True)
class Exported:
    """Where the exported model went, and how far it is from PyTorch on the test split."""

    path: Path
    max_abs_difference: float
    num_samples: int


def export(run_dir: str | Path, target: ExportFormat) -> Exported:
    """Write `model.onnx` or `model.torchscript.pt` into `run_dir`, verified on its test split."""
    run_dir = Path(run_dir)
    if target not in FILES:
        raise NeuralabError("--format", f"'{target}' is not a format", "valid: onnx, torchscript")
    predictor = Predictor.load(run_dir)
    if isinstance(predictor.model, Baseline):
        family = read_card(run_dir)["model"]["family"]
        raise NeuralabError(
            str(run_dir), f"'{family}' is a scikit-learn baseline", "only networks are exported"
        )
    model = predictor.model.eval()
    x_test = load_data(load_config(run_dir / CONFIG).data, task=None, seed=0).x_test
    final = run_dir / FILES[target]
    partial = final.with_name(f".{final.name}.partial")
    try:
        write = _write_onnx if target == "onnx" else _write_torchscript
        exported = write(model, x_test[:2], partial)
        outputs = predict_outputs(exported, x_test)
        difference = float((outputs - predict_outputs(model, x_test)).abs().max())
        if not difference <= TOLERANCE:
            raise NeuralabError(
                target,
                f"exported outputs differ from PyTorch's by {difference:.3g} on the test split",
                f"more than {TOLERANCE}; please report the model family",
            )
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    return Exported(final, difference, len(x_test))


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
            raise NeuralabError("onnx", f"export failed: {str(error).splitlines()[0]}") from None
        finally:
            registration.setLevel(level)
    return OnnxModule(path)


def _write_torchscript(model: nn.Module, example: torch.Tensor, path: Path) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # see the module docstring
        traced = torch.jit.trace(model, example)
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
    def load(cls, run_dir: str | Path) -> OnnxPredictor:
        run_dir = Path(run_dir)
        path = run_dir / FILES["onnx"]
        if not path.is_file():
            raise NeuralabError(
                run_dir.name,
                "has no model.onnx",
                f"run `neuralab export {run_dir} --format onnx` first",
            )
        card = read_card(run_dir)
        return cls(OnnxModule(path), DataMeta.from_dict(card["data"]), card)
