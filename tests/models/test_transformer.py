"""Transformer: tokens from sequence windows and image patches, positions, pooling, learning."""

from __future__ import annotations

import pytest
import torch
from pydantic import TypeAdapter, ValidationError

from neuralab.data import DataConfig, load_data
from neuralab.errors import NeuralabError
from neuralab.models import ModelConfig, Transformer
from neuralab.models.blocks import PositionalEncoding

ADAPTER = TypeAdapter(ModelConfig)
SPEC = {"family": "transformer", "d_model": 8, "num_heads": 2, "dim_feedforward": 16}


def build(input_shape, num_outputs=3, **spec) -> Transformer:
    return ADAPTER.validate_python({**SPEC, **spec}).build(
        input_shape=input_shape, num_outputs=num_outputs
    )


def test_sequences_are_length_tokens_of_channel_features():
    model = build((2, 40))  # patch_size unset: one step per token, as images get 4x4
    x = torch.randn(4, 2, 40)
    assert model.tokens(x).shape == (4, 40, 2)
    assert torch.equal(model.tokens(x)[:, 7], x[:, :, 7])
    assert model(x).shape == (4, 3)
    assert build((1, 8, 8)).tokens(torch.randn(4, 1, 8, 8)).shape == (4, 4, 16)


def test_sequences_are_cut_into_windows_of_consecutive_steps():
    model = build((2, 40), patch_size=5)
    x = torch.randn(4, 2, 40)
    tokens = model.tokens(x)
    assert tokens.shape == (4, 8, 2 * 5)
    # token 3 is steps 15-19, channel by channel
    assert torch.equal(tokens[:, 3], x[:, :, 15:20].flatten(1))
    assert torch.equal(tokens[:, 3, :5], x[:, 0, 15:20])
    assert model(x).shape == (4, 3)


def test_images_are_cut_into_patches_row_by_row():
    model = build((3, 8, 8), patch_size=4)
    x = torch.randn(4, 3, 8, 8)
    tokens = model.tokens(x)
    assert tokens.shape == (4, 4, 3 * 4 * 4)
    # token 1 is the top-right patch, all channels
    assert torch.equal(tokens[:, 1], x[:, :, 0:4, 4:8].flatten(1))
    assert model(x).shape == (4, 3)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
def test_positions_make_token_order_matter(pooling, positional):
    # Self-attention with mean pooling is blind to token order; the position codes
    # (and nothing else) break that symmetry.
    torch.manual_seed(0)
    model = build((2, 12), pooling=pooling, positional=positional, dropout=0.0).eval()
    if positional == "learned":  # start away from the small initial codes
        torch.nn.init.normal_(model.position.learned)
    x = torch.randn(3, 2, 12)
    shuffled = x[:, :, torch.randperm(12)]
    assert not torch.allclose(model(x), model(shuffled), atol=1e-4)
    if pooling == "mean":
        model.position = torch.nn.Identity()
        assert torch.allclose(model(x), model(shuffled), atol=1e-5)


def test_sinusoidal_codes_are_fixed_sines_and_cosines():
    encoding = PositionalEncoding(6, 10)
    codes = encoding(torch.zeros(1, 10, 6))[0]
    positions = torch.arange(10.0)
    assert torch.allclose(codes[:, 0], torch.sin(positions))
    assert torch.allclose(codes[:, 1], torch.cos(positions))
    assert torch.allclose(codes[:, 4], torch.sin(positions / 10000 ** (4 / 6)))
    assert list(encoding.parameters()) == []
    assert encoding.state_dict() == {}  # a function of the shape, not a weight


def test_every_layer_starts_with_its_own_attention_weights():
    model = build((2, 12), num_layers=2)
    first, second = (layer.self_attn.in_proj_weight for layer in model.encoder.layers)
    assert not torch.equal(first, second)


def test_refuses_tabular_data():
    with pytest.raises(NeuralabError, match="transformer needs image") as error:
        build((5,))
    assert error.value.problems[0].where == "model.family"


def test_patch_size_must_divide_the_image():
    with pytest.raises(NeuralabError, match="3 does not divide the image size 8x8") as error:
        build((1, 8, 8), patch_size=3)
    assert error.value.problems[0].where == "model.patch_size"
    assert "use one of 1, 2, 4, 8" in str(error.value)


def test_patch_size_must_divide_the_sequence():
    with pytest.raises(NeuralabError, match="3 does not divide the sequence length 40") as error:
        build((2, 40), patch_size=3)
    assert error.value.problems[0].where == "model.patch_size"
    assert "use one of 1, 2, 4, 5, 8, 10, 20, 40" in str(error.value)


def test_the_default_image_patch_size_is_checked_too():
    with pytest.raises(NeuralabError, match="4 does not divide the image size 6x6"):
        build((1, 6, 6))


def test_heads_must_divide_the_width():
    with pytest.raises(ValidationError, match="d_model must be divisible by num_heads"):
        ADAPTER.validate_python({**SPEC, "num_heads": 3})


def test_vit_learns_digits_well_above_chance():
    bundle = load_data(DataConfig.model_validate({"dataset": "digits"}), task=None, seed=0)
    torch.manual_seed(0)
    model = build(
        (1, 8, 8), num_outputs=10, d_model=32, num_heads=4, dim_feedforward=64, patch_size=4
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.003)
    order = torch.Generator().manual_seed(0)
    for _ in range(5):
        model.train()
        for index in torch.randperm(len(bundle.x_train), generator=order).split(64):
            loss = torch.nn.functional.cross_entropy(
                model(bundle.x_train[index]), bundle.y_train[index]
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(bundle.x_test).argmax(1) == bundle.y_test).float().mean().item()
    # chance is 0.1 on ten balanced classes; seeds 0-2 reach 0.89-0.93 in about a second
    assert accuracy >= 0.75
