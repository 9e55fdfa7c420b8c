"""A user's own network, as `family: module` reads it: built as
`TinyNet(input_shape, num_outputs, hidden=...)` (the registry test's tiny case)."""

import math

from torch import nn


class TinyNet(nn.Module):
    """Flatten -> Linear(hidden) -> ReLU -> Linear(num_outputs)."""

    def __init__(self, input_shape: tuple[int, ...], num_outputs: int, hidden: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(input_shape), hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_outputs),
        )

    def forward(self, x):
        return self.body(x)
