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
from neuralab.train import steps
from neuralab.train.device import Placement
from neuralab.train.steps import StepSettings
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


def tiny_gan():
    torch.manual_seed(0)
    return GANConfig(latent_size=4, channels=(8, 4)).build(input_shape=(1, 8, 8), num_outputs=10)


def test_the_family_chooses_the_adversarial_step():
    assert isinstance(GANConfig().step(), steps.Adversarial)


def test_step_moves_both_players_and_reports_their_logits():
    model = tiny_gan()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    step = steps.Adversarial()
    output, loss = step(model, Adversarial(), optimizer, torch.randn(6, 1, 8, 8), torch.zeros(6))
    assert output.shape == (6, 2)
    assert loss.item() == pytest.approx(Adversarial().loss(output, torch.zeros(6)).item())
    for name, parameter in model.named_parameters():
        assert not torch.equal(parameter, before[name]), name


def test_generator_step_leaves_the_discriminator_alone():
    """With plain SGD and the discriminator's learning rate at 0, only the generator step
    can move anything: the discriminator must not change."""
    model = tiny_gan()
    discriminator = [p.detach().clone() for p in model.discriminator.parameters()]
    optimizer = torch.optim.SGD(
        [
            {"params": model.generator.parameters(), "lr": 0.1},
            {"params": model.discriminator.parameters(), "lr": 0.0},
        ]
    )
    steps.Adversarial()(model, Adversarial(), optimizer, torch.randn(6, 1, 8, 8), torch.zeros(6))
    for kept, parameter in zip(discriminator, model.discriminator.parameters(), strict=True):
        assert torch.equal(kept, parameter)


def gradient_norms_at_each_update(settings: StepSettings, placement: Placement) -> list[float]:
    """The norm of the gradients each optimizer step is about to apply, over one batch."""
    model = tiny_gan()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    norms = []

    def record(optimizer, args, kwargs):
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
        norms.append(torch.nn.utils.get_total_norm([g for g in grads if g is not None]).item())

    optimizer.register_step_pre_hook(record)
    x = torch.randn(16, 1, 8, 8) * 5  # far from what the untrained players expect
    steps.Adversarial()(model, Adversarial(), optimizer, x, torch.zeros(16), settings, placement)
    return norms


@pytest.mark.parametrize("scaled", [False, True])
def test_each_players_update_is_clipped_to_grad_clip(scaled):
    """With a gradient scaler (fp16's; on the CPU here), the gradients are unscaled before
    they are clipped, and each player's update goes through it."""
    placement = Placement(
        scaler=torch.amp.GradScaler("cpu", init_scale=2.0**10) if scaled else None
    )
    unclipped = gradient_norms_at_each_update(StepSettings(), placement)
    clipped = gradient_norms_at_each_update(StepSettings(grad_clip=0.1), placement)
    assert len(clipped) == 2  # the discriminator's update, then the generator's
    assert min(unclipped) > 0.1  # so clipping has something to do
    # exactly at the bound: clipped after unscaling, not before (that would end 1024x lower)
    assert clipped == pytest.approx([0.1, 0.1], rel=1e-4)


def test_both_players_run_under_the_placements_autocast():
    model = tiny_gan()
    dtypes: dict[str, set] = {"generator": set(), "discriminator": set()}
    for name in dtypes:
        first_layer = getattr(model, name)[0]
        first_layer.register_forward_hook(
            lambda module, args, output, name=name: dtypes[name].add(output.dtype)
        )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    bf16 = Placement(torch.device("cpu"), torch.bfloat16)
    output, loss = steps.Adversarial()(
        model, Adversarial(), optimizer, torch.randn(6, 1, 8, 8), torch.zeros(6), placement=bf16
    )
    assert dtypes == {"generator": {torch.bfloat16}, "discriminator": {torch.bfloat16}}
    assert output.dtype == torch.float32  # metrics are computed in fp32
    assert torch.isfinite(loss)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the weights stay fp32


def test_run_records_both_players_and_writes_sample_grids(gan_run):
    assert gan_run.card.task == "adversarial"
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
    assert gan_run.card.diagnostics.warnings == []


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


def test_settings_the_adversarial_step_cannot_honour_are_refused_by_key(tmp_path):
    experiment = {
        **GAN_EXPERIMENT,
        "train": {"epochs": 1, "early_stopping": {"monitor": "val_loss"}, "compile": True},
        "regularization": {"l2": 0.01, "input_noise": 0.1},
    }
    with pytest.raises(NeuralabError) as caught:
        neuralab.train(experiment, out=tmp_path)
    keys = [problem.where for problem in caught.value.problems]
    assert keys == [
        "train.early_stopping",
        "train.compile",
        "regularization.l2",
        "regularization.input_noise",
    ]
    assert "optim.weight_decay applies to both" in str(caught.value)
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("key", sorted(steps.Adversarial.refused_settings.keys() - {"--nproc"}))
def test_every_refused_setting_is_a_real_key_that_a_set_value_trips(key):
    """A refusal of a misspelt or moved key would never fire: each must name a setting."""
    from neuralab.config import Experiment

    values = {
        "train.loss": "mse",
        "train.early_stopping": {"monitor": "val_loss"},
        "train.compile": True,
        "regularization.l1": 0.01,
        "regularization.l2": 0.01,
        "regularization.input_noise": 0.1,
        "privacy": {"epsilon": 3.0},
    }
    *sections, name = key.split(".")
    spec: dict = {**GAN_EXPERIMENT}
    if sections:
        spec[sections[0]] = {**spec.get(sections[0], {}), name: values[key]}
    else:
        spec[name] = values[key]
    step = steps.Adversarial()
    assert steps.setting_problems(step, Experiment.model_validate(GAN_EXPERIMENT)) == []
    problems = steps.setting_problems(step, Experiment.model_validate(spec))
    assert [problem.where for problem in problems] == [key]


def test_the_adversarial_step_refuses_to_run_under_torchrun(monkeypatch):
    from neuralab.config import Experiment

    experiment = Experiment.model_validate(GAN_EXPERIMENT)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun --nproc-per-node 2 sets it
    problems = steps.setting_problems(steps.Adversarial(), experiment)
    assert [problem.where for problem in problems] == ["--nproc"]
    assert steps.setting_problems(steps.Supervised(), experiment) == []


def test_the_docs_name_every_refused_setting():
    from pathlib import Path

    models_doc = Path(__file__).parents[2] / "docs" / "models.md"
    section = models_doc.read_text(encoding="utf-8").split("## family: gan")[1].split("## ")[0]
    for key in steps.Adversarial.refused_settings:
        assert f"`{key}`" in section, key


def test_a_gan_trains_with_grad_clip_and_bf16(tmp_path):
    """Settings the GAN's own update used to skip now reach it, and it still learns."""
    spec = {
        **GAN_EXPERIMENT,
        "model": {"family": "gan", "latent_size": 8, "channels": [16, 8], "samples_every": None},
        "train": {"epochs": 3, "batch_size": 64, "grad_clip": 5.0, "precision": "bf16"},
    }
    run = neuralab.train(spec, out=tmp_path, write_report=False)
    last = read_metrics(run.path)[-1]
    assert all(np.isfinite(value) for value in last.values())
    assert last["val_d_real"] > last["val_d_fake"]


def test_shapes_it_cannot_double_back_to_are_refused():
    with pytest.raises(NeuralabError, match="model.channels: .* divisible by 8"):
        GANConfig(channels=(8, 8, 8)).build(input_shape=(1, 12, 12), num_outputs=10)
    with pytest.raises(NeuralabError, match="gan needs image"):
        GANConfig().build(input_shape=(5,), num_outputs=2)


def test_sequences_get_a_1d_gan():
    model = GANConfig(channels=(8, 4)).build(input_shape=(1, 40), num_outputs=10)
    assert model.sample(3).shape == (3, 1, 40)
    assert model(torch.randn(5, 1, 40)).shape == (5, 2)


@pytest.mark.parametrize("train", [{}, {"grad_clip": 1.0, "precision": "bf16"}])
def test_interrupted_gan_resumes_to_the_same_weights(tmp_path, train):
    """Both players, the shared optimizer and the noise stream come back from the
    checkpoint: the resumed run equals an uninterrupted one, byte for byte (clipped and
    in bf16 too)."""
    from neuralab.api import resume
    from tests.train.test_resume import InterruptAt, partial_of

    spec = {
        **GAN_EXPERIMENT,
        "model": {"family": "gan", "latent_size": 4, "channels": [8, 4], "samples_every": 1},
        "train": {"epochs": 2, "batch_size": 128, "checkpoint_every": 4, **train},
    }
    reference = neuralab.train(spec, out=tmp_path / "reference")
    with pytest.raises(NeuralabError, match="interrupted at epoch 1, step 6"):
        neuralab.train(spec, out=tmp_path / "resumed", callbacks=[InterruptAt(6)])
    run = resume(partial_of(tmp_path / "resumed"))
    weights = (run.path / "model.safetensors").read_bytes()
    assert weights == (reference.path / "model.safetensors").read_bytes()
    assert run.card.metrics == reference.card.metrics
