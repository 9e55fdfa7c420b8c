"""Character language model: embedding -> LSTM, GRU or causal Transformer -> next-char logits.

Reads a window of character ids (B, T) and predicts, at every position, the character that
follows: logits (B, T, vocab). `generate` continues a prompt by sampling one character at a
time, with temperature and top-k.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from neuralab.errors import NeuralabError
from neuralab.models.blocks import PositionalEncoding, init_weights
from neuralab.models.network import NetworkConfig

Body = Literal["lstm", "gru", "transformer"]


class CharLM(nn.Module):
    """A next-character predictor.

    Args:
        vocab_size: Number of distinct characters.
        context: Longest window it reads (the training window); the Transformer's
            positional table has this many rows, and generation looks back this far.
        body: `lstm`, `gru` or `transformer` (causal self-attention, pre-norm).
        embedding_size: Width of each character's embedding (and the Transformer's width).
        hidden_size: Recurrent units per layer, or the Transformer's feed-forward width.
        num_layers: Stacked recurrent or Transformer layers.
        num_heads: Attention heads (Transformer only).
        dropout: Dropout between layers and before the output.
    """

    def __init__(
        self,
        vocab_size: int,
        context: int,
        *,
        body: Body = "lstm",
        embedding_size: int = 64,
        hidden_size: int = 256,
        num_layers: int = 2,
        num_heads: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.body, self.context = body, context
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.dropout = nn.Dropout(dropout)
        if body == "transformer":
            self.position = PositionalEncoding(embedding_size, context)
            layer = nn.TransformerEncoderLayer(
                embedding_size,
                num_heads,
                hidden_size,
                dropout,
                batch_first=True,
                norm_first=True,
            )
            self.layers: nn.Module = nn.TransformerEncoder(
                layer, num_layers, norm=nn.LayerNorm(embedding_size), enable_nested_tensor=False
            )
            width = embedding_size
        else:
            cell = nn.LSTM if body == "lstm" else nn.GRU
            self.layers = cell(
                embedding_size,
                hidden_size,
                num_layers=num_layers,
                batch_first=True,
                dropout=dropout if num_layers > 1 else 0.0,
            )
            width = hidden_size
        self.head = nn.Linear(width, vocab_size)

    def forward(self, x: torch.Tensor, state=None) -> torch.Tensor:
        return self._forward(x, state)[0]

    def _forward(self, x: torch.Tensor, state=None) -> tuple[torch.Tensor, object]:
        """Logits (B, T, vocab) and the recurrent state after the last step (None for a
        Transformer, which instead rereads its context)."""
        h = self.dropout(self.embedding(x))
        if self.body == "transformer":
            causal = nn.Transformer.generate_square_subsequent_mask(x.shape[1])
            h = self.layers(self.position(h), mask=causal, is_causal=True)
        else:
            h, state = self.layers(h, state)
        return self.head(self.dropout(h)), state

    @torch.no_grad()
    def generate(
        self,
        prompt: torch.Tensor,
        length: int,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Continue `prompt` (a 1-D tensor of ids) by `length` sampled ids.

        Temperature divides the logits (below 1: safer, above 1: wilder; 0 is greedy);
        top-k samples among the k likeliest characters only.
        """
        self.eval()
        out = prompt.tolist()
        logits, state = self._forward(prompt[None, -self.context :])
        for _ in range(length):
            next_id = _sample(logits[0, -1], temperature, top_k, generator)
            out.append(next_id)
            if self.body == "transformer":
                window = torch.tensor(out[-self.context :])[None]
                logits, _ = self._forward(window)
            else:  # the recurrent state carries everything read so far
                logits, state = self._forward(torch.tensor([[next_id]]), state)
        return torch.tensor(out[len(prompt) :])


def _sample(
    logits: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator | None
) -> int:
    if temperature == 0:
        return int(logits.argmax())
    logits = logits / temperature
    if top_k is not None and top_k < len(logits):
        threshold = logits.topk(top_k).values[-1]
        logits = logits.masked_fill(logits < threshold, float("-inf"))
    return int(torch.multinomial(logits.softmax(dim=-1), 1, generator=generator))


class CharLMConfig(NetworkConfig):
    """The `model:` section when `family: charlm` (data: `pydoc` or `{text: path}`)."""

    family: Literal["charlm"] = "charlm"
    data_tasks: ClassVar[tuple[str, ...]] = ("next_token",)
    data_hint: ClassVar[str | None] = "use dataset: pydoc or {text: path}"
    body: Body = "lstm"
    embedding_size: int = Field(64, ge=1)
    hidden_size: int = Field(256, ge=1)
    num_layers: int = Field(2, ge=1)
    num_heads: int = Field(4, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _heads_divide_width(self) -> CharLMConfig:
        if self.body == "transformer" and self.embedding_size % self.num_heads:
            raise ValueError(
                f"embedding_size ({self.embedding_size}) must be divisible by "
                f"num_heads ({self.num_heads})"
            )
        return self

    def build(self, *, input_shape: tuple[int, ...], num_outputs: int) -> CharLM:
        if len(input_shape) != 1:
            raise NeuralabError(
                "model.family",
                f"charlm reads windows of characters, but samples have shape {input_shape}",
                "use dataset: pydoc or data: {text: path}",
            )
        model = CharLM(
            num_outputs,
            input_shape[0],
            body=self.body,
            embedding_size=self.embedding_size,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            dropout=self.dropout,
        )
        # Xavier for the linear maps; recurrent weights get their own scheme (see blocks).
        init_weights(model, "xavier", "tanh")
        return model
