"""Any saved run loads back from its card alone (no config file) as the model training
produced: the same outputs, and the same test metrics as its card."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import neuralab
from neuralab.train import Callback, TrainState
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


class KeepTrainedModel(Callback):
    """Keeps a copy of the model as training left it: what the run's card measured."""

    def on_fit_end(self, state: TrainState) -> None:
        self.model = copy.deepcopy(state.model).cpu().eval()


@pytest.mark.parametrize("family", sorted(CASES))
def test_load_rebuilds_the_trained_model_without_the_config_file(tmp_path, family):
    spec, dataset = CASES[family]
    trained = KeepTrainedModel()
    run = neuralab.train(
        {"name": family, "data": {"dataset": dataset}, "model": spec, "train": {"epochs": 1}},
        out=tmp_path,
        callbacks=[trained],
    )
    # the loaded weights score the test split exactly as the trained model did
    recomputed = neuralab.evaluate_run(run.path)
    assert recomputed == pytest.approx(run.test_metrics, rel=1e-6, abs=1e-9)

    (run.path / "config.yaml").unlink()  # the card alone must be enough
    predictor = neuralab.load(run.path)
    shape = run.card.data.input_shape
    x = np.random.default_rng(0).normal(size=(4, *shape)).astype(np.float32)
    with torch.no_grad():
        expected = trained.model(predictor.meta.scale_inputs(x))
    torch.testing.assert_close(predictor.outputs(x), expected, rtol=0, atol=1e-6)
    prediction = predictor.predict(x)
    assert len(prediction) == 4
    if prediction.labels is not None:
        names = run.card.data.label_names
        assert prediction.labels == [names[i] for i in expected.argmax(dim=1).tolist()]
