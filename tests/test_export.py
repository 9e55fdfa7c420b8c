"""Export to ONNX and TorchScript: outputs match PyTorch, and ONNX Runtime can serve them."""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from sklearn.datasets import load_digits

import neuralab
from neuralab.errors import NeuralabError
from neuralab.export import FILES, export, first_line
from neuralab.serve import ServeSettings, create_app
from tests.conftest import TINY_VIT, tiny_experiment


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


# Tiny runs of the families with their own forward passes (text ids in, token logits out;
# a GAN's two players). One epoch: export checks agreement, not accuracy.
CHARLM = tiny_experiment(
    data={"dataset": {"name": "pydoc", "window": 16, "max_chars": 3000}},
    model={
        "family": "charlm",
        "body": "transformer",
        "embedding_size": 8,
        "num_heads": 2,
        "num_layers": 1,
    },
    train={"epochs": 1, "batch_size": 64},
)
SEQ2SEQ = tiny_experiment(
    data={"dataset": {"name": "reverse", "num_samples": 200, "max_length": 4}},
    model={"family": "seq2seq", "hidden_size": 8},
    train={"epochs": 1, "batch_size": 64},
)
GAN = tiny_experiment(
    model={"family": "gan", "channels": [8, 4], "latent_size": 4},
    train={"epochs": 1, "batch_size": 64},
)


def test_charlm_exports_to_onnx_and_its_onnx_runtime_refuses_to_generate(tmp_path):
    pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    from neuralab.export import OnnxPredictor

    run = neuralab.train(CHARLM, out=tmp_path)
    exported = export(run.path, "onnx")  # next-character logits (B, T, vocab) per window
    assert exported.max_abs_difference <= 1e-4
    with pytest.raises(NeuralabError, match="the ONNX runtime does not run generation"):
        OnnxPredictor.load(run.path).generate_text("a", 5, temperature=1.0, top_k=None, seed=0)
    client = TestClient(create_app(ServeSettings(runs_dir=tmp_path, runtime="onnx")))
    assert client.get(f"/v1/models/{run.path.name}").json()["generates"] is False
    # TorchScript's tracer rejects the Transformer body's graph: one clear error instead
    with pytest.raises(NeuralabError, match=r"torchscript: tracing 'charlm' failed.*--format onnx"):
        export(run.path, "torchscript")
    assert not list(run.path.glob(".*.partial"))
    assert not (run.path / FILES["torchscript"]).exists()


@pytest.mark.filterwarnings("ignore:.*deprecated:DeprecationWarning")  # torch.jit.load
def test_seq2seq_exports_its_greedy_decoder_for_any_batch_size(tmp_path):
    run = neuralab.train(SEQ2SEQ, out=tmp_path)
    exported = export(run.path, "torchscript")  # the test split is a batch unlike the trace's
    assert exported.max_abs_difference <= 1e-4
    if importlib.util.find_spec("onnxruntime") is not None:
        assert export(run.path, "onnx").max_abs_difference <= 1e-4


def test_seq2seq_with_a_beam_is_refused(tmp_path):
    seq2seq = {**SEQ2SEQ, "model": {**SEQ2SEQ["model"], "beam_width": 3}}
    run = neuralab.train(seq2seq, out=tmp_path)
    with pytest.raises(NeuralabError, match="decodes greedily.*beam of 3.*--runtime torch"):
        export(run.path, "torchscript")


def test_gan_export_is_refused_naming_what_serves_it(tmp_path):
    run = neuralab.train(GAN, out=tmp_path)
    for target in ("onnx", "torchscript"):
        with pytest.raises(NeuralabError, match=r"'gan' draws noise.*neuralab generate") as caught:
            export(run.path, target)  # type: ignore[arg-type]
        assert str(caught.value).startswith(f"{target}: ")
    assert not any((run.path / name).exists() for name in FILES.values())
    assert not list(run.path.glob(".*.partial"))


@pytest.mark.filterwarnings("ignore:.*deprecated:DeprecationWarning")  # torch.jit.load
@pytest.mark.parametrize(
    ("model", "target"),
    [
        ({"family": "autoencoder", "hidden_sizes": [8], "variational": True}, "torchscript"),
        (TINY_VIT, "onnx"),
    ],
    ids=["vae", "transformer"],
)
def test_families_that_size_by_the_batch_export_with_a_dynamic_batch(tmp_path, model, target):
    if target == "onnx":
        pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    run = neuralab.train(tiny_experiment(model=model, train={"epochs": 1}), out=tmp_path)
    exported = export(run.path, target)  # traced on 2 samples, checked on all 360
    assert exported.max_abs_difference <= 1e-4


def test_an_exporter_message_reaches_the_user_as_one_plain_line():
    coloured = RuntimeError("\x1b[1m\x1b[31mUnsupported operator\x1b[0m aten::foo\ndetails")
    assert first_line(coloured) == "Unsupported operator aten::foo"
    assert first_line(RuntimeError()) == "RuntimeError"
