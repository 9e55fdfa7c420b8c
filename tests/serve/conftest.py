"""A served folder with two tiny runs: a digits image classifier and a CSV regressor."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sklearn.datasets import load_digits

import neuralab
from neuralab.serve import ServeSettings, create_app
from tests.conftest import EXAMPLES, tiny_experiment


@pytest.fixture(scope="session")
def served(tmp_path_factory) -> dict[str, Path]:
    """Run directories by role, all inside one folder (`served["root"]`)."""
    root = tmp_path_factory.mktemp("served")
    digits = neuralab.train(tiny_experiment(name="digits"), out=root)
    houses = neuralab.train(
        tiny_experiment(
            name="houses",
            data={"dataset": {"csv": str(EXAMPLES / "data" / "houses.csv"), "target": "price_k"}},
        ),
        out=root,
    )
    return {"root": root, "digits": digits.path, "houses": houses.path}


@pytest.fixture
def client_for(served):
    """A test client for an app over the served folder, with settings overridden."""

    def make(**settings) -> TestClient:
        return TestClient(create_app(ServeSettings(runs_dir=served["root"], **settings)))

    return make


@pytest.fixture
def images() -> list:
    """Five raw 8x8 digit images as nested lists, as a client would send them."""
    return load_digits().images[:5].tolist()
