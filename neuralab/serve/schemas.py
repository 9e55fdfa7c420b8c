"""Request and response bodies: JSON samples in, the model's input array out, and a
`Prediction` back to JSON rows.

Samples are checked against the run's card before the model sees them: numbers only,
finite, one sample's values matching the input shape (nested or flat), and for models
trained on a CSV an object per sample keyed by the training columns. A problem is a
`NeuralabError` naming the sample, which the app turns into a 422.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from neuralab.data import DataMeta
from neuralab.data.files import Table, encode_features
from neuralab.errors import NeuralabError
from neuralab.runs import Prediction

# A request carries at most this many samples; bigger jobs belong to `neuralab predict`.
MAX_SAMPLES = 1024

Sample = list[Any] | dict[str, float | str] | str


class PredictRequest(BaseModel):
    """`{"inputs": [sample, ...]}`: each sample a nested list of numbers shaped like the
    model's input (or flat); for a model trained on a CSV an object by column name; for a
    sequence-to-sequence model a source string."""

    inputs: list[Sample] = Field(min_length=1, max_length=MAX_SAMPLES)


class GenerateRequest(BaseModel):
    """What a generating model is asked for; the defaults are `neuralab generate`'s.

    `num_samples` texts are written, the i-th seeded with `seed + i`; `max_tokens` is the
    number of characters a character-level model adds to the prompt.
    """

    prompt: str = Field("\n", max_length=10_000)
    num_samples: int = Field(1, ge=1, le=16)
    max_tokens: int = Field(300, ge=1, le=2_000)
    temperature: float = Field(0.8, ge=0.0, le=10.0, description="0 is greedy")
    top_k: int | None = Field(None, ge=1, le=100_000)
    seed: int = Field(0, ge=0, le=2**32 - 1)


def to_inputs(inputs: list[Sample], meta: DataMeta, *, text: bool) -> np.ndarray | list[str]:
    """Validated samples: source strings for a model that reads `text` (seq2seq), else a
    float32 array of shape (N, *input_shape), unscaled."""
    texts = [isinstance(sample, str) for sample in inputs]
    if text:
        if not all(texts):
            raise NeuralabError(f"inputs[{texts.index(False)}]", "is not a string", "send text")
        return [str(sample) for sample in inputs]
    if any(texts):
        raise NeuralabError(f"inputs[{texts.index(True)}]", "is a string", "send numbers")
    if meta.features:
        return _encode_rows(inputs, meta)
    if any(isinstance(sample, dict) for sample in inputs):
        raise NeuralabError(
            "inputs", "samples are objects", "this model takes arrays of numbers, not columns"
        )
    try:
        x = np.asarray(inputs, dtype=np.float32)
    except (ValueError, TypeError):
        raise NeuralabError(
            "inputs",
            "samples are not all numeric arrays of the same shape",
            f"each sample has shape {list(meta.input_shape)} (or {_size(meta)} flat values)",
        ) from None
    return _checked(x, meta)


def _checked(x: np.ndarray, meta: DataMeta) -> np.ndarray:
    if x.ndim < 2 or int(np.prod(x.shape[1:])) != _size(meta):
        raise NeuralabError(
            "inputs",
            f"samples have shape {list(x.shape[1:])}",
            f"expected {list(meta.input_shape)} (or {_size(meta)} flat values)",
        )
    bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
    if len(bad):
        raise NeuralabError(f"inputs[{bad[0]}]", "has a non-finite value", "send finite numbers")
    return x.reshape(len(x), *meta.input_shape)


def _encode_rows(inputs: list[Sample], meta: DataMeta) -> np.ndarray:
    """Objects by column name -> the one-hot/numeric encoding used in training."""
    rows: list[dict[str, float | str]] = []
    for i, sample in enumerate(inputs):
        if not isinstance(sample, dict):
            raise NeuralabError(
                f"inputs[{i}]",
                "is not an object",
                f"send {{column: value}} with columns {', '.join(f.name for f in meta.features)}",
            )
        rows.append(sample)
    for feature in meta.features:
        missing = [i for i, row in enumerate(rows) if feature.name not in row]
        if missing:
            raise NeuralabError(f"inputs[{missing[0]}]", f"column '{feature.name}' is missing")
    columns = {f.name: [str(row[f.name]) for row in rows] for f in meta.features}
    table = Table("inputs", columns, lines=list(range(len(inputs))))
    return _checked(encode_features(table, meta.features), meta)


def _size(meta: DataMeta) -> int:
    return int(np.prod(meta.input_shape))


def prediction_rows(prediction: Prediction) -> list[dict[str, Any]]:
    """One JSON object per sample: label and probabilities, a value, an anomaly score, or
    a text."""
    if prediction.texts is not None:
        return [{"text": text} for text in prediction.texts]
    if prediction.labels is not None and prediction.probabilities is not None:
        names = prediction.label_names
        return [
            {"label": label, "probabilities": dict(zip(names, row.tolist(), strict=True))}
            for label, row in zip(prediction.labels, prediction.probabilities, strict=True)
        ]
    values = np.asarray(prediction.values)
    if prediction.reconstruction:
        return [{"anomaly_score": float(v)} for v in values]
    return [{"value": row.tolist() if len(row) > 1 else float(row[0])} for row in values]
