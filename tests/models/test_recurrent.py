"""Recurrent networks: how inputs become time steps, the readouts, and that gated cells
solve the adding problem over 50 steps where a plain RNN cannot."""

from __future__ import annotations

import pytest
import torch
from pydantic import TypeAdapter

from neuralab.data import DataConfig, load_data
from neuralab.errors import NeuralabError
from neuralab.models import ModelConfig, RecurrentNetwork

ADAPTER = TypeAdapter(ModelConfig)


def build(input_shape, num_outputs=3, **spec) -> RecurrentNetwork:
    spec = {"family": "rnn", "hidden_size": 8, **spec}
    return ADAPTER.validate_python(spec).build(input_shape=input_shape, num_outputs=num_outputs)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_sequences_are_read_as_length_steps_of_channel_features(cell):
    model = build((2, 40), cell=cell)
    x = torch.randn(4, 2, 40)
    assert model.recurrent.input_size == 2
    assert torch.equal(model.steps(x)[:, 7], x[:, :, 7])
    assert model(x).shape == (4, 3)


def test_images_are_read_row_by_row():
    model = build((3, 8, 5))
    x = torch.randn(4, 3, 8, 5)
    steps = model.steps(x)
    assert steps.shape == (4, 8, 15)  # H steps of C * W features
    assert torch.equal(steps[:, 2], x[:, :, 2, :].flatten(1))
    assert model(x).shape == (4, 3)


def test_last_readout_joins_both_directions_final_states():
    model = build((2, 10), cell="gru", bidirectional=True, num_layers=2, dropout=0.2).eval()
    x = torch.randn(4, 2, 10)
    outputs, _ = model.recurrent(model.steps(x))
    features = model.forward_features(x)
    # forward direction ends at the last step, backward at the first
    assert torch.allclose(features, torch.cat([outputs[:, -1, :8], outputs[:, 0, 8:]], dim=1))
    assert model(x).shape == (4, 3)


def test_mean_readout_averages_every_step():
    model = build((2, 10), readout="mean").eval()
    x = torch.randn(4, 2, 10)
    outputs, _ = model.recurrent(model.steps(x))
    assert torch.allclose(model.forward_features(x), outputs.mean(dim=1))


def test_lstm_starts_remembering_with_orthogonal_recurrent_weights():
    model = build((2, 10), cell="lstm")
    bias = model.recurrent.bias_ih_l0 + model.recurrent.bias_hh_l0
    assert torch.equal(bias[8:16], torch.ones(8))  # forget gate (Gers et al. 2000)
    assert bias[:8].abs().sum() == 0
    for gate in model.recurrent.weight_hh_l0.split(8):
        assert torch.allclose(gate @ gate.T, torch.eye(8), atol=1e-5)


def test_refuses_tabular_data():
    with pytest.raises(NeuralabError, match="rnn needs image") as error:
        build((5,))
    assert error.value.problems[0].where == "model.family"


def train_r2(bundle, *, epochs: int, **spec) -> float:
    """R^2 on the test split after a plain Adam loop (seeded); 0 is the mean's score."""
    torch.manual_seed(0)
    model = build(bundle.meta.input_shape, num_outputs=1, **spec)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    order = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        for index in torch.randperm(len(bundle.x_train), generator=order).split(32):
            loss = torch.nn.functional.mse_loss(model(bundle.x_train[index]), bundle.y_train[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        error = model(bundle.x_test) - bundle.y_test
    spread = bundle.y_test - bundle.y_test.mean()
    return 1 - error.pow(2).sum().item() / spread.pow(2).sum().item()


@pytest.fixture(scope="module")
def adding():
    # 420 training sequences of 50 steps: the first marked value must be held 25+ steps.
    dataset = {"name": "adding", "num_samples": 600, "length": 50}
    return load_data(DataConfig.model_validate({"dataset": dataset}), task=None, seed=0)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gated_cells_solve_the_adding_problem(adding, cell):
    # 280 steps. Seeds 0-4 give R^2 0.87-0.99 (lstm) and 0.98-1.0 (gru).
    assert train_r2(adding, epochs=20, cell=cell, hidden_size=32) > 0.5


def test_plain_rnn_stays_at_the_variance_baseline_on_the_adding_problem(adding):
    # Same budget; seeds 0-4 give R^2 -0.4 to -0.1: it fits noise, never the two values.
    assert train_r2(adding, epochs=20, cell="rnn", hidden_size=32) < 0.2


def test_forecasts_a_sine():
    dataset = {"name": "sine", "num_samples": 400, "window": 16}
    bundle = load_data(DataConfig.model_validate({"dataset": dataset}), task=None, seed=0)
    assert train_r2(bundle, epochs=5, cell="gru", hidden_size=16) > 0.9
