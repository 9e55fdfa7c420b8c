"""Learning-rate range test: restores the start state, suggests a rate that trains well."""

from __future__ import annotations

import pytest
import torch

import neuralab
from neuralab.config import load_config
from neuralab.lr_find import sweep_experiment
from neuralab.plan import plan
from neuralab.train.lr_range import lr_range_test
from tests.conftest import EXAMPLES, tiny_experiment


def test_sweep_restores_weights_and_optimizer_state_and_rises_exponentially():
    experiment = load_config(tiny_experiment())
    planned = plan(experiment)
    bundle, task = planned.bundle, planned.task
    model = experiment.model.build(input_shape=(1, 8, 8), num_outputs=10)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    model(bundle.x_train[:8]).sum().backward()
    optimizer.step()  # some optimizer state (moments, step count) worth keeping
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    state = optimizer.state_dict()
    moments = {k: v["exp_avg"].clone() for k, v in state["state"].items()}
    sweep = lr_range_test(
        model, task, bundle, optimizer=optimizer, batch_size=64, seed=0, num_steps=60
    )
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())
    after = optimizer.state_dict()
    assert after["param_groups"] == state["param_groups"]
    assert all(torch.equal(m, after["state"][k]["exp_avg"]) for k, m in moments.items())
    ratios = torch.tensor(sweep.lrs[1:]) / torch.tensor(sweep.lrs[:-1])
    assert torch.allclose(ratios, ratios[0])
    assert sweep.lrs[0] < sweep.suggestion < sweep.lrs[-1]


def test_sweep_stops_when_the_loss_diverges():
    experiment = load_config(tiny_experiment(optim={"name": "sgd"}))
    planned = plan(experiment)
    bundle, task = planned.bundle, planned.task
    sweep = sweep_experiment(experiment, bundle, task, start_lr=1e-3, end_lr=1e6, num_steps=100)
    assert len(sweep.lrs) < 100


def test_auto_lr_equals_training_with_the_found_rate(tmp_path):
    auto = neuralab.train(tiny_experiment(optim={"lr": "auto"}), out=tmp_path)
    config = load_config(auto.path / "config.yaml")  # records the rate the sweep chose
    assert isinstance(config.optim.lr, float)
    assert (auto.path / "lr_find.png").is_file()
    explicit = neuralab.train(tiny_experiment(optim={"lr": config.optim.lr}), out=tmp_path)
    assert explicit.test_metrics == auto.test_metrics


def test_auto_lr_on_the_digits_cnn_reaches_the_default_accuracy(tmp_path):
    example = EXAMPLES / "digits-cnn.yaml"
    default = neuralab.train(example, out=tmp_path)
    auto = neuralab.train(example, overrides=["optim.lr=auto"], out=tmp_path)
    assert auto.test_metrics["accuracy"] >= default.test_metrics["accuracy"]


def test_lr_find_command_writes_the_plot_and_suggests_a_rate(tmp_path, run_cli):
    import yaml

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_experiment()))
    code, out, err = run_cli("lr-find", str(path), "--steps", "40", "--out", str(tmp_path / "o"))
    assert code == 0, err
    assert "suggested optim.lr:" in out
    [folder] = (tmp_path / "o").iterdir()
    assert sorted(p.name for p in folder.iterdir()) == ["lr_find.csv", "lr_find.png"]
    code, _, err = run_cli("lr-find", str(path), "--set", "model={family: svm}")
    assert code == 2
    assert "svm is fitted by scikit-learn and has no learning rate" in err


def test_lr_must_be_positive_or_auto():
    with pytest.raises(neuralab.NeuralabError) as caught:
        load_config(tiny_experiment(optim={"lr": "fast"}))
    assert str(caught.value) == "optim.lr: Input should be a number or 'auto', got 'fast'"
