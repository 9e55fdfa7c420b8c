"""The autoencoder family and its reconstruction task: it learns digits (dense, conv, and
variational), scores noise as anomalous, draws its latent map, predicts anomaly scores,
and a VAE's KL term trades reconstruction for a tighter latent space as beta grows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import neuralab
from neuralab.errors import NeuralabError
from neuralab.models import AutoEncoderConfig
from neuralab.runs import read_metrics
from neuralab.tasks import Reconstruction
from neuralab.train.loop import batches
from neuralab.train.steps import SUPERVISED

_IMAGES = load_digits().images.astype(np.float32)[:, None]
DIGITS = torch.tensor((_IMAGES - _IMAGES.mean()) / _IMAGES.std())  # standardised (N, 1, 8, 8)
TRAIN, VAL = DIGITS[:1400], DIGITS[1400:]


def train_on_digits(spec: dict, epochs: int = 5):
    """Train through the family's own step (so a VAE's KL enters via `forward_train`);
    returns the model and its validation MSE before and after."""
    torch.manual_seed(0)
    model = AutoEncoderConfig(**spec).build(input_shape=(1, 8, 8), num_outputs=10)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
    before = validation_mse(model)
    order = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        for x, _ in batches(TRAIN, TRAIN, 64, order):
            SUPERVISED(model, Reconstruction(), optimizer, x, x)
    return model, before, validation_mse(model)


def validation_mse(model) -> float:
    model.eval()
    with torch.no_grad():
        return torch.nn.functional.mse_loss(model(VAL), VAL).item()


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
    assert digits_run.card.task == "reconstruction"
    history = read_metrics(digits_run.path)
    assert "val_mse" in history[0]
    # Always outputting the mean (0 in standardised units) scores 1.0 on test; 5 epochs
    # reach 0.47 (measured), and the train loss falls 3.4x from epoch 1 to epoch 5.
    assert digits_run.test_metrics["mse"] < 0.6
    assert history[-1]["train_loss"] < 0.4 * history[0]["train_loss"]
    assert digits_run.card.confusion_matrix is None


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


@pytest.mark.parametrize(
    "spec",
    [{"kind": "conv"}, {"variational": True}, {"kind": "conv", "variational": True}],
    ids=["conv", "dense-vae", "conv-vae"],
)
def test_each_variant_learns_to_reconstruct_digits(spec):
    _, before, after = train_on_digits(spec)
    # Predicting the mean scores ~1.0; 5 epochs (under 3 s) reach 0.44-0.52, measured,
    # from 3-15 untrained.
    assert after < 0.6
    assert after < before / 5


def test_conv_variant_uses_convolutions_for_images_and_sequences():
    spec = AutoEncoderConfig(kind="conv", channels=(4, 8), latent_size=3)
    image_model = spec.build(input_shape=(1, 8, 8), num_outputs=10)
    assert any(isinstance(m, torch.nn.Conv2d) for m in image_model.modules())
    sequence_model = spec.build(input_shape=(2, 40), num_outputs=10)
    x = torch.randn(5, 2, 40)
    assert sequence_model(x).shape == x.shape
    assert sequence_model.encode(x).shape == (5, 3)
    with pytest.raises(NeuralabError, match="model.channels: .* divisible by 8"):
        AutoEncoderConfig(kind="conv", channels=(4, 4, 4)).build(
            input_shape=(1, 12, 12), num_outputs=10
        )


def test_vae_kl_is_positive_and_beta_pulls_the_codes_to_the_prior():
    kl, spread = {}, {}
    for beta in (0.1, 10.0):
        model, _, _ = train_on_digits({"variational": True, "latent_size": 4, "beta": beta})
        model.eval()
        with torch.no_grad():
            kl[beta] = model.kl_divergence(VAL).item()
            spread[beta] = model.encode(VAL).var(dim=0).mean().item()
    # Measured: KL 9.7 nats at beta 0.1, 0.6 at beta 10; the spread of the posterior
    # means 0.40 against 0.10.
    assert kl[10.0] > 0
    assert kl[10.0] < kl[0.1] / 4
    assert spread[10.0] < spread[0.1] / 2


def test_vae_returns_its_kl_term_and_keeps_no_loss_on_itself():
    """The extra loss is beta x KL(posterior || prior) per input value, computed here by
    hand; and neither pass leaves anything on the module for a later read."""
    torch.manual_seed(0)
    model = AutoEncoderConfig(variational=True, latent_size=3, beta=0.5).build(
        input_shape=(1, 8, 8), num_outputs=10
    )
    x = DIGITS[:16]

    def state() -> dict:
        # every attribute (the mode flag aside) and the contents of its registries
        held = {name: value for name, value in vars(model).items() if name != "training"}
        return {**held, **dict(model.named_buffers()), **dict(model.named_modules())}

    before = state()
    model.train()
    reconstruction, extra_loss = model.forward_train(x, x)
    model(x)
    model.eval()
    model(x)
    after = state()
    assert after.keys() == before.keys()
    assert all(after[name] is value for name, value in before.items())
    mean, log_var = model.encoder(x.flatten(1)).chunk(2, dim=1)
    kl = 0.5 * (mean**2 + log_var.exp() - 1 - log_var).sum(dim=1).mean()
    assert reconstruction.shape == x.shape
    assert extra_loss.item() == pytest.approx(0.5 * kl.item() / 64, rel=1e-6)
    assert model.kl_divergence(x).item() == pytest.approx(kl.item(), rel=1e-6)
    assert extra_loss.requires_grad  # it trains the encoder


def test_plain_autoencoder_does_not_generate(digits_run, run_cli):
    code, _, err = run_cli("generate", str(digits_run.path))
    assert code == 2
    assert "autoencoder runs do not generate samples" in err


def test_vae_run_generates_from_its_prior(tmp_path, run_cli):
    run = neuralab.train(
        {
            "name": "vae",
            "data": {"dataset": "digits"},
            "model": {"family": "autoencoder", "kind": "conv", "variational": True},
            "train": {"epochs": 2, "batch_size": 64},
        },
        out=tmp_path,
    )
    assert (run.path / "latent.png").stat().st_size > 0
    assert "Decoded draws from the prior" in (run.path / "report.html").read_text(encoding="utf-8")
    samples = neuralab.load(run.path).samples(5, seed=0)
    assert samples.shape == (5, 1, 8, 8)
    assert len({s.tobytes() for s in samples}) == 5
    code, out, _ = run_cli("generate", str(run.path), "--n", "9")
    assert code == 0
    assert (run.path / "generated-seed0.png").read_bytes().startswith(b"\x89PNG")
