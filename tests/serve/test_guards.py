"""Safe by default: the bearer token, the body size limit, the binding rule, and metrics."""

from __future__ import annotations

import pytest

from neuralab.errors import NeuralabError
from neuralab.serve.server import check_binding


@pytest.mark.parametrize("route", ["/v1/models", "/v1/comparisons"])
def test_token_is_required_on_v1(client_for, route):
    client = client_for(token="s3cret")
    missing = client.get(route)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"]["where"] == "authorization"
    wrong = client.get(route, headers={"Authorization": "Bearer s3cre"})
    assert wrong.status_code == 401
    assert client.get(route, headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_token_guards_predict_before_reading_inputs(client_for, served):
    response = client_for(token="t").post(
        f"/v1/models/{served['digits'].name}/predict", json={"inputs": "garbage"}
    )
    assert response.status_code == 401


def test_health_and_dashboard_need_no_token(client_for):
    client = client_for(token="t")
    assert client.get("/healthz").status_code == 200
    assert client.get("/").status_code == 200


def test_oversized_body_is_413(client_for, served):
    client = client_for(max_body_bytes=300)
    url = f"/v1/models/{served['digits'].name}/predict"
    declared = client.post(url, json={"inputs": [[0.0] * 64] * 10})
    assert declared.status_code == 413
    assert "300 bytes" in declared.json()["error"]["what"]

    def chunks():  # no Content-Length: counted as it arrives
        yield b'{"inputs": ['
        for _ in range(10):
            yield b"[" + b"0.0," * 63 + b"0.0],"
        yield b"]}"

    assert client.post(url, content=chunks()).status_code == 413


def test_small_body_under_the_limit_is_served(client_for, served):
    client = client_for(max_body_bytes=1000)
    url = f"/v1/models/{served['digits'].name}/predict"
    assert client.post(url, json={"inputs": [[0] * 64]}).status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "::", "example.com"])
def test_binding_beyond_loopback_needs_a_token(host):
    with pytest.raises(NeuralabError, match="no --token"):
        check_binding(host, None)
    check_binding(host, "t")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_needs_no_token(host):
    check_binding(host, None)


def test_serve_cli_refuses_open_binding(run_cli, served):
    code, _, err = run_cli("serve", str(served["root"]), "--host", "0.0.0.0")
    assert code == 2
    assert err.startswith("error: --host: '0.0.0.0' is reachable from other machines")


def test_serve_cli_refuses_missing_folder(run_cli, tmp_path):
    code, _, err = run_cli("serve", str(tmp_path / "nope"))
    assert code == 2
    assert "not a directory" in err


def test_metrics_count_requests_by_route_and_status(client_for, served):
    client = client_for()
    url = f"/v1/models/{served['digits'].name}/predict"
    client.post(url, json={"inputs": [[0] * 64]})
    client.post(url, json={"inputs": [[0] * 64]})
    client.post(url, json={"inputs": [[0] * 3]})
    client.get("/v1/models/%2e%2e")
    text = client.get("/metrics").text
    predict = 'route="/v1/models/{name}/predict"'
    assert f'neuralab_requests_total{{method="POST",{predict},status="200"}} 2.0' in text
    assert f'neuralab_requests_total{{method="POST",{predict},status="422"}} 1.0' in text
    assert f"neuralab_request_seconds_count{{{predict}}} 3.0" in text
    assert "%2e" not in text  # raw paths never become labels
