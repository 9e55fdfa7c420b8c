"""Every registered family: builds tiny, runs forward and backward, and can learn."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pydantic import TypeAdapter

from neuralab.errors import NeuralabError
from neuralab.models import FAMILIES, ModelConfig
from tests.conftest import TINY_VIT

# the user's own network of `family: module`, in a file of its own
USER_NETWORK = f"{Path(__file__).with_name('user_network.py')}:TinyNet"

# family -> (tiny spec, input shape, pinned parameter count)
TINY = {
    "mlp": ({"family": "mlp", "hidden_sizes": [8]}, (1, 8, 8), 64 * 8 + 8 + 8 * 3 + 3),
    "cnn": (
        {"family": "cnn", "channels": [4, 8]},
        (1, 8, 8),
        # conv 1->4 (no bias, batch norm), conv 4->8, head 8*2*2 -> 3
        1 * 4 * 9 + 2 * 4 + 4 * 8 * 9 + 2 * 8 + 8 * 2 * 2 * 3 + 3,
    ),
    "resnet": (
        {"family": "resnet", "stem_channels": 4, "stages": [4, 8], "blocks_per_stage": 1},
        (1, 8, 8),
        # stem conv 1->4 (no bias); block 4->4: BN, conv, BN, conv, identity skip;
        # block 4->8 stride 2: BN, conv 4->8, BN, conv 8->8, 1x1 projection 4->8;
        # final BN 8; head 8 -> 3
        1 * 4 * 9
        + (2 * 4 + 4 * 4 * 9 + 2 * 4 + 4 * 4 * 9)
        + (2 * 4 + 4 * 8 * 9 + 2 * 8 + 8 * 8 * 9 + 4 * 8)
        + 2 * 8
        + 8 * 3
        + 3,
    ),
    "rnn": (
        {"family": "rnn", "cell": "lstm", "hidden_size": 8},
        (1, 8, 8),  # read as 8 rows (steps) of 8 pixels
        # LSTM: 4 gates x (input weights 8x8 + recurrent 8x8 + two biases of 8); head 8 -> 3
        4 * (8 * 8 + 8 * 8 + 8 + 8) + 8 * 3 + 3,
    ),
    "transformer": (
        {**TINY_VIT, "dropout": 0.0},
        (1, 8, 8),  # four 4x4 patches of 16 pixels
        # patch embedding 16 -> 8; [CLS] token 8; sinusoidal positions have no parameters;
        # layer: q/k/v 3x(8x8 + 8), output 8x8 + 8, feed-forward 8->16->8, two LayerNorms;
        # final LayerNorm; head 8 -> 3
        (16 * 8 + 8)
        + 8
        + (3 * (8 * 8 + 8) + (8 * 8 + 8) + (8 * 16 + 16) + (16 * 8 + 8) + 2 * 2 * 8)
        + 2 * 8
        + (8 * 3 + 3),
    ),
    "autoencoder": (
        {"family": "autoencoder", "hidden_sizes": [8], "latent_size": 2},
        (1, 8, 8),
        # encoder 64 -> 8 -> 2, decoder 2 -> 8 -> 64
        (64 * 8 + 8) + (8 * 2 + 2) + (2 * 8 + 8) + (8 * 64 + 64),
    ),
    "seq2seq": (
        {"family": "seq2seq", "embedding_size": 4, "hidden_size": 8},
        (6,),  # six token ids; the vocabulary is the 3 outputs
        # embedding 3x4; encoder GRU 3 gates x (4x8 + 8x8 + 2 biases of 8); decoder GRU cell
        # reading embedding + context (12) likewise; attention score 8x8 (no bias);
        # combine 16 -> 8; head 8 -> 3
        3 * 4
        + 3 * (4 * 8 + 8 * 8 + 8 + 8)
        + 3 * (12 * 8 + 8 * 8 + 8 + 8)
        + 8 * 8
        + (16 * 8 + 8)
        + (8 * 3 + 3),
    ),
    "charlm": (
        {"family": "charlm", "body": "gru", "embedding_size": 4, "hidden_size": 8, "num_layers": 1},
        (6,),
        # embedding 3x4; GRU 3 gates x (4x8 + 8x8 + 2 biases of 8); head 8 -> 3
        3 * 4 + 3 * (4 * 8 + 8 * 8 + 8 + 8) + (8 * 3 + 3),
    ),
    "gan": (
        {"family": "gan", "latent_size": 4, "channels": [8, 4]},
        (1, 8, 8),
        # generator: linear 4 -> 8x2x2, BN 8, transposed conv 8->4 (no bias), BN 4,
        # transposed conv 4->1 (bias); discriminator: conv 1->4 (bias), conv 4->8 (no
        # bias), BN 8, linear (8x2x2 + the minibatch spread feature) -> 1. All kernels 4
        # (4x4 = 16 taps).
        (4 * 32 + 32)
        + 2 * 8
        + 8 * 4 * 16
        + 2 * 4
        + (4 * 1 * 16 + 1)
        + (1 * 4 * 16 + 4)
        + 4 * 8 * 16
        + 2 * 8
        + (33 + 1),
    ),
    "module": (
        {"family": "module", "path": USER_NETWORK, "args": {"hidden": 8}},
        (1, 8, 8),
        # linear 64 -> 8, linear 8 -> 3
        64 * 8 + 8 + 8 * 3 + 3,
    ),
}
# Families whose output is a reconstruction shaped like the input, not one score per class.
RECONSTRUCTS = {"autoencoder"}
# Families that read token ids and give logits per position (B, T, vocab).
READS_TOKENS = {"seq2seq", "charlm"}
# The GAN's output is the discriminator's (real, generated) logit pair per sample.
OUTPUT_SHAPES = {"gan": (2,)}
ADAPTER = TypeAdapter(ModelConfig)


def build(family: str, input_shape=None, num_outputs=3):
    spec, shape, _ = TINY[family]
    return ADAPTER.validate_python(spec).build(
        input_shape=input_shape or shape, num_outputs=num_outputs
    )


def test_every_family_has_a_tiny_case():
    registered = {cls.model_fields["family"].default for cls in FAMILIES}
    assert registered  # guard: the registry is not empty
    assert registered == set(TINY)


@pytest.mark.parametrize("family", sorted(TINY))
def test_forward_backward_every_parameter_gets_a_gradient(family):
    torch.manual_seed(0)
    model = build(family)
    shape = TINY[family][1]
    # token ids 1 and 2: every source holds a non-padding token to attend to
    x = torch.randint(1, 3, (5, *shape)) if family in READS_TOKENS else torch.randn(5, *shape)
    out = model(x)
    if family in READS_TOKENS:
        assert out.shape == (5, *shape, 3)
    elif family in OUTPUT_SHAPES:
        assert out.shape == (5, *OUTPUT_SHAPES[family])
    else:
        assert out.shape == ((5, *shape) if family in RECONSTRUCTS else (5, 3))
    out.sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("family", sorted(TINY))
def test_pinned_parameter_count(family):
    assert sum(p.numel() for p in build(family).parameters()) == TINY[family][2]


@pytest.mark.parametrize(
    "family", sorted(set(TINY) - RECONSTRUCTS - READS_TOKENS - set(OUTPUT_SHAPES))
)
def test_overfits_one_batch(family):
    torch.manual_seed(0)
    model = build(family)
    x, y = torch.randn(16, *TINY[family][1]), torch.randint(0, 3, (16,))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    first = None
    for _ in range(150):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05 * first
    model.eval()
    assert (model(x).argmax(1) == y).all()


def test_cnn_uses_1d_convolutions_for_sequences():
    model = build("cnn", input_shape=(2, 40))
    assert isinstance(model.features[0][0], torch.nn.Conv1d)
    assert model(torch.randn(3, 2, 40)).shape == (3, 3)


def test_cnn_refuses_tabular_data():
    with pytest.raises(NeuralabError, match="cnn needs image"):
        build("cnn", input_shape=(2,))


@pytest.mark.parametrize(
    ("activation", "init", "std"),
    [
        ("relu", "auto", (2 / 64) ** 0.5),  # He: sqrt(2 / fan_in)
        ("tanh", "auto", (5 / 3) * (2 / (64 + 8)) ** 0.5),  # Xavier with tanh gain
    ],
)
def test_default_init_follows_the_activation(activation, init, std):
    torch.manual_seed(0)
    spec = {"family": "mlp", "hidden_sizes": [4096], "activation": activation, "init": init}
    model = ADAPTER.validate_python(spec).build(input_shape=(64,), num_outputs=8)
    weight = model.features[1].weight
    assert weight.std().item() == pytest.approx(
        std if activation == "relu" else (5 / 3) * (2 / (64 + 4096)) ** 0.5, rel=0.05
    )
    assert model.features[1].bias.abs().sum() == 0


class SquaredOutput:
    """A loss any family's output has: the mean square of its elements."""

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return output.float().pow(2).mean()


@pytest.mark.parametrize("family", sorted(TINY))
def test_every_family_trains_through_the_step_it_chooses(family):
    """The family's own step (supervised, or a GAN's adversarial one) runs one update on
    its tiny model: a finite loss, and weights that moved."""
    torch.manual_seed(0)
    config = ADAPTER.validate_python(TINY[family][0])
    model = config.build(input_shape=TINY[family][1], num_outputs=3)
    shape = TINY[family][1]
    x = torch.randint(1, 3, (5, *shape)) if family in READS_TOKENS else torch.randn(5, *shape)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    _, loss = config.step()(model, SquaredOutput(), optimizer, x, x)
    assert torch.isfinite(loss)
    moved = [not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)]
    assert all(moved), family
