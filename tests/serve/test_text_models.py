"""Serving the generative and text families: a character-level language model and a GAN
generate through `/generate`, a sequence-to-sequence model translates through `/predict`."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

import neuralab
from neuralab.serve import ServeSettings, create_app


@pytest.fixture(scope="module")
def text_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    lm = neuralab.train(
        {
            "name": "lm",
            "data": {"dataset": {"name": "pydoc", "window": 32, "max_chars": 4000}},
            "model": {"family": "charlm", "body": "gru", "hidden_size": 32, "num_layers": 1},
            "train": {"epochs": 1, "batch_size": 64},
        },
        out=root,
    )
    reverse = neuralab.train(
        {
            "name": "reverse",
            "data": {"dataset": {"name": "reverse", "num_samples": 300, "max_length": 6}},
            "model": {"family": "seq2seq", "hidden_size": 32, "embedding_size": 16},
            "train": {"epochs": 1, "batch_size": 64},
        },
        out=root,
    )
    gan = neuralab.train(
        {
            "name": "gan",
            "data": {"dataset": "digits"},
            "model": {"family": "gan", "latent_size": 8, "channels": [16, 8]},
            "train": {"epochs": 1, "batch_size": 128},
        },
        out=root,
    )
    client = TestClient(create_app(ServeSettings(runs_dir=root)))
    return client, lm.path, reverse.path, gan.path


def test_language_model_generates_seeded_text(text_runs):
    client, lm, _, _ = text_runs
    body = {"prompt": "The ", "num_samples": 2, "max_tokens": 20, "seed": 5}
    response = client.post(f"/v1/models/{lm.name}/generate", json=body)
    assert response.status_code == 200
    samples = response.json()["samples"]
    assert len(samples) == 2
    assert all(s.startswith("The ") and len(s) == 24 for s in samples)
    assert samples[0] != samples[1]  # seeds 5 and 6
    again = client.post(f"/v1/models/{lm.name}/generate", json=body).json()["samples"]
    assert again == samples
    expected = neuralab.load(lm).generate_text("The ", 20, temperature=0.8, top_k=None, seed=5)
    assert samples[0] == expected
    assert client.get(f"/v1/models/{lm.name}").json()["generates"] is True


def test_language_model_errors_are_4xx(text_runs):
    client, lm, reverse, _ = text_runs
    empty = client.post(f"/v1/models/{lm.name}/generate", json={"prompt": ""})
    assert empty.status_code == 422
    assert empty.json()["error"]["what"] == "empty"
    predict = client.post(f"/v1/models/{lm.name}/predict", json={"inputs": [[1.0]]})
    assert predict.status_code == 422
    assert client.post(f"/v1/models/{reverse.name}/generate", json={}).status_code == 400


def test_seq2seq_translates_strings(text_runs):
    client, _, reverse, _ = text_runs
    sources = ["abc", "jihgf"]
    response = client.post(f"/v1/models/{reverse.name}/predict", json={"inputs": sources})
    assert response.status_code == 200
    texts = [row["text"] for row in response.json()["predictions"]]
    assert texts == neuralab.load(reverse).predict(sources).texts
    numbers = client.post(f"/v1/models/{reverse.name}/predict", json={"inputs": [[1, 2]]})
    assert numbers.status_code == 422
    assert numbers.json()["error"]["where"] == "inputs[0]"


def test_gan_draws_seeded_samples_in_the_data_shape(text_runs):
    client, _, _, gan = text_runs
    body = {"num_samples": 3, "seed": 2}
    response = client.post(f"/v1/models/{gan.name}/generate", json=body)
    assert response.status_code == 200
    samples = np.array(response.json()["samples"])
    assert samples.shape == (3, 1, 8, 8)
    np.testing.assert_allclose(samples, neuralab.load(gan).samples(3, seed=2), rtol=1e-6)
    assert client.get(f"/v1/models/{gan.name}").json()["generates"] is True
