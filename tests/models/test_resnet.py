"""ResNet: pre-activation blocks with identity skips, 1-D or 2-D from the data, learns digits."""

from __future__ import annotations

import pytest
import torch
from pydantic import TypeAdapter, ValidationError

import neuralab
from neuralab.config import load_config
from neuralab.errors import NeuralabError
from neuralab.models import ModelConfig, ResNet
from neuralab.models.blocks import ResidualBlock
from tests.conftest import tiny_experiment

ADAPTER = TypeAdapter(ModelConfig)
SPEC = {"family": "resnet", "stem_channels": 4, "stages": [4, 8, 16], "blocks_per_stage": 1}


def build(input_shape, num_outputs=3, **spec) -> ResNet:
    return ADAPTER.validate_python({**SPEC, **spec}).build(
        input_shape=input_shape, num_outputs=num_outputs
    )


def blocks(model: ResNet) -> list[ResidualBlock]:
    return list(model.stages)


def test_images_use_2d_convolutions_and_halve_the_size_per_stage():
    model = build((3, 8, 8))
    assert isinstance(model.stem, torch.nn.Conv2d)
    assert [b.conv1.stride for b in blocks(model)] == [(1, 1), (2, 2), (2, 2)]
    assert model.stages(model.stem(torch.randn(2, 3, 8, 8))).shape == (2, 16, 2, 2)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 3)


def test_sequences_use_1d_convolutions():
    model = build((2, 40))
    assert isinstance(model.stem, torch.nn.Conv1d)
    assert model.stages(model.stem(torch.randn(2, 2, 40))).shape == (2, 16, 10)
    assert model.forward_features(torch.randn(2, 2, 40)).shape == (2, 16)
    assert model(torch.randn(2, 2, 40)).shape == (2, 3)


def test_downsampling_stops_below_size_2():
    # length 3 -> 2 -> 1, then the fourth stage keeps length 1
    model = build((1, 3), stages=[4, 4, 4, 4])
    assert [b.conv1.stride for b in blocks(model)] == [(1,), (2,), (2,), (1,)]
    assert model(torch.randn(2, 1, 3)).shape == (2, 3)


def test_skip_is_identity_unless_shape_changes():
    model = build((1, 8, 8), stages=[4, 4, 8], blocks_per_stage=2)
    projections = [b.projection is not None for b in blocks(model)]
    # stage 1 keeps 4 channels at stride 1; stages 2 and 3 open with stride 2
    assert projections == [False, False, True, False, True, False]


def test_block_with_a_zero_residual_branch_is_the_identity():
    # The point of pre-activation: nothing but the sum touches the skip path.
    block = ResidualBlock(2, 4, 4).eval()
    torch.nn.init.zeros_(block.conv2.weight)
    x = torch.randn(2, 4, 5, 5)
    assert torch.equal(block(x), x)


def test_refuses_tabular_data():
    with pytest.raises(NeuralabError, match="resnet needs image") as error:
        build((2,))
    assert error.value.problems[0].where == "model.family"


def test_even_kernel_size_is_rejected():
    with pytest.raises(ValidationError, match="must be odd"):
        ADAPTER.validate_python({**SPEC, "kernel_size": 4})


def test_config_errors_name_the_key():
    spec = {"family": "resnet", "kernel_size": 4, "stages": [16, 0]}
    with pytest.raises(NeuralabError) as error:
        load_config({"data": {"dataset": "digits"}, "model": spec})
    where = {problem.where for problem in error.value.problems}
    assert where == {"model.kernel_size", "model.stages.1"}


def test_learns_digits_well_above_chance(tmp_path):
    model = {"family": "resnet", "stem_channels": 8, "stages": [8, 16], "blocks_per_stage": 1}
    experiment = tiny_experiment(
        model=model, train={"epochs": 4, "batch_size": 64}, optim={"lr": 0.01}
    )
    run = neuralab.train(experiment, out=tmp_path)
    # chance is 0.1 on ten balanced classes; seeds 0-2 reach 0.95-0.96 in about a second
    assert run.test_metrics["accuracy"] >= 0.85
