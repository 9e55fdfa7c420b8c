"""Why did the model say that? Per-sample attributions through Captum.

Each input value gets a share of the evidence for one output (the predicted class unless
a target is named): integrated gradients (Sundararajan et al. 2017) from the all-zero input,
which after standardisation is the training mean; saliency, the absolute input gradient
(Simonyan et al. 2014); or occlusion, the drop in the output when a patch is replaced by the
mean (Zeiler & Fergus 2014). Attributions are in the standardised input's units.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from neuralab.baselines import Baseline
from neuralab.errors import NeuralabError
from neuralab.report.figures import attribution_figure
from neuralab.runs import NewRunDir, Predictor, save_json

Method = Literal["integrated_gradients", "saliency", "occlusion"]
METHODS: tuple[str, ...] = ("integrated_gradients", "saliency", "occlusion")
MAX_DRAWN = 12  # samples in the picture; the JSON holds every one


@dataclass(frozen=True)
class Explanation:
    """Attributions for N samples, shaped like the samples, and the output each explains."""

    method: str
    inputs: np.ndarray  # raw (unscaled) samples, (N, *input_shape)
    attributions: np.ndarray  # (N, *input_shape)
    targets: list[int]
    target_names: list[str]

    def to_json(self) -> dict:
        return {
            "method": self.method,
            "targets": self.target_names,
            "attributions": self.attributions.round(6).tolist(),
        }


def write_explanation(
    predictor: Predictor,
    samples: np.ndarray,
    *,
    method: str,
    target: str | None,
    out: Path,
) -> Path:
    """Explain `samples` and write `attributions.json` and `attributions.png` into a new
    folder `out/<run name>-explain-<time>`; returns the folder."""
    explanation = explain(predictor, samples, method=method, target=target)
    meta = predictor.meta
    shown = slice(0, MAX_DRAWN)
    captions = [f"#{i}: {name}" for i, name in enumerate(explanation.target_names[shown])]
    png = attribution_figure(
        explanation.inputs[shown],
        explanation.attributions[shown],
        captions,
        meta.kind,
        predictor.meta.feature_names(),
    )
    with NewRunDir(out, f"{predictor.card.name}-explain") as folder:
        save_json(folder.path / "attributions.json", explanation.to_json())
        (folder.path / "attributions.png").write_bytes(png)
    return folder.path


def explain(
    predictor: Predictor, samples: np.ndarray, *, method: str, target: str | None = None
) -> Explanation:
    """Attribute each sample's output (its predicted class, or `target`) to its inputs."""
    from captum.attr import IntegratedGradients, Occlusion, Saliency

    if method not in METHODS:
        raise NeuralabError(
            "--method", f"unknown method '{method}'", f"valid: {', '.join(METHODS)}"
        )
    model = predictor.model
    if isinstance(model, Baseline) or not isinstance(model, nn.Module):
        raise NeuralabError(
            "explain",
            "per-sample attributions need gradients; this run is a classical baseline",
            "for a global view: neuralab explain RUN_DIR --global",
        )
    if not predictor.task.scores_one_target:
        raise NeuralabError(
            "explain",
            f"attributions explain one output per sample; this run is {predictor.task.name}",
        )
    meta = predictor.meta
    outputs = predictor.outputs(samples)  # also checks the samples' shape
    raw = np.asarray(samples, np.float32).reshape(len(samples), *meta.input_shape)
    x = meta.scale_inputs(raw).requires_grad_()  # saliency warns otherwise
    targets = _targets(predictor, outputs, target)
    model.eval()
    if method == "integrated_gradients":
        values = IntegratedGradients(model).attribute(x, target=targets, n_steps=64)
    elif method == "saliency":
        values = Saliency(model).attribute(x, target=targets, abs=True)
    else:
        values = Occlusion(model).attribute(
            x, target=targets, sliding_window_shapes=_window(meta.kind, meta.input_shape)
        )
    names = (
        [meta.label_names[t] for t in targets] if meta.label_names else [str(t) for t in targets]
    )
    return Explanation(method, raw, values.detach().numpy(), targets, names)


def _targets(predictor: Predictor, outputs: torch.Tensor, target: str | None) -> list[int]:
    labels = list(predictor.meta.label_names)
    if target is None:
        chosen = outputs.argmax(dim=1) if labels else torch.zeros(len(outputs), dtype=torch.long)
        return chosen.tolist()
    if labels:
        if target not in labels:
            raise NeuralabError(
                "--target", f"'{target}' is not a class", f"valid: {', '.join(labels)}"
            )
        return [labels.index(target)] * len(outputs)
    width = outputs.shape[1]
    if not target.isdigit() or int(target) >= width:
        raise NeuralabError("--target", f"'{target}' is not an output index", f"0 to {width - 1}")
    return [int(target)] * len(outputs)


def _window(kind: str, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The occluded patch: 2x2 pixels, 3 time steps, or one tabular feature."""
    if kind == "image":
        return (input_shape[0], 2, 2)
    if kind == "sequence":
        return (input_shape[0], 3)
    return (1,)
