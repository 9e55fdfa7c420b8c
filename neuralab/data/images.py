"""Image folders: `DIR/<class>/*.png` (one subfolder per class), or a flat folder of images.

Pillow decodes every file; each image is converted to the run's channels (1: grey, 3: RGB)
and, with `size`, resized, so samples are float32 (N, C, H, W) pixel values in [0, 255],
as the files hold them. The bundle standardises them per channel on the training split.
Label names are the subfolder names, sorted. A flat folder (no subfolders) is one class
named after the folder: an autoencoder or a GAN trains on it, a classifier refuses it.

`read_image_inputs` prepares new images for a trained model the same way, to the model's
own (C, H, W).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from pydantic import PositiveInt

from neuralab.data.bundle import RawData
from neuralab.data.source import DataSource
from neuralab.errors import NeuralabError

if TYPE_CHECKING:
    from PIL.Image import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
# Pillow modes that hold one grey value per pixel ("LA": grey with alpha).
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
WHERE = "data.dataset.path"


class ImagesConfig(DataSource):
    """Your own images, one subfolder per class (`data: {images: DIR}`), or a flat folder."""

    name: Literal["images"] = "images"
    path_keys: ClassVar[tuple[str, ...]] = ("path",)
    shorthand: ClassVar[str | None] = "images"
    path: Path
    # (height, width) every image is resized to; default: the first image's, which every
    # other image must then have
    size: tuple[PositiveInt, PositiveInt] | None = None
    # 1 (grey) or 3 (RGB); default: 1 if every image is grey, else 3
    channels: Literal[1, 3] | None = None

    def load(self, seed: int) -> RawData:
        del seed  # the files are the samples
        files, y, label_names = find_images(self.path)
        headers = [_header(file) for file in files]
        channels = self.channels or (1 if all(m in GREY_MODES for m, _ in headers) else 3)
        size = self.size or _common_size(files, [size for _, size in headers])
        x = np.stack([_pixels(file, channels, size) for file in files])
        return RawData(x, y, kind="image", task="classification", label_names=label_names)


def find_images(folder: Path) -> tuple[list[Path], np.ndarray, tuple[str, ...]]:
    """Image files, their class indices and the class names, from `folder/<class>/*`
    or, without subfolders, from `folder/*` as one class named after the folder.

    Files of other types are skipped; hidden files and folders (`.DS_Store`) too.
    """
    if not folder.is_dir():
        raise NeuralabError(
            WHERE,
            f"no such folder: {folder}",
            "check the path; relative paths are read from the experiment file's folder",
        )
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    loose = _images_in(folder)
    if classes and loose:
        raise NeuralabError(
            WHERE,
            f"{folder} has class subfolders ({', '.join(p.name for p in classes[:5])}) and "
            f"{len(loose)} image(s) beside them, such as {loose[0].name}",
            "move every image into its class's subfolder",
        )
    if not classes:
        if not loose:
            raise NeuralabError(WHERE, f"no images in {folder}", _expected())
        return loose, np.zeros(len(loose), dtype=np.int64), (folder.name,)
    files: list[Path] = []
    labels: list[int] = []
    for index, class_folder in enumerate(classes):
        images = _images_in(class_folder)
        if not images:
            raise NeuralabError(WHERE, f"class folder {class_folder} holds no images", _expected())
        files += images
        labels += [index] * len(images)
    return files, np.array(labels, dtype=np.int64), tuple(p.name for p in classes)


def read_image_inputs(path: Path, input_shape: tuple[int, ...]) -> tuple[list[str], np.ndarray]:
    """New images for a model trained on (C, H, W) images: one file, or every image file
    in a folder and its subfolders. Returns each file's name (relative to the folder) and
    the pixels, converted and resized as training images were."""
    channels, height, width = input_shape
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.suffix.lower() in IMAGE_SUFFIXES and not _hidden(p.relative_to(path))
        )
        if not files:
            raise NeuralabError(str(path), "no images in this folder", _expected())
        names = [file.relative_to(path).as_posix() for file in files]
    elif path.is_file():
        files, names = [path], [str(path)]
    else:
        raise NeuralabError(str(path), "file not found", "check the path")
    x = np.stack([_pixels(file, channels, (height, width)) for file in files])
    return names, x


def is_image_path(path: Path) -> bool:
    """A folder, or a file whose suffix says it is an image."""
    return path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _expected() -> str:
    return f"expected {'/'.join(s[1:] for s in IMAGE_SUFFIXES)} files, one subfolder per class"


def _header(file: Path) -> tuple[str, tuple[int, int]]:
    """The image's mode and (height, width), read from its header without decoding it."""
    image_module = _pillow()
    try:
        with image_module.open(file) as image:
            return image.mode, (image.height, image.width)
    except (OSError, SyntaxError, ValueError, image_module.DecompressionBombError) as error:
        raise NeuralabError(str(file), "cannot read image", str(error)) from None


def _common_size(files: list[Path], sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """The first image's (height, width), which every image must share without `size`."""
    first = sizes[0]
    for file, size in zip(files, sizes, strict=True):
        if size != first:
            raise NeuralabError(
                str(file),
                f"{size[0]}x{size[1]} pixels (height x width), but {files[0].name} is "
                f"{first[0]}x{first[1]}",
                "set data.dataset.size: [H, W] to resize every image",
            )
    return first


def _pixels(file: Path, channels: int, size: tuple[int, int]) -> np.ndarray:
    """One image decoded, converted to `channels` and resized to `size`: (C, H, W) float32."""
    image_module = _pillow()
    try:
        with image_module.open(file) as image:
            converted: Image = image.convert("L" if channels == 1 else "RGB")
            if (converted.height, converted.width) != size:
                converted = converted.resize((size[1], size[0]), image_module.Resampling.BILINEAR)
            array = np.asarray(converted, dtype=np.float32)
    except (OSError, SyntaxError, ValueError, image_module.DecompressionBombError) as error:
        raise NeuralabError(str(file), "cannot read image", str(error)) from None
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def _pillow():
    """PIL.Image, imported when images are first read; without Pillow, what to install."""
    try:
        from PIL import Image
    except ImportError:
        raise NeuralabError(
            "data.dataset", "reading images needs Pillow", "pip install 'neuralab[images]'"
        ) from None
    return Image
