"""Any saved run loads back from its card alone (no config file) and predicts consistently."""

from __future__ import annotations

import numpy as np
import pytest

import neuralab
from tests.conftest import TINY_VIT

CASES = {
    "mlp": ({"family": "mlp", "hidden_sizes": [8]}, "digits"),
    "cnn": ({"family": "cnn", "channels": [4]}, "digits"),
    "resnet": (
        {"family": "resnet", "stem_channels": 4, "stages": [4], "blocks_per_stage": 1},
        "digits",
    ),
    "rnn": ({"family": "rnn", "cell": "gru", "hidden_size": 8}, "sine"),
    "transformer": (TINY_VIT, "digits"),
    "autoencoder": ({"family": "autoencoder", "hidden_sizes": [8]}, "digits"),
}


# Token families load from their card too: tests/models/test_seq2seq.py and test_charlm.py;
# the GAN, which generates instead of predicting, in tests/models/test_gan.py; a user's
# own network (which needs trust_code) in tests/models/test_module.py.
LOADED_ELSEWHERE = {"seq2seq", "charlm", "gan", "module"}


def test_every_family_has_a_load_case():
    from neuralab.models import FAMILIES

    registered = {cls.model_fields["family"].default for cls in FAMILIES}
    assert registered == set(CASES) | LOADED_ELSEWHERE


@pytest.mark.parametrize("family", sorted(CASES))
def test_load_rebuilds_the_model_without_the_config_file(tmp_path, family):
    spec, dataset = CASES[family]
    run = neuralab.train(
        {"name": family, "data": {"dataset": dataset}, "model": spec, "train": {"epochs": 1}},
        out=tmp_path,
    )
    (run.path / "config.yaml").unlink()  # the card alone must be enough
    predictor = neuralab.load(run.path)
    shape = tuple(run.card["data"]["input_shape"])
    x = np.random.default_rng(0).normal(size=(4, *shape)).astype(np.float32)
    prediction = predictor.predict(x)
    assert len(prediction) == 4
    again = neuralab.load(run.path).predict(x)
    if prediction.labels is not None:
        np.testing.assert_array_equal(prediction.probabilities, again.probabilities)
    else:
        np.testing.assert_array_equal(prediction.values, again.values)
