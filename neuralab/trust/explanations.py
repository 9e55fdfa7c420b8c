"""The report's opt-in "Explanations" section (`neuralab report RUN --explain`): Captum
attributions for the first test samples of a network, and permutation importance for
tabular runs and classical baselines. Opt-in because importing Captum takes seconds."""

from __future__ import annotations

import numpy as np

from neuralab.baselines import Baseline
from neuralab.data import DataBundle
from neuralab.report.figures import attribution_figure, importance_figure
from neuralab.report.html import image
from neuralab.runs import Predictor
from neuralab.tasks import Task
from neuralab.trust.explain import explain
from neuralab.trust.importance import permutation_importances

NUM_EXPLAINED = 4
ATTRIBUTED_KINDS = ("image", "sequence", "tabular")


def explanations_section(predictor: Predictor, bundle: DataBundle, task: Task) -> str:
    parts = ["<h2>Explanations</h2>"]
    meta = predictor.meta
    if not task.scores_one_target:
        note = f"Explanations cover classifiers and regressors; this run is {task.name}."
        return f"{parts[0]}<p class='muted'>{note}</p>"
    is_network = not isinstance(predictor.model, Baseline)
    if is_network and meta.kind in ATTRIBUTED_KINDS:
        parts.append(_attributions(predictor, bundle))
    if meta.kind == "tabular" or not is_network:
        found = permutation_importances(predictor, bundle, task)
        png = importance_figure(found.features, found.mean, found.std, found.metric)
        parts.append(
            f"<h3>Permutation importance (test split, {found.metric})</h3>"
            + image(png, "permutation importance")
        )
    return "".join(parts)


def _attributions(predictor: Predictor, bundle: DataBundle) -> str:
    meta = predictor.meta
    scaled = bundle.x_test[:NUM_EXPLAINED].numpy()
    raw = scaled * np.asarray(meta.x_std) + np.asarray(meta.x_mean)  # explain() rescales
    found = explain(predictor, raw, method="integrated_gradients")
    explained = "" if meta.label_names else "output "  # regression: an output index
    captions = [f"test #{i}: {explained}{name}" for i, name in enumerate(found.target_names)]
    png = attribution_figure(
        found.inputs, found.attributions, captions, meta.kind, predictor.meta.feature_names()
    )
    return (
        f"<h3>Integrated gradients, first {len(raw)} test samples</h3>"
        "<p class='muted'>Red raised the explained output (the prediction), blue lowered it.</p>"
        + image(png, "attributions")
    )
