"""Image folders: class subfolders train a CNN, new images are predicted by file, and a
file Pillow cannot read, a size mismatch or a flat folder for a classifier are errors."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import yaml
from PIL import Image

from neuralab.config import load_config
from neuralab.data import load_data
from neuralab.data.images import ImagesConfig
from neuralab.errors import NeuralabError

COLOURS = {"blue": 2, "green": 1, "red": 0}  # class name -> its dominant RGB channel


def colour_image(channel: int, rng: np.random.Generator, size=(16, 16)) -> Image.Image:
    """Noise in every channel, with `channel` brighter: separable by mean colour alone."""
    pixels = rng.integers(0, 120, size=(*size, 3))
    pixels[..., channel] += 120
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def write_colours(folder, per_class=40, seed=0, size=(16, 16), flat=False):
    """`folder/<colour>/<colour>_<i>.png` (or all in `folder` itself, with `flat`)."""
    rng = np.random.default_rng(seed)
    for name, channel in COLOURS.items():
        target = folder if flat else folder / name
        target.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            colour_image(channel, rng, size).save(target / f"{name}_{i}.png")
    return folder


def experiment_file(tmp_path, dataset, **sections):
    experiment = {
        "name": "colours",
        "seed": 0,
        "data": {"dataset": dataset},
        "model": {"family": "cnn", "channels": [8], "batch_norm": False},
        "train": {"epochs": 15, "batch_size": 32},
        **sections,
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment))
    return path


def rows(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_class_folders_train_a_cnn_that_predicts_new_images_by_file(tmp_path, run_cli):
    write_colours(tmp_path / "photos")
    new = write_colours(tmp_path / "new", per_class=3, seed=1, flat=True)
    experiment = experiment_file(tmp_path, {"images": "photos"})  # relative to the file

    code, _, err = run_cli("train", str(experiment), "--out", str(tmp_path / "runs"))
    assert code == 0, err
    [run_dir] = (tmp_path / "runs").iterdir()
    card = json.loads((run_dir / "card.json").read_text())
    assert card["data"]["label_names"] == ["blue", "green", "red"]
    assert card["data"]["input_shape"] == [3, 16, 16]
    assert card["metrics"]["test"]["accuracy"] >= 0.9

    code, out, err = run_cli("predict", str(run_dir), str(new))
    assert code == 0, err
    predicted = rows(out)
    assert list(predicted[0]) == ["file", "prediction", "p_blue", "p_green", "p_red"]
    assert len(predicted) == 9
    assert all(row["prediction"] == row["file"].split("_")[0] for row in predicted)

    larger = tmp_path / "larger.png"  # resized to the run's 16x16, as training images are
    colour_image(COLOURS["red"], np.random.default_rng(2), size=(24, 30)).save(larger)
    code, out, err = run_cli("predict", str(run_dir), str(larger))
    assert code == 0, err
    [row] = rows(out)
    assert (row["file"], row["prediction"]) == (str(larger), "red")


def test_a_changed_image_is_refused_after_training(tmp_path, run_cli):
    write_colours(tmp_path / "photos", per_class=10)
    experiment = experiment_file(tmp_path, {"images": "photos"}, train={"epochs": 1})
    code, _, err = run_cli("train", str(experiment), "--out", str(tmp_path / "runs"))
    assert code == 0, err
    [run_dir] = (tmp_path / "runs").iterdir()
    colour_image(1, np.random.default_rng(5)).save(tmp_path / "photos" / "red" / "red_0.png")

    code, _, err = run_cli("evaluate", str(run_dir))
    assert code == 2
    assert "photos: changed since this run was trained" in err


def test_a_truncated_png_is_an_error_naming_it_and_nothing_is_written(tmp_path, run_cli):
    photos = write_colours(tmp_path / "photos", per_class=5)
    broken = photos / "green" / "green_3.png"
    broken.write_bytes(broken.read_bytes()[:60])
    experiment = experiment_file(tmp_path, {"images": str(photos)})

    code, _, err = run_cli("train", str(experiment), "--out", str(tmp_path / "runs"))
    assert code == 2
    assert f"error: {broken}: cannot read image (" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_sizes_must_match_unless_size_is_set(tmp_path):
    photos = write_colours(tmp_path / "photos", per_class=4)
    odd = photos / "red" / "red_odd.png"
    colour_image(0, np.random.default_rng(0), size=(20, 12)).save(odd)

    with pytest.raises(NeuralabError) as raised:
        ImagesConfig(path=photos).load(seed=0)
    assert str(raised.value).startswith(f"{odd}: 20x12 pixels (height x width), but ")
    assert "set data.dataset.size: [H, W]" in str(raised.value)

    raw = ImagesConfig(path=photos, size=(8, 10)).load(seed=0)
    assert raw.x.shape == (13, 3, 8, 10)
    assert raw.x.dtype == np.float32
    assert raw.x.max() <= 255  # pixel values as in the files
    red = raw.x[raw.y == raw.label_names.index("red")]
    assert red[:, 0].mean() > red[:, 1].mean() + 60  # resizing keeps each image's colour


def test_grey_images_give_one_channel_and_channels_converts(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("dark", "light"):
        (tmp_path / name).mkdir()
        for i in range(3):
            pixels = rng.integers(0, 100, size=(6, 6)) + (100 if name == "light" else 0)
            Image.fromarray(pixels.astype(np.uint8), "L").save(tmp_path / name / f"{i}.png")

    grey = ImagesConfig(path=tmp_path).load(seed=0)
    assert grey.x.shape == (6, 1, 6, 6)
    assert grey.label_names == ("dark", "light")
    assert grey.y.tolist() == [0, 0, 0, 1, 1, 1]
    colour = ImagesConfig(path=tmp_path, channels=3).load(seed=0)
    assert colour.x.shape == (6, 3, 6, 6)
    assert np.array_equal(colour.x[:, 0], grey.x[:, 0])  # grey -> RGB repeats the value


def test_flat_folder_is_one_class_an_autoencoder_reads_and_a_classifier_refuses(tmp_path):
    photos = write_colours(tmp_path / "photos", per_class=4, flat=True)
    raw = ImagesConfig(path=photos).load(seed=0)
    assert raw.label_names == ("photos",)
    assert set(raw.y.tolist()) == {0}

    data = {"dataset": {"images": str(photos)}, "split": {"stratify": False}}
    autoencoder = load_config({"data": data, "model": {"family": "autoencoder"}})
    assert load_data(autoencoder.data, task=None, seed=0).x_train.shape[1:] == (3, 16, 16)

    from neuralab.plan import plan

    with pytest.raises(NeuralabError, match="classification needs 2 or more classes"):
        plan(load_config({"data": data, "model": {"family": "cnn", "channels": [4]}}))


def test_images_beside_class_folders_are_refused(tmp_path):
    photos = write_colours(tmp_path / "photos", per_class=2)
    colour_image(0, np.random.default_rng(0)).save(photos / "stray.png")
    with pytest.raises(NeuralabError, match=r"class subfolders \(blue, green, red\) and 1 image"):
        ImagesConfig(path=photos).load(seed=0)
