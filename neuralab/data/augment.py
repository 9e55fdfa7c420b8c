"""Data augmentation: random changes to each training batch, written on tensors.

Images (N, C, H, W): random crop after padding, horizontal flip, a small rotation
and translation (one affine warp through `affine_grid`/`grid_sample`), brightness and
contrast jitter, and cutout (DeVries & Taylor, 2017). Sequences (N, C, L): a shift in
time, a scale and Gaussian noise. The loop applies them to the training batches only,
never to val or test, drawing every random number from a generator of its own, which is
checkpointed so a resumed run sees the same batches.

They act on the standardised tensors (the bundle standardises on the training split). Crop
and shift pad by repeating the edge, and a warp fills what it uncovers from the border, so
a digit's black background stays black (a 0 would be the training mean: grey); cutout's
square is 0, the mean, as in the paper. No
torchvision: its wheels are gigabytes, and these few transforms are a few lines each.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field

from neuralab.data.bundle import DataKind
from neuralab.errors import Problem
from neuralab.schema import Strict


class CropConfig(Strict):
    """Pad each side by `padding` pixels (repeating the edge), then crop back to the
    original size at a random offset: the content moves by up to `padding` pixels each way."""

    padding: int = Field(ge=1)


class JitterConfig(Strict):
    """Per image: add an offset in [-brightness, brightness] (in standard deviations), and
    scale the deviations from the image's mean by a factor in [1 - contrast, 1 + contrast]."""

    brightness: float = Field(0.0, ge=0.0)
    contrast: float = Field(0.0, ge=0.0, lt=1.0)


class CutoutConfig(Strict):
    """Set a `size` x `size` square at a random place of each image to 0 (the mean)."""

    size: int = Field(ge=1)


# which options fit which kind of data; the rest are refused by key at plan time
IMAGE_OPTIONS = ("crop", "flip", "rotate", "translate", "jitter", "cutout")
SEQUENCE_OPTIONS = ("shift", "scale", "noise")


class AugmentConfig(Strict):
    """The `data.augment:` section; every option is off by default.

    Example:
        >>> AugmentConfig(flip=True, crop={"padding": 2}).options()
        ['crop', 'flip']
    """

    # images
    crop: CropConfig | None = None
    flip: bool = False
    rotate: float = Field(0.0, ge=0.0, le=180.0)  # largest angle, degrees, either way
    translate: float = Field(0.0, ge=0.0, lt=1.0)  # largest move, a fraction of the size
    jitter: JitterConfig | None = None
    cutout: CutoutConfig | None = None
    # sequences
    shift: int = Field(0, ge=0)  # largest move in time, steps either way (edge repeated)
    scale: float = Field(0.0, ge=0.0, lt=1.0)  # each sample times a factor in [1-s, 1+s]
    noise: float = Field(0.0, ge=0.0)  # standard deviation of added Gaussian noise

    def options(self) -> list[str]:
        """The options that are on, in the order they are applied."""
        default = AugmentConfig()
        return [
            name
            for name in (*IMAGE_OPTIONS, *SEQUENCE_OPTIONS)
            if getattr(self, name) != getattr(default, name)
        ]

    def problems(self, kind: DataKind, *, targets_are_inputs: bool) -> list[Problem]:
        """Options that do not fit this data: each named by its key."""
        fitting = {"image": IMAGE_OPTIONS, "sequence": SEQUENCE_OPTIONS}.get(kind, ())
        problems = [
            Problem(
                f"data.augment.{name}",
                f"does not apply to {kind} data",
                f"{kind} data takes: {', '.join(fitting)}" if fitting else "remove data.augment",
            )
            for name in self.options()
            if name not in fitting
        ]
        if targets_are_inputs and self.options():
            problems.append(
                Problem(
                    "data.augment",
                    "the targets are the inputs here (reconstruction): augmenting the inputs "
                    "alone would teach the model to undo the augmentation",
                    "remove data.augment",
                )
            )
        return problems

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A randomly changed copy of the batch `x` (a CPU tensor); `x` is left as it is."""
        if self.crop is not None:
            x = _crop(x, self.crop.padding, generator)
        if self.flip:
            flipped = torch.rand(len(x), generator=generator) < 0.5
            x = torch.where(flipped[:, None, None, None], x.flip(-1), x)
        if self.rotate or self.translate:
            x = _warp(x, self.rotate, self.translate, generator)
        if self.jitter is not None:
            x = _jitter(x, self.jitter, generator)
        if self.cutout is not None:
            x = _cutout(x, self.cutout.size, generator)
        if self.shift:
            x = _crop(x, self.shift, generator)  # a 1-D crop of the padded sequence
        if self.scale:
            x = x * _uniform(len(x), 1 - self.scale, 1 + self.scale, generator)[:, None, None]
        if self.noise:
            x = x + self.noise * torch.randn(x.shape, generator=generator)
        return x


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def _crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Pad the last dimensions (width, and height for images) by repeating their edges,
    then take a window of the original size at a random offset per sample."""
    n, channels, *size = x.shape
    padded = F.pad(x, [padding] * 2 * len(size), mode="replicate")
    offsets = torch.randint(0, 2 * padding + 1, (len(size), n), generator=generator)
    # one index tensor per axis, shaped to broadcast to (N, C, *size)
    samples = torch.arange(n).view(n, *[1] * (len(size) + 1))
    channel = torch.arange(channels).view(1, channels, *[1] * len(size))
    positions = []
    for axis, (length, offset) in enumerate(zip(size, offsets, strict=True)):
        shape = [n, 1] + [1] * len(size)
        shape[2 + axis] = length
        positions.append((offset[:, None] + torch.arange(length)).view(shape))
    return padded[(samples, channel, *positions)]


def _warp(
    x: torch.Tensor, degrees: float, translate: float, generator: torch.Generator
) -> torch.Tensor:
    """Rotate each image by an angle in [-degrees, degrees] and move it by up to
    `translate` of its size each way, in one bilinear resampling."""
    n = len(x)
    angle = _uniform(n, -degrees, degrees, generator) * math.pi / 180
    # affine_grid's coordinates run from -1 to 1: a move by a fraction t of the size is 2t
    move = _uniform(2 * n, -2 * translate, 2 * translate, generator).view(n, 2)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [torch.stack([cos, -sin, move[:, 0]], 1), torch.stack([sin, cos, move[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


def _jitter(x: torch.Tensor, jitter: JitterConfig, generator: torch.Generator) -> torch.Tensor:
    n = len(x)
    if jitter.contrast:
        factor = _uniform(n, 1 - jitter.contrast, 1 + jitter.contrast, generator)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = mean + (x - mean) * factor[:, None, None, None]
    if jitter.brightness:
        x = x + _uniform(n, -jitter.brightness, jitter.brightness, generator)[:, None, None, None]
    return x


def _cutout(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Zero a square of each image, placed so that it lies wholly inside (a square larger
    than the image covers all of it)."""
    n, _, height, width = x.shape
    top = torch.randint(0, max(height - size, 0) + 1, (n, 1), generator=generator)
    left = torch.randint(0, max(width - size, 0) + 1, (n, 1), generator=generator)
    rows, columns = torch.arange(height), torch.arange(width)
    inside_rows = (rows >= top) & (rows < top + size)  # (N, H)
    inside_columns = (columns >= left) & (columns < left + size)  # (N, W)
    square = inside_rows[:, :, None] & inside_columns[:, None, :]
    return x.masked_fill(square[:, None], 0.0)
