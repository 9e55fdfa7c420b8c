"""Export to ONNX and TorchScript: outputs match PyTorch, and ONNX Runtime can serve them."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from sklearn.datasets import load_digits

import neuralab
from neuralab.errors import NeuralabError
from neuralab.export import FILES, export
from neuralab.serve import ServeSettings, create_app
from tests.conftest import tiny_experiment


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return neuralab.train(tiny_experiment(), out=tmp_path_factory.mktemp("export")).path


@pytest.fixture(scope="module")
def onnx_export(run_dir):
    pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    return export(run_dir, "onnx")


def test_onnx_matches_pytorch_and_predicts_the_same(run_dir, onnx_export):
    from neuralab.export import OnnxPredictor

    exported = onnx_export
    assert exported.path == run_dir / "model.onnx"
    assert exported.max_abs_difference <= 1e-4
    assert exported.num_samples == 360
    images = load_digits().images[:50]
    onnx = OnnxPredictor.load(run_dir).predict(images)
    torch_prediction = neuralab.load(run_dir).predict(images)
    assert onnx.labels == torch_prediction.labels
    np.testing.assert_allclose(onnx.probabilities, torch_prediction.probabilities, atol=1e-5)


def test_server_runs_onnx_with_runtime_onnx(run_dir, onnx_export):
    client = TestClient(create_app(ServeSettings(runs_dir=run_dir.parent, runtime="onnx")))
    images = load_digits().images[:3].tolist()
    response = client.post(f"/v1/models/{run_dir.name}/predict", json={"inputs": images})
    assert response.status_code == 200
    expected = neuralab.load(run_dir).predict(np.array(images)).labels
    assert [row["label"] for row in response.json()["predictions"]] == expected


def test_runtime_onnx_without_export_names_the_fix(run_dir, tmp_path):
    pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    copy = shutil.copytree(run_dir, tmp_path / run_dir.name, ignore=lambda *_: ["model.onnx"])
    client = TestClient(create_app(ServeSettings(runs_dir=tmp_path, runtime="onnx")))
    response = client.post(f"/v1/models/{copy.name}/predict", json={"inputs": [[0] * 64]})
    assert response.status_code == 422
    assert "neuralab export" in response.json()["error"]["hint"]


@pytest.mark.filterwarnings("ignore:.*deprecated:DeprecationWarning")  # torch.jit.load
def test_torchscript_matches_pytorch(run_dir):
    exported = export(run_dir, "torchscript")
    assert exported.max_abs_difference <= 1e-4
    loaded = torch.jit.load(str(exported.path))
    x = torch.randn(5, 1, 8, 8)
    expected = neuralab.load(run_dir).model(x)
    torch.testing.assert_close(loaded(x), expected)


def test_cli_export_prints_the_file(run_cli, run_dir):
    code, out, _ = run_cli("export", str(run_dir), "--format", "torchscript")
    assert code == 0
    assert f"wrote {run_dir / FILES['torchscript']}" in out.replace("\n", "")


def test_unknown_format_and_baselines_are_refused(run_cli, run_dir, tmp_path):
    code, _, err = run_cli("export", str(run_dir), "--format", "tflite")
    assert code == 2
    assert "error: --format: 'tflite' is not a format" in err
    baseline = neuralab.train(tiny_experiment(model={"family": "logreg"}), out=tmp_path)
    with pytest.raises(NeuralabError, match="scikit-learn baseline"):
        export(baseline.path, "torchscript")
    assert not list(baseline.path.glob("*.partial"))
