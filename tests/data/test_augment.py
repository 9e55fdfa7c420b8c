"""Augmentation: each transform on a tiny tensor, seeding, the training split only, resume
to the same bytes, and options that do not fit the data refused by key."""

from __future__ import annotations

import os
import signal

import pytest
import torch

import neuralab
from neuralab.api import resume
from neuralab.config import Experiment
from neuralab.data import AugmentConfig
from neuralab.plan import plan
from neuralab.train import Callback
from tests.conftest import tiny_experiment


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n: int = 6, channels: int = 2, size: int = 5) -> torch.Tensor:
    """Distinct values everywhere, so a moved pixel is recognisable."""
    return torch.arange(n * channels * size * size, dtype=torch.float32).view(
        n, channels, size, size
    )


def test_flip_reverses_the_width_of_the_chosen_images():
    x = images()
    out = AugmentConfig(flip=True).apply(x, generator())
    flipped = [bool(torch.equal(o, s.flip(-1))) for o, s in zip(out, x, strict=True)]
    kept = [bool(torch.equal(o, s)) for o, s in zip(out, x, strict=True)]
    assert all(f != k for f, k in zip(flipped, kept, strict=True))  # each image one or other
    assert any(flipped)
    assert any(kept)


def test_crop_keeps_the_shape_and_moves_the_content_within_the_padding():
    x = images(n=20)
    out = AugmentConfig(crop={"padding": 2}).apply(x, generator())
    assert out.shape == x.shape
    moved = 0
    for original, cropped in zip(x, out, strict=True):
        padded = torch.nn.functional.pad(original, [2, 2, 2, 2], mode="replicate")
        windows = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if torch.equal(padded[:, dy : dy + 5, dx : dx + 5], cropped)
        ]
        assert len(windows) == 1  # exactly one window of the padded image
        moved += windows[0] != (2, 2)
    assert moved > 10  # most of 20 images moved (1 offset in 25 is no move)


def test_cutout_zeroes_one_square_of_the_given_size_in_every_channel():
    x = images() + 1  # no zeros before
    out = AugmentConfig(cutout={"size": 3}).apply(x, generator())
    for original, cut in zip(x, out, strict=True):
        zero = cut == 0
        assert torch.equal(zero[0], zero[1])  # the same square in each channel
        rows, columns = zero[0].nonzero().unbind(1)
        assert zero[0].sum() == 9
        assert rows.max() - rows.min() == 2
        assert columns.max() - columns.min() == 2
        assert torch.equal(cut[~zero], original[~zero])  # the rest untouched


def test_rotation_of_a_half_turn_at_most_keeps_shape_and_zero_translation_is_identity():
    x = images()
    assert torch.allclose(AugmentConfig(translate=0.0, rotate=0.0).apply(x, generator()), x)
    out = AugmentConfig(rotate=10).apply(x, generator())
    assert out.shape == x.shape
    assert not torch.equal(out, x)
    # a move of a whole pixel each way at most: a fifth of a 5-pixel image
    moved = AugmentConfig(translate=0.2).apply(x, generator())
    assert moved.shape == x.shape
    assert not torch.equal(moved, x)


def test_jitter_shifts_and_scales_each_image_as_a_whole():
    x = images()
    out = AugmentConfig(jitter={"brightness": 0.5, "contrast": 0.5}).apply(x, generator())
    for original, changed in zip(x, out, strict=True):
        deviation = original - original.mean()
        factor = (changed - changed.mean()).norm() / deviation.norm()
        assert 0.5 <= factor <= 1.5
        assert torch.allclose(changed - changed.mean(), deviation * factor, atol=1e-4)
        assert abs(changed.mean() - original.mean()) <= 0.5 + 1e-5


def test_sequence_shift_moves_each_sample_in_time_repeating_its_edge():
    x = torch.arange(1, 1 + 8 * 2 * 10, dtype=torch.float32).view(8, 2, 10)
    out = AugmentConfig(shift=3).apply(x, generator())
    for original, shifted in zip(x, out, strict=True):
        padded = torch.nn.functional.pad(original, [3, 3], mode="replicate")
        starts = [s for s in range(7) if torch.equal(padded[:, s : s + 10], shifted)]
        assert len(starts) == 1


def test_sequence_scale_and_noise():
    x = torch.ones(50, 1, 20)
    scaled = AugmentConfig(scale=0.1).apply(x, generator())
    factors = scaled[:, 0, 0]
    assert torch.equal(scaled, factors[:, None, None].expand_as(x))  # one factor per sample
    assert factors.min() >= 0.9
    assert factors.max() <= 1.1
    assert factors.std() > 0.01
    noisy = AugmentConfig(noise=0.05).apply(x, generator())
    assert 0.04 < (noisy - x).std() < 0.06


def test_every_transform_keeps_the_input_and_shape_and_the_same_seed_repeats():
    config = AugmentConfig(
        crop={"padding": 1},
        flip=True,
        rotate=10,
        translate=0.1,
        jitter={"brightness": 0.2, "contrast": 0.2},
        cutout={"size": 2},
    )
    x = images()
    before = x.clone()
    first, second = config.apply(x, generator(3)), config.apply(x, generator(3))
    assert torch.equal(x, before)  # not changed in place
    assert first.shape == x.shape
    assert torch.equal(first, second)
    assert not torch.equal(first, config.apply(x, generator(4)))


def test_no_option_is_on_by_default():
    assert AugmentConfig().options() == []
    assert torch.equal(AugmentConfig().apply(images(), generator()), images())


class Batches(Callback):
    """Keeps every training batch the step saw."""

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def on_step_end(self, state) -> None:
        self.seen.append(state.batch.clone())


def digits_cnn(augment: dict, **train) -> dict:
    return tiny_experiment(
        model={"family": "cnn", "channels": [4]},
        data={"dataset": "digits", "augment": augment},
        train={"epochs": 2, "batch_size": 256, **train},
    )


AUGMENT = {"crop": {"padding": 1}, "rotate": 10, "cutout": {"size": 2}}


def test_training_batches_are_augmented_and_seeded(tmp_path):
    plain, first, second = Batches(), Batches(), Batches()
    neuralab.train(digits_cnn({}), out=tmp_path / "plain", callbacks=[plain])
    neuralab.train(digits_cnn(AUGMENT), out=tmp_path / "a", callbacks=[first])
    neuralab.train(digits_cnn(AUGMENT), out=tmp_path / "b", callbacks=[second])
    assert len(first.seen) == len(plain.seen) == 10
    for augmented, again, original in zip(first.seen, second.seen, plain.seen, strict=True):
        assert torch.equal(augmented, again)  # same seed, same batches
        assert augmented.shape == original.shape
        assert not torch.equal(augmented, original)


def test_only_training_samples_are_augmented(tmp_path, monkeypatch):
    seen: list[torch.Tensor] = []
    apply = AugmentConfig.apply

    def spy(self, x, generator):
        seen.append(x.clone())
        return apply(self, x, generator)

    monkeypatch.setattr(AugmentConfig, "apply", spy)
    spec = digits_cnn(AUGMENT)
    neuralab.train(spec, out=tmp_path)
    bundle = plan(Experiment.model_validate(spec)).bundle
    train = {tuple(row.flatten().tolist()) for row in bundle.x_train}
    samples = [tuple(row.flatten().tolist()) for batch in seen for row in batch]
    assert len(samples) == 2 * len(bundle.x_train)  # every training sample, each epoch
    assert set(samples) == train  # and nothing from val or test


class InterruptAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, state) -> None:
        if state.step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_resume_with_augmentation_gives_the_same_bytes(tmp_path):
    # 5 steps an epoch; a checkpoint every 3 steps lands mid-epoch; interrupted at step 7
    spec = digits_cnn(AUGMENT, checkpoint_every=3)
    reference = neuralab.train(spec, out=tmp_path / "reference")
    with pytest.raises(neuralab.NeuralabError, match="interrupted at epoch 2, step 7"):
        neuralab.train(spec, out=tmp_path / "interrupted", callbacks=[InterruptAt(7)])
    [partial] = [p for p in (tmp_path / "interrupted").iterdir() if p.name.endswith(".partial")]
    resumed = resume(partial)
    weights = (resumed.path / "model.safetensors").read_bytes()
    assert weights == (reference.path / "model.safetensors").read_bytes()
    assert resumed.card.metrics == reference.card.metrics


@pytest.mark.parametrize(
    ("dataset", "augment", "key"),
    [
        ("mnist1d", {"flip": True}, "data.augment.flip"),
        ("mnist1d", {"cutout": {"size": 2}}, "data.augment.cutout"),
        ("digits", {"shift": 2}, "data.augment.shift"),
        ("moons", {"noise": 0.1}, "data.augment.noise"),
    ],
)
def test_an_option_that_does_not_fit_the_data_is_refused_by_key(dataset, augment, key):
    spec = tiny_experiment(
        data={"dataset": dataset, "augment": augment},
        model={"family": "mlp", "hidden_sizes": [8]},
    )
    with pytest.raises(neuralab.NeuralabError, match=key.replace(".", r"\.")):
        plan(Experiment.model_validate(spec))


def test_augmenting_an_autoencoder_or_a_baseline_is_refused():
    autoencoder = tiny_experiment(
        data={"dataset": "digits", "augment": {"flip": True}},
        model={"family": "autoencoder"},
    )
    with pytest.raises(neuralab.NeuralabError, match="reconstruction"):
        plan(Experiment.model_validate(autoencoder))
    baseline = tiny_experiment(
        data={"dataset": "digits", "augment": {"flip": True}},
        model={"family": "logreg"},
    )
    with pytest.raises(neuralab.NeuralabError, match="classical baseline"):
        plan(Experiment.model_validate(baseline))
