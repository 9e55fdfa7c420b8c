"""The models a server offers: the finished run directories directly inside one folder.

A model's name is its run directory's name. Names are looked up in a listing of the
served folder, never joined onto a path from the request, so `../x`, absolute paths and
URLs cannot reach anything outside it. Loaded models are kept, one load per name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from neuralab.card import CARD, Card, read_card
from neuralab.data import DataMeta
from neuralab.errors import NeuralabError
from neuralab.runs import Prediction, Predictor
from neuralab.tasks import Task


class UnknownName(NeuralabError):
    """A model or comparison name that is not in the served folder (HTTP 404)."""


class Runtime(Protocol):
    """What the server needs from a loaded model: a prediction for raw inputs."""

    meta: DataMeta
    task: Task

    def predict(self, x) -> Prediction: ...


@dataclass
class ModelStore:
    """Run directories under `root`, loaded on first use.

    Args:
        root: The served folder; only its direct, finished run directories are models.
        runtime: "torch" loads weights with `neuralab.load`; "onnx" runs each run's
            exported `model.onnx` with ONNX Runtime.
        trust_code: Load (with "torch") runs that carry the user's network code, which
            executes it; otherwise such a run answers with the error saying so.
    """

    root: Path
    runtime: str = "torch"
    trust_code: bool = False
    _loaded: dict[str, Runtime] = field(default_factory=dict)

    def names(self) -> list[str]:
        """Finished runs, sorted; hidden `.partial` folders are not served."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / CARD).is_file()
        )

    def path(self, name: str) -> Path:
        """The run directory called `name`, only if the listing holds it."""
        if name not in self.names():
            raise UnknownName(
                "model", f"no model named '{name}'", "GET /v1/models lists the served models"
            )
        return self.root / name

    def card(self, name: str) -> Card:
        return read_card(self.path(name))

    def model(self, name: str) -> Runtime:
        """The loaded model; after the first call no file is touched (the hot path)."""
        if name not in self._loaded:
            self._loaded[name] = self._load(self.path(name))
        return self._loaded[name]

    def _load(self, run_dir: Path) -> Runtime:
        if self.runtime == "onnx":
            from neuralab.export import OnnxPredictor  # optional extra [onnx]

            return OnnxPredictor.load(run_dir)
        return Predictor.load(run_dir, trust_code=self.trust_code)


def summary(name: str, card: Card) -> dict[str, Any]:
    """What `/v1/models` says about one model."""
    return {
        "name": name,
        "family": card.family,
        "task": card.task,
        "dataset": card.data.dataset,
        "input": input_spec(card.data),
        "metrics": card.metrics,
    }


def input_spec(data: DataMeta) -> dict[str, Any]:
    """The shape of one sample, and the named columns for models trained on a CSV."""
    spec: dict[str, Any] = {"kind": data.kind, "shape": list(data.input_shape), "dtype": "float32"}
    if data.features:
        spec["features"] = [
            {"name": f.name, "kind": f.kind, "categories": list(f.categories)}
            for f in data.features
        ]
    if data.task == "classification":
        spec["labels"] = list(data.label_names)
    if data.vocab:
        spec["vocab_size"] = len(data.vocab)
    return spec
