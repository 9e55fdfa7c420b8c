"""The model API: listing, prediction equal to `neuralab.load`, and 4xx JSON for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

import neuralab
from neuralab.runs import Predictor
from neuralab.serve import ServeSettings, create_app
from neuralab.serve.schemas import MAX_SAMPLES


def test_lists_models_with_their_input_spec(client_for, served):
    response = client_for().get("/v1/models")
    assert response.status_code == 200
    models = {m["name"]: m for m in response.json()["models"]}
    assert set(models) == {served["digits"].name, served["houses"].name}
    digits = models[served["digits"].name]
    assert (digits["family"], digits["task"]) == ("mlp", "classification")
    assert digits["input"]["shape"] == [1, 8, 8]
    assert digits["input"]["labels"] == [str(i) for i in range(10)]
    houses = models[served["houses"].name]["input"]
    assert [f["name"] for f in houses["features"]][-1] == "district"
    assert "test" in digits["metrics"]


def test_predict_equals_loaded_model(client_for, served, images):
    name = served["digits"].name
    response = client_for().post(f"/v1/models/{name}/predict", json={"inputs": images})
    assert response.status_code == 200
    rows = response.json()["predictions"]
    expected = neuralab.load(served["digits"]).predict(np.array(images))
    assert [row["label"] for row in rows] == expected.labels
    probabilities = np.array([list(row["probabilities"].values()) for row in rows])
    np.testing.assert_allclose(probabilities, expected.probabilities, rtol=1e-6)
    assert list(rows[0]["probabilities"]) == [str(i) for i in range(10)]


def test_flat_samples_are_accepted(client_for, served, images):
    name = served["digits"].name
    flat = np.array(images).reshape(5, 64).tolist()
    nested = client_for().post(f"/v1/models/{name}/predict", json={"inputs": images}).json()
    assert client_for().post(f"/v1/models/{name}/predict", json={"inputs": flat}).json() == nested


def test_csv_model_takes_columns_by_name(client_for, served):
    name = served["houses"].name
    sample = {"area_m2": 120, "rooms": 4, "age_years": 10, "distance_km": 2.5}
    sample["district"] = "harbour"
    response = client_for().post(f"/v1/models/{name}/predict", json={"inputs": [sample]})
    assert response.status_code == 200
    predictor = Predictor.load(served["houses"])
    encoded = np.array([[120, 4, 10, 2.5, *[c == "harbour" for c in _districts(predictor)]]])
    expected = predictor.predict(encoded.astype(np.float32)).values
    assert response.json()["predictions"][0]["value"] == pytest.approx(float(expected[0, 0]))


def _districts(predictor: Predictor) -> tuple[str, ...]:
    return predictor.meta.features[-1].categories


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"inputs": [[1.0, 2.0]]}, "inputs"),  # wrong sample size
        ({"inputs": [[1.0] * 64, [1.0] * 63]}, "inputs"),  # ragged
        ({"inputs": [["a"] * 64]}, "inputs"),  # not numbers
        ({"inputs": []}, "inputs"),
        ({"inputs": [[0.0] * 64] * (MAX_SAMPLES + 1)}, "inputs"),
        ({"samples": [[0.0] * 64]}, "inputs"),  # the key is named wrong
        ({"inputs": [{"pixel": 1}]}, "inputs"),  # columns for an image model
    ],
)
def test_bad_inputs_are_422_naming_the_problem(client_for, served, body, where):
    response = client_for().post(f"/v1/models/{served['digits'].name}/predict", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["where"].startswith(where)


def test_non_finite_and_non_json_bodies_are_422(client_for, served):
    url = f"/v1/models/{served['digits'].name}/predict"
    client = client_for()
    nan = client.post(url, content=json.dumps({"inputs": [[float("nan")] * 64]}))
    assert nan.status_code == 422
    broken = client.post(url, content=b"{not json")
    assert broken.status_code == 422
    assert broken.json()["error"]["where"] == "body"


def test_missing_column_is_named(client_for, served):
    response = client_for().post(
        f"/v1/models/{served['houses'].name}/predict", json={"inputs": [{"area_m2": 1}]}
    )
    assert response.status_code == 422
    assert "rooms" in response.json()["error"]["what"]


def test_unknown_model_is_404_json(client_for):
    response = client_for().get("/v1/models/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["what"] == "no model named 'nothing-here'"


@pytest.mark.parametrize(
    "name", ["..", "%2e%2e", "..%2F..%2Fetc", "%2Fetc", "http:%2F%2Fexample.com%2Fmodel"]
)
def test_names_cannot_leave_the_served_folder(client_for, name):
    response = client_for().get(f"/v1/models/{name}")
    assert response.status_code == 404
    assert "error" in response.json()


def test_unfinished_and_outside_runs_are_not_served(client_for, served, tmp_path):
    partial = served["root"] / ".digits-20990101-000000.partial"
    partial.mkdir()
    (partial / "card.json").write_text((served["digits"] / "card.json").read_text())
    client = client_for()
    assert client.get(f"/v1/models/{partial.name}").status_code == 404
    assert partial.name not in {m["name"] for m in client.get("/v1/models").json()["models"]}


def test_generate_refuses_a_model_that_does_not_generate(client_for, served):
    response = client_for().post(f"/v1/models/{served['digits'].name}/generate", json={})
    assert response.status_code == 400
    assert "does not generate" in response.json()["error"]["what"]


def test_generate_options_are_validated(client_for, served):
    body = {"num_samples": 0}
    response = client_for().post(f"/v1/models/{served['digits'].name}/generate", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["where"] == "num_samples"


def test_healthz_and_unknown_routes(client_for):
    client = client_for()
    assert client.get("/healthz").json() == {"status": "ok", "models": 2}
    missing = client.get("/v2/whatever")
    assert missing.status_code == 404
    assert missing.json()["error"]["what"] == "Not Found"


def test_a_damaged_run_is_a_500_without_internals(served, tmp_path):
    broken = tmp_path / "broken-20990101-000000"
    broken.mkdir()
    (broken / "card.json").write_text((served["digits"] / "card.json").read_text())
    app = create_app(ServeSettings(runs_dir=tmp_path))
    client = TestClient(app, raise_server_exceptions=False)
    response = client.post(f"/v1/models/{broken.name}/predict", json={"inputs": [[0] * 64]})
    assert response.status_code == 500
    assert response.json() == {
        "error": {"where": "server", "what": "internal error", "hint": "see the server log"}
    }
