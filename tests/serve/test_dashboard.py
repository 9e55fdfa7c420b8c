"""The dashboard's page and the read-only routes behind it."""

from __future__ import annotations

import pytest


def test_page_and_its_static_files_are_served(client_for):
    client = client_for()
    page = client.get("/")
    assert page.status_code == 200
    assert '<script src="/static/app.js">' in page.text
    assert "function drawingPad" in client.get("/static/app.js").text
    assert client.get("/static/../app.py").status_code == 404


def test_run_history_config_and_report(client_for, served):
    client = client_for()
    name = served["digits"].name
    epochs = client.get(f"/v1/models/{name}/history").json()["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert {"train_loss", "val_loss", "val_accuracy"} <= set(epochs[0])
    assert client.get(f"/v1/models/{name}/config").text.startswith("name: digits")
    report = client.get(f"/v1/models/{name}/report")
    assert report.headers["content-type"].startswith("text/html")
    assert "<html" in report.text


def test_model_details_carry_the_confusion_matrix(client_for, served):
    details = client_for().get(f"/v1/models/{served['digits'].name}").json()
    matrix = details["confusion_matrix"]
    assert len(matrix) == 10
    assert sum(map(sum, matrix)) == 360  # the test split
    assert details["generates"] is False


def test_comparisons_list_leaderboards(client_for, served):
    folder = served["root"] / "digits-compare-20990101-000000"
    folder.mkdir(exist_ok=True)
    (folder / "leaderboard.csv").write_text("model,mean\ncnn,0.98\nmlp,0.95\n")
    (folder / "report.html").write_text("<html>leaderboard</html>")
    client = client_for()
    found = {c["name"]: c["rows"] for c in client.get("/v1/comparisons").json()["comparisons"]}
    assert found[folder.name] == [
        {"model": "cnn", "mean": "0.98"},
        {"model": "mlp", "mean": "0.95"},
    ]
    assert client.get(f"/v1/comparisons/{folder.name}/report").text == "<html>leaderboard</html>"
    assert folder.name not in {m["name"] for m in client.get("/v1/models").json()["models"]}


@pytest.mark.parametrize(
    "path",
    ["/v1/models/nope/history", "/v1/models/nope/config", "/v1/comparisons/nope/report"],
)
def test_unknown_names_are_404(client_for, path):
    response = client_for().get(path)
    assert response.status_code == 404
    assert "nope" in response.json()["error"]["what"]
