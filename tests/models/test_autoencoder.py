"""The autoencoder family and its reconstruction task: it learns digits, scores noise as
anomalous, draws its latent map, and predicts anomaly scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import neuralab
from neuralab.models import AutoEncoderConfig
from neuralab.runs import read_metrics


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """One short digits run (~3 s) shared by the tests below."""
    return neuralab.train(
        {
            "name": "ae",
            "seed": 0,
            "data": {"dataset": "digits"},
            "model": {"family": "autoencoder", "hidden_sizes": [64], "latent_size": 2},
            "optim": {"name": "adam", "lr": 0.003},
            "train": {"epochs": 5, "batch_size": 32},
        },
        out=tmp_path_factory.mktemp("runs"),
    )


def test_forward_keeps_the_input_shape_and_encode_gives_the_latent():
    model = AutoEncoderConfig(latent_size=3).build(input_shape=(2, 5, 4), num_outputs=10)
    x = torch.randn(7, 2, 5, 4)
    assert model(x).shape == x.shape
    assert model.encode(x).shape == (7, 3)


def test_overfits_one_batch():
    torch.manual_seed(0)
    model = AutoEncoderConfig(hidden_sizes=(16,)).build(input_shape=(1, 8, 8), num_outputs=3)
    x = torch.randn(4, 1, 8, 8)  # 4 samples fit the decoder's reach from a 2-D code
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    first = torch.nn.functional.mse_loss(model(x), x).item()
    for _ in range(300):
        loss = torch.nn.functional.mse_loss(model(x), x)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05 * first


def test_reconstruction_error_falls_on_digits(digits_run):
    assert digits_run.card["task"] == "reconstruction"
    history = read_metrics(digits_run.path)
    assert "val_mse" in history[0]
    # Always outputting the mean (0 in standardised units) scores 1.0 on test; 5 epochs
    # reach 0.47 (measured), and the train loss falls 3.4x from epoch 1 to epoch 5.
    assert digits_run.test_metrics["mse"] < 0.6
    assert history[-1]["train_loss"] < 0.4 * history[0]["train_loss"]
    assert "confusion_matrix" not in digits_run.card


def test_noise_scores_higher_than_digits(digits_run):
    predictor = neuralab.load(digits_run.path)
    digits = load_digits().images[:200, None].astype(np.float32)
    noise = np.random.default_rng(0).uniform(0, 16, size=digits.shape).astype(np.float32)
    digit_scores = predictor.predict(digits).values
    noise_scores = predictor.predict(noise).values
    assert digit_scores.shape == (200,)
    # Uniform noise is far from anything seen in training: measured 2.9x the error.
    assert np.median(noise_scores) > 2 * np.median(digit_scores)


def test_report_has_the_latent_map(digits_run):
    assert (digits_run.path / "latent.png").stat().st_size > 0
    page = (digits_run.path / "report.html").read_text(encoding="utf-8")
    assert "<h2>Latent map</h2>" in page
    assert "Test originals and reconstructions" in page


def test_predict_writes_anomaly_scores(digits_run, run_cli, tmp_path):
    samples = tmp_path / "samples.npy"
    np.save(samples, load_digits().images[:3, None].astype(np.float32))
    code, out, _ = run_cli("predict", str(digits_run.path), str(samples))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "anomaly_score"
    assert len(lines) == 4
    assert all(float(v) >= 0 for v in lines[1:])


def test_evaluate_recomputes_reconstruction_metrics(digits_run):
    metrics = neuralab.evaluate_run(digits_run.path)
    assert metrics["mse"] == pytest.approx(digits_run.test_metrics["mse"])
