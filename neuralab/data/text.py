"""Token data: character corpora for language models and a synthetic translation task.

Samples are integer ids into a vocabulary that travels in `DataMeta.vocab` (and so in
`card.json`): a loaded model maps text to ids and back without the original data.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from neuralab.data.bundle import RawData
from neuralab.data.source import DataSource
from neuralab.errors import NeuralabError

# Reserved ids of the seq2seq vocabulary: padding, start of a target, end of a sequence.
PAD, BOS, EOS = 0, 1, 2
SPECIALS = ("<pad>", "<bos>", "<eos>")


def encode(text: str, vocab: tuple[str, ...], *, where: str) -> np.ndarray:
    """Characters -> ids; a character outside the vocabulary is an error naming it."""
    index = {symbol: i for i, symbol in enumerate(vocab)}
    unknown = sorted({c for c in text if c not in index})
    if unknown:
        shown = ", ".join(repr(c) for c in unknown[:5])
        raise NeuralabError(
            where,
            f"{len(unknown)} character(s) the model never saw: {shown}",
            "use only characters from the training text",
        )
    return np.array([index[c] for c in text], dtype=np.int64)


def decode(ids, vocab: tuple[str, ...]) -> str:
    """Seq2seq ids -> text, up to the first end marker; padding and start are skipped."""
    ids = list(ids)
    if EOS in ids:
        ids = ids[: ids.index(EOS)]
    return "".join(vocab[i] for i in ids if i not in (PAD, BOS))


def _windows(text: str, window: int, *, dataset: str) -> RawData:
    """Next-character prediction: non-overlapping windows of `window` characters, each
    target the window shifted by one. Windows stay in text order so the split is
    chronological: later text is held out, and no window overlaps another split's."""
    if len(text) < 10 * (window + 1):
        raise NeuralabError(
            f"data.dataset ({dataset})",
            f"{len(text)} characters make fewer than 10 windows of {window + 1}",
            "use more text or a smaller window",
        )
    vocab = tuple(sorted(set(text)))
    ids = encode(text, vocab, where=dataset)
    count = (len(ids) - 1) // window
    starts = np.arange(count)[:, None] * window
    x = ids[starts + np.arange(window)]
    y = ids[starts + np.arange(window) + 1]
    return RawData(x, y, kind="text", task="next_token", ordered=True, vocab=vocab)


class PydocConfig(DataSource):
    """Character language modelling on CPython's help texts (`pydoc_data.topics`)."""

    name: Literal["pydoc"] = "pydoc"
    window: int = Field(128, ge=2, description="Characters per training sequence.")
    max_chars: int | None = Field(200_000, ge=100, description="Use only the first N characters.")

    def load(self, seed: int) -> RawData:
        del seed  # the corpus is fixed
        from pydoc_data.topics import topics

        text = "\n\n".join(topics[key] for key in sorted(topics))
        return _windows(text[: self.max_chars], self.window, dataset=self.name)


class TextConfig(DataSource):
    """Character language modelling on your own UTF-8 text file (`data: {text: path}`)."""

    name: Literal["text"] = "text"
    path_keys: ClassVar[tuple[str, ...]] = ("path",)
    shorthand: ClassVar[str | None] = "text"
    path: str
    window: int = Field(128, ge=2)
    max_chars: int | None = Field(None, ge=100)

    def load(self, seed: int) -> RawData:
        del seed
        path = Path(self.path)
        if not path.is_file():
            raise NeuralabError("data.dataset.path", f"no such file: {path}", "check the path")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise NeuralabError(
                "data.dataset.path", f"{path} is not UTF-8 text ({error.reason})"
            ) from None
        return _windows(text[: self.max_chars], self.window, dataset=str(path))


class ReverseConfig(DataSource):
    """Seq2seq: write a random string of letters backwards ('abc' -> 'cba'); exact match."""

    name: Literal["reverse"] = "reverse"
    num_samples: int = Field(5000, ge=20)
    min_length: int = Field(3, ge=1)
    max_length: int = Field(10, ge=1)
    num_symbols: int = Field(10, ge=2, le=26)

    @model_validator(mode="after")
    def _lengths_ordered(self) -> ReverseConfig:
        if self.min_length > self.max_length:
            raise ValueError(
                f"min_length ({self.min_length}) must not exceed max_length ({self.max_length})"
            )
        return self

    def load(self, seed: int) -> RawData:
        rng = np.random.default_rng(seed)
        vocab = SPECIALS + tuple(string.ascii_lowercase[: self.num_symbols])
        width = self.max_length + 1  # room for the end marker
        x = np.full((self.num_samples, width), PAD, dtype=np.int64)
        y = np.full_like(x, PAD)
        lengths = rng.integers(self.min_length, self.max_length + 1, size=self.num_samples)
        for row, length in enumerate(lengths):
            symbols = rng.integers(len(SPECIALS), len(vocab), size=length)
            x[row, : length + 1] = [*symbols, EOS]
            y[row, : length + 1] = [*symbols[::-1], EOS]
        return RawData(x, y, kind="text", task="sequence_pairs", vocab=vocab)
