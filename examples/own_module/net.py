"""A network neuralab does not ship: a small CNN whose blocks add their input back
(residual), ending in global average pooling, so it reads images of any size.

neuralab builds it as `DigitsNet(input_shape, num_outputs, **model.args)`: input_shape is
one sample's (channels, height, width), num_outputs the number of classes. The file must
stand alone (imports of installed packages only): it is copied into each run's code/.
"""

from torch import nn


class ResidualBlock(nn.Module):
    """conv -> batch norm -> ReLU -> conv -> batch norm, plus the input, then ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.activation = nn.ReLU()

    def forward(self, x):
        return self.activation(x + self.body(x))


class DigitsNet(nn.Module):
    """A stem convolution, `num_blocks` residual blocks, global average pooling, a head.

    Args:
        input_shape: (channels, height, width) of one image.
        num_outputs: Number of classes.
        channels: Width of every block.
        num_blocks: Residual blocks after the stem.
    """

    def __init__(self, input_shape, num_outputs, channels=32, num_blocks=2):
        super().__init__()
        in_channels = input_shape[0]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
        )
        self.blocks = nn.Sequential(*(ResidualBlock(channels) for _ in range(num_blocks)))
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_outputs)
        )

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))
