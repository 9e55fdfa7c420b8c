"""Transfer: init_from (heads rebuilt, mismatches reported), freezing, unfreezing and
per-prefix learning rates."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

import neuralab
from neuralab.errors import NeuralabError
from neuralab.models import FAMILIES, MLPConfig
from neuralab.models.network import NetworkConfig
from neuralab.transfer import parameter_groups
from tests.conftest import tiny_experiment


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A tiny MLP trained on the digits 0-4."""
    out = tmp_path_factory.mktemp("source")
    experiment = tiny_experiment(data={"dataset": "digits", "classes": [0, 1, 2, 3, 4]})
    return neuralab.train(experiment, out=out).path


def _weights(run_dir) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "model.safetensors"))


def test_other_classes_rebuild_the_head_and_the_body_loads(source, tmp_path):
    experiment = tiny_experiment(
        data={"dataset": "digits", "classes": [5, 6, 7, 8, 9]},
        model={"family": "mlp", "hidden_sizes": [16], "init_from": str(source)},
        train={"epochs": 1, "batch_size": 128},
    )
    run = neuralab.train(experiment, out=tmp_path)
    init = run.card.transfer.init_from
    assert init.loaded == ["features.1.weight", "features.1.bias"]
    assert init.rebuilt == ["head.bias", "head.weight"]
    assert init.skipped == []
    assert list(run.card.data.label_names) == ["5", "6", "7", "8", "9"]


def test_a_head_of_another_shape_is_rebuilt(source, tmp_path):
    experiment = tiny_experiment(  # all ten digits: the head grows from 5 to 10 outputs
        model={"family": "mlp", "hidden_sizes": [16], "init_from": str(source)},
    )
    run = neuralab.train(experiment, out=tmp_path)
    assert run.card.transfer.init_from.rebuilt == ["head.bias", "head.weight"]
    assert _weights(run.path)["head.weight"].shape == (10, 16)


def test_the_same_classes_load_the_head_too(source, tmp_path):
    experiment = tiny_experiment(
        data={"dataset": "digits", "classes": [0, 1, 2, 3, 4]},
        model={"family": "mlp", "hidden_sizes": [16], "init_from": str(source), "freeze": ["head"]},
    )
    run = neuralab.train(experiment, out=tmp_path)
    assert run.card.transfer.init_from.rebuilt == []
    assert torch.equal(_weights(run.path)["head.weight"], _weights(source)["head.weight"])


def test_mismatched_layers_are_errors_naming_each_layer(source, tmp_path):
    experiment = tiny_experiment(
        model={"family": "mlp", "hidden_sizes": [32], "init_from": str(source)}
    )
    with pytest.raises(NeuralabError) as error:
        neuralab.train(experiment, out=tmp_path)
    lines = error.value.lines()
    assert lines[0].startswith("model.init_from: layer features.1.weight: shape [16, 64]")
    assert "[32, 64] here" in lines[0]
    assert "model.init_strict: false" in lines[0]
    assert any("features.1.bias" in line for line in lines)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_init_strict_false_loads_what_matches_and_reports_the_rest(source, tmp_path):
    experiment = tiny_experiment(
        model={
            "family": "mlp",
            "hidden_sizes": [16, 8],
            "init_from": str(source),
            "init_strict": False,
        }
    )
    run = neuralab.train(experiment, out=tmp_path)
    init = run.card.transfer.init_from
    assert init.loaded == ["features.1.weight", "features.1.bias"]
    assert init.skipped == [
        "features.4.weight: not in the source run",
        "features.4.bias: not in the source run",
    ]
    assert init.unused == []


def test_a_glob_picks_the_newest_matching_run(source, tmp_path, monkeypatch):
    monkeypatch.chdir(source.parent)
    experiment = tiny_experiment(
        model={"family": "mlp", "hidden_sizes": [16], "init_from": "tiny-*"},
        train={"epochs": 1, "batch_size": 128},
    )
    run = neuralab.train(experiment, out=tmp_path)
    assert run.card.transfer.init_from.run == source.name


def test_a_missing_run_is_an_error(tmp_path):
    experiment = tiny_experiment(
        model={"family": "mlp", "hidden_sizes": [16], "init_from": str(tmp_path / "nope")}
    )
    with pytest.raises(NeuralabError, match=r"model.init_from: '.*nope' is not a run directory"):
        neuralab.train(experiment, out=tmp_path)


def test_frozen_parameters_are_unchanged_after_training(source, tmp_path):
    experiment = tiny_experiment(
        data={"dataset": "digits", "classes": [5, 6, 7, 8, 9]},
        model={
            "family": "mlp",
            "hidden_sizes": [16],
            "init_from": str(source),
            "freeze": ["features"],
        },
        optim={"name": "adam", "lr": 0.01, "weight_decay": 0.01},
        train={"epochs": 3, "batch_size": 64},
    )
    run = neuralab.train(experiment, out=tmp_path)
    before, after = _weights(source), _weights(run.path)
    assert torch.equal(after["features.1.weight"], before["features.1.weight"])
    assert torch.equal(after["features.1.bias"], before["features.1.bias"])
    assert run.card.transfer.frozen == ["features.1.weight", "features.1.bias"]
    assert run.card.transfer.trainable_parameters == 16 * 5 + 5
    assert run.card.metrics["test"]["accuracy"] > 0.5  # the head learned on top


def test_unfreeze_at_epoch_trains_the_frozen_layers_from_then_on(source, tmp_path):
    def body_after(epochs: int):
        experiment = tiny_experiment(
            model={
                "family": "mlp",
                "hidden_sizes": [16],
                "init_from": str(source),
                "freeze": ["features.1"],
            },
            train={"epochs": epochs, "batch_size": 128, "unfreeze_at_epoch": 2},
        )
        return _weights(neuralab.train(experiment, out=tmp_path).path)["features.1.weight"]

    assert torch.equal(body_after(1), _weights(source)["features.1.weight"])
    assert not torch.equal(body_after(2), _weights(source)["features.1.weight"])


def test_freeze_names_an_existing_prefix(tmp_path):
    experiment = tiny_experiment(model={"family": "mlp", "hidden_sizes": [16], "freeze": ["feat"]})
    with pytest.raises(NeuralabError, match="model.freeze: 'feat' names no parameter") as error:
        neuralab.train(experiment, out=tmp_path)
    assert "did you mean 'features'?" in str(error.value)


def test_unfreeze_without_freeze_is_an_error(tmp_path):
    experiment = tiny_experiment(train={"epochs": 2, "unfreeze_at_epoch": 2})
    with pytest.raises(NeuralabError, match="train.unfreeze_at_epoch"):
        neuralab.train(experiment, out=tmp_path)


def test_param_groups_scale_the_rate_by_the_longest_prefix():
    model = MLPConfig(hidden_sizes=(8, 8)).build(input_shape=(4,), num_outputs=2)
    groups = parameter_groups(model, 0.1, {"features": 0.5, "features.4": 0.1})
    rates = {
        name: group["lr"]
        for group in groups
        for name, p in model.named_parameters()
        if any(p is q for q in group["params"])
    }
    assert rates == pytest.approx(
        {
            "features.1.weight": 0.05,
            "features.1.bias": 0.05,
            "features.4.weight": 0.01,
            "features.4.bias": 0.01,
            "head.weight": 0.1,
            "head.bias": 0.1,
        }
    )


def test_param_groups_reach_the_optimizer_and_the_card(tmp_path):
    experiment = tiny_experiment(optim={"name": "sgd", "lr": 0.1, "param_groups": {"head": 0.0}})
    with pytest.raises(NeuralabError, match=r"optim.param_groups.head"):
        neuralab.train(experiment, out=tmp_path)
    experiment["optim"]["param_groups"] = {"featurs": 0.5}
    with pytest.raises(NeuralabError, match="optim.param_groups: 'featurs' names no parameter"):
        neuralab.train(experiment, out=tmp_path)
    experiment["optim"]["param_groups"] = {"features": 1e-9}
    run = neuralab.train(experiment, out=tmp_path)
    assert run.card.transfer.lr_factors == {"features": 1e-9}


def test_every_network_family_takes_init_from_and_freeze():
    assert FAMILIES  # guard: the check below is not over an empty registry
    missing = [cls.__name__ for cls in FAMILIES if not issubclass(cls, NetworkConfig)]
    assert missing == [], "derive these from models.network.NetworkConfig"
