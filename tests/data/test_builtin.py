"""Builtin datasets: shapes, splits, and standardisation fitted on train only."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from neuralab.data import DataConfig, load_data
from neuralab.data.builtin import AddingConfig
from neuralab.errors import NeuralabError


def bundle_of(dataset, **split):
    config = DataConfig.model_validate({"dataset": dataset, "split": split})
    return load_data(config, task=None, seed=0)


def test_digits_are_8x8_images_with_stratified_split():
    bundle = bundle_of("digits")
    assert bundle.meta.kind == "image"
    assert bundle.meta.input_shape == (1, 8, 8)
    assert bundle.meta.sizes == {"train": 1257, "val": 180, "test": 360}
    assert bundle.meta.label_names == tuple("0123456789")
    # stratified: every class holds ~10% of the test split
    counts = torch.bincount(bundle.y_test, minlength=10)
    assert counts.min() >= 34
    assert counts.max() <= 38


def test_standardisation_is_fitted_on_train_only():
    bundle = bundle_of("digits")
    assert abs(bundle.x_train.mean().item()) < 1e-5
    assert abs(bundle.x_train.std().item() - 1) < 1e-2
    # the test split is scaled with train's statistics, so it is not exactly centred
    assert bundle.x_test.mean().item() != pytest.approx(0.0, abs=1e-5)


def test_split_is_seeded_and_disjoint():
    a, b = bundle_of("moons"), bundle_of("moons")
    assert torch.equal(a.x_test, b.x_test)
    train_rows = {tuple(r) for r in a.x_train.tolist()}
    assert not train_rows & {tuple(r) for r in a.x_test.tolist()}


def test_mnist1d_keeps_its_own_test_split_and_global_rng():
    random.seed(123)
    np.random.seed(123)
    expected = (random.random(), np.random.rand())
    random.seed(123)
    np.random.seed(123)
    bundle = bundle_of("mnist1d", val=0.1)
    assert (random.random(), np.random.rand()) == expected
    assert bundle.meta.input_shape == (1, 40)
    assert bundle.meta.sizes == {"train": 3600, "val": 400, "test": 1000}


def test_sine_is_split_chronologically():
    bundle = bundle_of({"name": "sine", "num_samples": 500, "window": 8, "horizon": 2})
    assert bundle.meta.task == "regression"
    assert bundle.meta.input_shape == (1, 8)
    assert bundle.meta.num_outputs == 2
    assert bundle.meta.sizes == {"train": 350, "val": 50, "test": 100}
    # consecutive windows overlap: the last train window's tail is the first val window's head
    last_train, first_val = bundle.x_train[-1, 0], bundle.x_val[0, 0]
    assert torch.allclose(last_train[1:], first_val[:-1])


def test_regression_targets_are_standardised_on_train():
    bundle = bundle_of("sine")
    assert abs(bundle.y_train.mean().item()) < 1e-5
    restored = bundle.meta.unscale_targets(bundle.y_train)
    assert restored.std().item() == pytest.approx(bundle.meta.y_std[0], rel=1e-3)


def test_blobs_follow_their_parameters():
    bundle = bundle_of({"name": "blobs", "num_samples": 200, "num_features": 5, "num_classes": 4})
    assert bundle.meta.input_shape == (5,)
    assert bundle.meta.num_outputs == 4


def test_adding_problem_marks_one_value_in_each_half_and_sums_them():
    raw = AddingConfig(num_samples=50, length=20).load(seed=0)
    assert raw.x.shape == (50, 2, 20)
    values, markers = raw.x[:, 0], raw.x[:, 1]
    assert ((values >= 0) & (values <= 1)).all()
    assert (markers[:, :10].sum(axis=1) == 1).all()
    assert (markers[:, 10:].sum(axis=1) == 1).all()
    np.testing.assert_allclose(raw.y[:, 0], (values * markers).sum(axis=1), rtol=1e-6)


def test_adding_standardisation_keeps_the_markers_readable():
    # Per-channel standardisation is affine: the marker channel keeps two distinct values.
    bundle = bundle_of({"name": "adding", "num_samples": 200, "length": 20})
    assert bundle.meta.task == "regression"
    assert bundle.meta.input_shape == (2, 20)
    markers = bundle.x_train[:, 1]
    high = markers.max()
    assert torch.unique(markers).numel() == 2
    assert ((markers == high).sum(dim=1) == 2).all()


def test_classes_keep_and_relabel_the_named_classes():
    config = DataConfig(dataset="digits", classes=[7, 3])
    bundle = load_data(config, task=None, seed=0)
    assert bundle.meta.label_names == ("7", "3")
    assert bundle.meta.num_outputs == 2
    assert set(bundle.y_train.tolist()) == {0, 1}
    assert sum(bundle.meta.sizes.values()) == 179 + 183  # every 7 and every 3


def test_labels_per_class_cuts_only_the_training_split():
    full = load_data(DataConfig(dataset="digits"), task=None, seed=0)
    few = load_data(DataConfig(dataset="digits", labels_per_class=4), task=None, seed=0)
    assert torch.bincount(few.y_train).tolist() == [4] * 10
    assert len(few.x_val) == len(full.x_val)
    assert len(few.x_test) == len(full.x_test)


def test_unknown_classes_are_an_error_listing_the_valid_ones():
    with pytest.raises(NeuralabError, match=r"data.classes: '11' not among .* \(classes: 0, 1"):
        load_data(DataConfig(dataset="digits", classes=[1, 11]), task=None, seed=0)
