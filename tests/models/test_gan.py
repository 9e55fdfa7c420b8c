"""The GAN family and its adversarial task: both players step, the run records both losses
and sample grids, and the generator learns digits that a classifier recognises."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import pairwise_distances
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import neuralab
from neuralab.errors import NeuralabError
from neuralab.models import GANConfig
from neuralab.runs import read_metrics
from neuralab.tasks import Adversarial
from tests.conftest import tiny_experiment

GAN_EXPERIMENT = {
    "name": "gan",
    "seed": 0,
    "data": {"dataset": "digits"},
    "model": {"family": "gan", "latent_size": 32, "channels": [64, 32], "samples_every": 5},
    "optim": {"name": "adam", "lr": 0.0005, "betas": [0.5, 0.999]},
    "train": {"epochs": 15, "batch_size": 64},
}


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    """One digits GAN run (~10 s on one thread) shared by the tests below."""
    return neuralab.train(GAN_EXPERIMENT, out=tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def judge():
    """A digits classifier, trained here: an MLP on standardised pixels (97% test accuracy
    on scikit-learn's own digits split)."""
    digits = load_digits()
    model = MLPClassifier((64,), max_iter=500, random_state=0)
    return make_pipeline(StandardScaler(), model).fit(digits.data, digits.target)


def test_train_step_moves_both_players_and_reports_their_logits():
    torch.manual_seed(0)
    model = GANConfig(latent_size=4, channels=(8, 4)).build(input_shape=(1, 8, 8), num_outputs=10)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    output, loss = model.train_step(torch.randn(6, 1, 8, 8), torch.zeros(6), optimizer)
    assert output.shape == (6, 2)
    assert loss.item() == pytest.approx(Adversarial().loss(output, torch.zeros(6)).item())
    for name, parameter in model.named_parameters():
        assert not torch.equal(parameter, before[name]), name


def test_generator_step_leaves_the_discriminator_alone():
    """With plain SGD and the discriminator's learning rate at 0, only the generator step
    can move anything: the discriminator must not change."""
    torch.manual_seed(0)
    model = GANConfig(latent_size=4, channels=(8, 4)).build(input_shape=(1, 8, 8), num_outputs=10)
    discriminator = [p.detach().clone() for p in model.discriminator.parameters()]
    optimizer = torch.optim.SGD(
        [
            {"params": model.generator.parameters(), "lr": 0.1},
            {"params": model.discriminator.parameters(), "lr": 0.0},
        ]
    )
    model.train_step(torch.randn(6, 1, 8, 8), torch.zeros(6), optimizer)
    for kept, parameter in zip(discriminator, model.discriminator.parameters(), strict=True):
        assert torch.equal(kept, parameter)


def test_run_records_both_players_and_writes_sample_grids(gan_run):
    assert gan_run.card["task"] == "adversarial"
    history = read_metrics(gan_run.path)
    assert len(history) == 15
    for key in ("train_d_loss", "train_g_loss", "val_d_real", "val_d_fake"):
        assert all(np.isfinite(record[key]) for record in history), key
    # An untrained discriminator scores real and generated alike (both ~0.5); after
    # training it tells them apart on the validation split.
    last = history[-1]
    assert last["val_d_real"] > last["val_d_fake"] + 0.1
    for name in ("samples.png", "curves.png", "report.html"):
        assert (gan_run.path / name).stat().st_size > 0, name
    assert "Generated samples" in (gan_run.path / "report.html").read_text(encoding="utf-8")
    assert gan_run.card["diagnostics"]["warnings"] == []


def test_samples_look_like_varied_digits_and_not_noise(gan_run, judge):
    samples = neuralab.load(gan_run.path).samples(256, seed=1).reshape(256, 64)
    digits = load_digits().data
    rng = np.random.default_rng(0)
    # Noise with each pixel's own mean and spread: a stricter foil than white noise, which
    # this classifier (like most) calls a digit with high confidence far from the data.
    noise = rng.normal(digits.mean(0), digits.std(0), size=(256, 64)).clip(0, 16)
    confident = (judge.predict_proba(samples).max(1) >= 0.9).mean()
    confident_noise = (judge.predict_proba(noise).max(1) >= 0.9).mean()
    # Measured: 0.76 of samples at >= 90% confidence vs 0.26 of the noise.
    assert confident > 0.6
    assert confident_noise < 0.4
    # No mode collapse (after 1-2 epochs every sample is the same digit, confidently):
    # measured 9 digits with 3+ samples, the commonest 27% of them.
    counts = np.bincount(judge.predict(samples), minlength=10)
    assert (counts >= 3).sum() >= 7
    assert counts.max() < 0.5 * len(samples)
    # Distinct samples, none a copy of a training digit.
    pairwise = pairwise_distances(samples)
    assert pairwise[np.triu_indices(256, 1)].min() > 1.0
    assert pairwise_distances(samples, digits).min() > 1.0


def test_load_rebuilds_the_gan_from_the_card_alone(gan_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(gan_run.path, copy)
    (copy / "config.yaml").unlink()
    predictor = neuralab.load(copy)
    first, again = predictor.samples(8, seed=3), predictor.samples(8, seed=3)
    assert first.shape == (8, 1, 8, 8)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, predictor.samples(8, seed=4))


def test_generate_writes_a_grid(gan_run, run_cli, tmp_path):
    code, out, _ = run_cli(
        "generate",
        str(gan_run.path),
        "--n",
        "16",
        "--seed",
        "2",
        "--output",
        str(tmp_path / "g.png"),
    )
    assert code == 0
    assert (tmp_path / "g.png").read_bytes().startswith(b"\x89PNG")
    assert "wrote 16 samples" in out


def test_generate_and_predict_refuse_the_wrong_kind_of_run(gan_run, run_cli, tmp_path):
    classifier = neuralab.train(tiny_experiment(), out=tmp_path)
    code, _, err = run_cli("generate", str(classifier.path))
    assert code == 2
    assert "mlp runs do not generate samples" in err
    samples = tmp_path / "x.npy"
    np.save(samples, load_digits().images[:2])
    code, _, err = run_cli("predict", str(gan_run.path), str(samples))
    assert code == 2
    assert "use neuralab generate" in err


def test_settings_a_gan_ignores_are_refused_by_key(tmp_path):
    experiment = {
        **GAN_EXPERIMENT,
        "train": {
            "epochs": 1,
            "grad_clip": 1.0,
            "early_stopping": {"monitor": "val_loss"},
            "precision": "bf16",
        },
        "regularization": {"l2": 0.01},
    }
    with pytest.raises(NeuralabError) as caught:
        neuralab.train(experiment, out=tmp_path)
    keys = [problem.where for problem in caught.value.problems]
    assert keys == [
        "train.grad_clip",
        "train.early_stopping",
        "train.precision",
        "regularization.l2",
    ]
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_shapes_it_cannot_double_back_to_are_refused():
    with pytest.raises(NeuralabError, match="model.channels: .* divisible by 8"):
        GANConfig(channels=(8, 8, 8)).build(input_shape=(1, 12, 12), num_outputs=10)
    with pytest.raises(NeuralabError, match="gan needs image"):
        GANConfig().build(input_shape=(5,), num_outputs=2)


def test_sequences_get_a_1d_gan():
    model = GANConfig(channels=(8, 4)).build(input_shape=(1, 40), num_outputs=10)
    assert model.sample(3).shape == (3, 1, 40)
    assert model(torch.randn(5, 1, 40)).shape == (5, 2)


def test_interrupted_gan_resumes_to_the_same_weights(tmp_path):
    """Both players, the shared optimizer and the noise stream come back from the
    checkpoint: the resumed run equals an uninterrupted one, byte for byte."""
    from neuralab.api import resume
    from tests.train.test_resume import InterruptAt, partial_of

    spec = {
        **GAN_EXPERIMENT,
        "model": {"family": "gan", "latent_size": 4, "channels": [8, 4], "samples_every": 1},
        "train": {"epochs": 2, "batch_size": 128, "checkpoint_every": 4},
    }
    reference = neuralab.train(spec, out=tmp_path / "reference")
    with pytest.raises(NeuralabError, match="interrupted at epoch 1, step 6"):
        neuralab.train(spec, out=tmp_path / "resumed", callbacks=[InterruptAt(6)])
    run = resume(partial_of(tmp_path / "resumed"))
    weights = (run.path / "model.safetensors").read_bytes()
    assert weights == (reference.path / "model.safetensors").read_bytes()
    assert run.card["metrics"] == reference.card["metrics"]
