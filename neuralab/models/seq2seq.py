"""Sequence to sequence: a GRU/LSTM encoder, and a decoder that attends over its states.

The decoder is trained with teacher forcing (it reads the true previous token) and decodes
greedily or with beam search at inference. Attention is Luong et al. (2015)'s "general"
score with input feeding: each step sees the previous step's attention context.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from neuralab.data.text import BOS, EOS, PAD
from neuralab.errors import NeuralabError
from neuralab.models.blocks import init_weights
from neuralab.models.network import NetworkConfig

Cell = Literal["gru", "lstm"]


class Seq2Seq(nn.Module):
    """Encoder-decoder over token ids, source (B, S) to target logits (B, T, vocab).

    Args:
        vocab_size: Symbols shared by source and target (id 0 pads, 1 starts, 2 ends).
        target_length: Steps the decoder runs at inference (the longest target).
        cell: `gru` or `lstm`, for encoder and decoder alike.
        embedding_size: Width of each token's embedding.
        hidden_size: Units of the encoder and decoder states.
        attention: Attend over the encoder states; without it the decoder sees only the
            encoder's final state (Sutskever et al. 2014).
        beam_width: Hypotheses kept per sample by `decode`; 1 is greedy.
        dropout: Dropout on embeddings and before the output layer.
    """

    def __init__(
        self,
        vocab_size: int,
        target_length: int,
        *,
        cell: Cell = "gru",
        embedding_size: int = 32,
        hidden_size: int = 128,
        attention: bool = True,
        beam_width: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.target_length, self.beam_width, self.lstm = target_length, beam_width, cell == "lstm"
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD)
        self.encoder = (nn.LSTM if self.lstm else nn.GRU)(
            embedding_size, hidden_size, batch_first=True
        )
        self.decoder = (nn.LSTMCell if self.lstm else nn.GRUCell)(
            embedding_size + hidden_size, hidden_size
        )
        self.score = nn.Linear(hidden_size, hidden_size, bias=False) if attention else None
        self.combine = nn.Linear(2 * hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        """Logits of the greedily decoded target (each step reads its own last output).

        Metrics are measured on this greedy decoding; `decode` (used by `predict`) searches
        with the configured beam.
        """
        return self._run(source, None)

    def forward_train(
        self, source: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, None]:
        """Teacher forcing: each step reads the true previous target token (no extra loss)."""
        return self._run(source, target), None

    def _run(self, source: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        memory, state, mask = self._encode(source)
        context = torch.zeros_like(memory[:, 0])
        # from the source, not its len(): a traced or exported graph keeps the batch dynamic
        previous = torch.full_like(source[:, 0], BOS)
        steps = self.target_length if target is None else target.shape[1]
        logits = []
        for t in range(steps):
            step_logits, state, context = self._step(previous, state, context, memory, mask)
            logits.append(step_logits)
            previous = step_logits.argmax(-1) if target is None else target[:, t]
        return torch.stack(logits, dim=1)

    def _encode(self, source: torch.Tensor):
        memory, state = self.encoder(self.dropout(self.embedding(source)))
        # the last layer's state without the layer axis: (h, c) for an LSTM
        state = (state[0][-1], state[1][-1]) if self.lstm else state[-1]
        return memory, state, source != PAD

    def _step(self, previous, state, context, memory, mask):
        """One decoder step: read the previous token and context, attend, predict."""
        inputs = torch.cat([self.dropout(self.embedding(previous)), context], dim=-1)
        state = self.decoder(inputs, state)
        hidden = state[0] if self.lstm else state
        if self.score is not None:
            scores = torch.einsum("bsh,bh->bs", self.score(memory), hidden)
            weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
            attended = torch.einsum("bs,bsh->bh", weights, memory)
        else:
            attended = torch.zeros_like(hidden)
        context = torch.tanh(self.combine(torch.cat([hidden, attended], dim=-1)))
        return self.head(self.dropout(context)), state, context

    @torch.no_grad()
    def decode(self, source: torch.Tensor, beam_width: int | None = None) -> torch.Tensor:
        """Token ids (B, T) of the likeliest target found by a beam of `beam_width`
        (default: the configured one).

        Finished hypotheses (past their end marker) continue with padding at no cost.
        """
        k = beam_width or self.beam_width
        if k == 1:
            return self._run(source, None).argmax(-1)
        batch = len(source)
        memory, state, mask = self._encode(source)
        memory, mask = memory.repeat_interleave(k, 0), mask.repeat_interleave(k, 0)
        state = _repeat(state, k)
        context = torch.zeros_like(memory[:, 0])
        previous = torch.full((batch * k,), BOS, dtype=torch.long)
        scores = torch.full((batch, k), float("-inf"))
        scores[:, 0] = 0.0  # all beams start identical: expand only the first
        tokens = torch.zeros(batch * k, 0, dtype=torch.long)
        done = torch.zeros(batch * k, dtype=torch.bool)
        for _ in range(self.target_length):
            logits, state, context = self._step(previous, state, context, memory, mask)
            log_p = logits.log_softmax(-1)
            log_p[done] = float("-inf")
            log_p[done, PAD] = 0.0
            vocab = log_p.shape[-1]
            total = (scores.reshape(-1, 1) + log_p).view(batch, k * vocab)
            scores, flat = total.topk(k, dim=-1)
            rows = (torch.arange(batch)[:, None] * k + flat // vocab).flatten()
            previous = (flat % vocab).flatten()
            tokens = torch.cat([tokens[rows], previous[:, None]], dim=1)
            state, context = _select(state, rows), context[rows]
            done = done[rows] | (previous == EOS) | (previous == PAD)
        return tokens.view(batch, k, -1)[:, 0]


def _repeat(state, k: int):
    if isinstance(state, tuple):
        return tuple(s.repeat_interleave(k, 0) for s in state)
    return state.repeat_interleave(k, 0)


def _select(state, rows: torch.Tensor):
    if isinstance(state, tuple):
        return tuple(s[rows] for s in state)
    return state[rows]


class Seq2SeqConfig(NetworkConfig):
    """The `model:` section when `family: seq2seq` (data: `reverse`)."""

    family: Literal["seq2seq"] = "seq2seq"
    data_tasks: ClassVar[tuple[str, ...]] = ("sequence_pairs",)
    data_hint: ClassVar[str | None] = "use dataset: reverse"
    cell: Cell = "gru"
    embedding_size: int = Field(32, ge=1)
    hidden_size: int = Field(128, ge=1)
    attention: bool = True
    beam_width: int = Field(1, ge=1, description="1 decodes greedily.")
    dropout: float = Field(0.0, ge=0.0, lt=1.0)

    def export_refusal(self) -> tuple[str, str] | None:
        if self.beam_width == 1:
            return None
        return (
            "the exported 'seq2seq' graph decodes greedily, but this run predicts with a beam "
            f"of {self.beam_width}, whose search stays in Python",
            "serve it with `--runtime torch`, or train with model.beam_width: 1",
        )

    def build(self, *, input_shape: tuple[int, ...], num_outputs: int) -> Seq2Seq:
        if len(input_shape) != 1:
            raise NeuralabError(
                "model.family",
                f"seq2seq reads token sequences, but samples have shape {input_shape}",
                "use dataset: reverse",
            )
        model = Seq2Seq(
            num_outputs,
            input_shape[0],
            cell=self.cell,
            embedding_size=self.embedding_size,
            hidden_size=self.hidden_size,
            attention=self.attention,
            beam_width=self.beam_width,
            dropout=self.dropout,
        )
        init_weights(model, "xavier", "tanh")
        return model
