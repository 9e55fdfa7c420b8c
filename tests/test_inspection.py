"""`neuralab inspect`: layer table, sizes and one batch, for every example, without training."""

from __future__ import annotations

import math

import pytest
from torch.optim.optimizer import register_optimizer_step_pre_hook

from neuralab.config import load_config
from neuralab.inspection import inspect_experiment
from neuralab.train import count_parameters
from tests.conftest import EXAMPLES, tiny_experiment

ALL = sorted(EXAMPLES.rglob("*.yaml"))


def test_there_are_examples_to_inspect():
    assert len(ALL) >= 10


class Watch:
    """Counts what inspection does to the models it builds: the samples of each forward
    call, and every optimizer step anywhere."""

    def __init__(self, monkeypatch, spec) -> None:
        self.forward_sizes: list[int] = []
        self.steps = 0
        build = type(spec).build

        def watched_build(config, *args, **kwargs):
            model = build(config, *args, **kwargs)
            model.register_forward_hook(self._forward)
            return model

        monkeypatch.setattr(type(spec), "build", watched_build)

    def _forward(self, module, inputs, output) -> None:
        self.forward_sizes.append(len(inputs[0]))

    def _step(self, optimizer, args, kwargs) -> None:
        self.steps += 1

    def __enter__(self) -> Watch:
        self._hook = register_optimizer_step_pre_hook(self._step)
        return self

    def __exit__(self, *exc_info) -> None:
        self._hook.remove()


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_inspect_every_example_without_training_with_the_models_own_parameter_count(
    path, monkeypatch
):
    experiment = load_config(path)
    absent = [str(f) for f in experiment.data.dataset.files().values() if not f.exists()]
    if absent:  # e.g. the MNIST examples before `neuralab datasets download mnist`
        pytest.skip(f"its data is not here: {', '.join(absent)}")
    with Watch(monkeypatch, experiment.model) as watch:
        inspection = inspect_experiment(experiment)
    # one batch, looked at three times at most (layer table, multiply-adds, forward and
    # backward); never an epoch, and never an optimizer step
    assert watch.steps == 0
    assert 1 <= len(watch.forward_sizes) <= 3
    assert all(size <= experiment.train.batch_size for size in watch.forward_sizes)
    meta = inspection.bundle.meta
    model = inspection.experiment.model.build(
        input_shape=meta.input_shape, num_outputs=meta.num_outputs
    )
    assert inspection.num_parameters == count_parameters(model)
    assert sum(layer.parameters for layer in inspection.layers) == count_parameters(model)
    assert inspection.without_gradient == []
    assert math.isfinite(inspection.initial_loss)
    assert inspection.multiply_adds_per_sample > 0


def test_multiply_adds_are_the_matmul_sizes():
    mlp = inspect_experiment(load_config(tiny_experiment()))  # digits 64 -> 16 -> 10
    assert mlp.multiply_adds_per_sample == 64 * 16 + 16 * 10
    lstm = inspect_experiment(
        load_config(
            tiny_experiment(
                data={"dataset": {"name": "sine", "window": 12}},
                model={"family": "rnn", "cell": "lstm", "hidden_size": 8},
            )
        )
    )
    # 12 steps of 4 gates over input (1) and hidden (8) features, then the 8 -> 1 head
    assert lstm.multiply_adds_per_sample == 12 * 4 * 8 * (1 + 8) + 8


def test_activation_memory_grows_with_the_batch():
    small = inspect_experiment(load_config(tiny_experiment(train={"batch_size": 32})))
    large = inspect_experiment(load_config(tiny_experiment(train={"batch_size": 128})))
    assert 3.5 < large.activation_bytes_per_batch / small.activation_bytes_per_batch < 4.5


def test_classification_loss_at_init_and_class_counts():
    inspection = inspect_experiment(load_config(tiny_experiment()))
    counts = inspection.class_counts()
    assert [sum(c) for c in counts.values()] == list(inspection.bundle.meta.sizes.values())
    assert 1.0 < inspection.initial_loss < 5.0  # ln 10 = 2.3 for a uniform guess


def test_inspect_command_prints_the_table_and_writes_nothing(tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("inspect", str(EXAMPLES / "digits-cnn.yaml"))
    assert code == 0, err
    for text in ("features.0.0", "Conv2d", "[64, 32, 8, 8]", "18,432", "parameters: 21,482"):
        assert text in out
    assert "multiply-adds per sample: 315,904" in out
    assert "resolved config:" in out
    assert "schedule: {name: cosine, min_lr: 0.0}" in out
    assert list(tmp_path.iterdir()) == []


def test_inspect_a_baseline_fits_it_and_counts_stored_numbers(run_cli, tmp_path):
    import yaml

    path = tmp_path / "logreg.yaml"
    path.write_text(yaml.safe_dump(tiny_experiment(model={"family": "logreg"})))
    code, out, err = run_cli("inspect", str(path))
    assert code == 0, err
    assert "LogisticRegression" in out
    assert "stored numbers after fitting the training split: 650" in out  # 64 x 10 + 10


def test_inspect_reports_config_errors(run_cli):
    code, _, err = run_cli("inspect", str(EXAMPLES / "digits-cnn.yaml"), "--set", "optim.lrr=1")
    assert code == 2
    assert err.startswith("error: optim.lrr: unknown key")


def test_inspect_a_gan_compares_with_an_undecided_discriminator_not_a_class_guess(run_cli):
    code, out, err = run_cli("inspect", str(EXAMPLES / "digits-gan.yaml"))
    assert code == 0, err
    assert "uniform guess" not in out
    # logit 0 for real and generated: 2 ln 2 for the discriminator + ln 2 for the generator
    undecided = f"a discriminator that cannot tell real from generated scores {3 * math.log(2):.4f}"
    assert undecided in out
    assert "classification (labels unused: the run learns adversarial)" in out


@pytest.mark.parametrize(
    ("sections", "reference"),
    [
        ({}, math.log(10)),  # a uniform guess over the digits
        (
            {
                "data": {"dataset": {"name": "reverse", "num_samples": 200}},
                "model": {"family": "seq2seq", "hidden_size": 8},
            },
            math.log(13),
        ),
    ],
    ids=["classification", "seq2seq"],
)
def test_reference_loss_is_the_loss_of_an_all_zero_output(sections, reference):
    inspection = inspect_experiment(load_config(tiny_experiment(**sections)))
    assert inspection.reference_loss is not None
    assert inspection.reference_loss[1] == pytest.approx(reference, rel=1e-5)
