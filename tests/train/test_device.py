"""Devices, mixed precision and torch.compile: bf16 on the CPU learns, impossible settings
fail before anything is written, and a compiler failure falls back with one warning."""

from __future__ import annotations

import pytest
import torch

import neuralab
from neuralab.train.diagnostics import TrainingWarning
from tests.conftest import tiny_experiment

CUDA = torch.cuda.is_available()


@pytest.mark.parametrize(
    "model", [{"family": "mlp", "hidden_sizes": [32]}, {"family": "cnn", "channels": [8, 16]}]
)
def test_bf16_autocast_on_cpu_learns_like_fp32(tmp_path, model):
    accuracy = {}
    for precision in (32, "bf16"):
        experiment = tiny_experiment(model=model, train={"epochs": 3, "batch_size": 64})
        experiment["train"].update(precision=precision, device="cpu")
        accuracy[precision] = neuralab.train(experiment, out=tmp_path).test_metrics["accuracy"]
    assert accuracy["bf16"] > 0.5  # chance is 0.1
    assert accuracy["bf16"] == pytest.approx(accuracy[32], abs=0.05)


@pytest.mark.skipif(CUDA, reason="fp16 works where CUDA is")
def test_fp16_without_cuda_is_refused_before_any_file(run_cli, tmp_path):
    config = tmp_path / "e.yaml"
    config.write_text(
        "data: {dataset: digits}\nmodel: {family: mlp}\ntrain: {precision: fp16, device: cpu}\n"
    )
    code, _, err = run_cli("train", str(config), "--out", str(tmp_path / "runs"))
    assert code == 2
    assert err.strip() == (
        "error: train.precision: fp16 needs a CUDA device, but training runs on cpu "
        "(use precision: bf16 on CPU)"
    )
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(CUDA, reason="this machine has CUDA")
def test_cuda_without_a_gpu_names_the_key(tmp_path):
    experiment = tiny_experiment()
    experiment["train"]["device"] = "cuda:0"
    with pytest.raises(neuralab.NeuralabError, match="CUDA is not available") as caught:
        neuralab.train(experiment, out=tmp_path)
    assert caught.value.problems[0].where == "train.device"


def test_unknown_device_is_a_config_error(tmp_path):
    experiment = tiny_experiment()
    experiment["train"]["device"] = "gpu"
    with pytest.raises(neuralab.NeuralabError) as caught:
        neuralab.train(experiment, out=tmp_path)
    assert caught.value.problems[0].where == "train.device"


def test_compile_failure_falls_back_to_eager_with_one_warning(tmp_path, monkeypatch):
    eager = neuralab.train(tiny_experiment(), out=tmp_path).test_metrics

    def broken_compile(self, *args, **kwargs):
        def fail(*a, **k):
            raise RuntimeError("no compiler for this model")

        self._compiled_call_impl = fail

    monkeypatch.setattr(torch.nn.Module, "compile", broken_compile)
    experiment = tiny_experiment()
    experiment["train"]["compile"] = True
    with pytest.warns(TrainingWarning, match="torch.compile failed") as caught:
        run = neuralab.train(experiment, out=tmp_path)
    assert len([w for w in caught if "torch.compile" in str(w.message)]) == 1
    assert run.test_metrics == eager


@pytest.mark.slow  # compiling takes ~30-60 s on the CPU
def test_compile_trains_to_the_same_accuracy(tmp_path):
    experiment = tiny_experiment(train={"epochs": 2, "batch_size": 64})
    eager = neuralab.train(experiment, out=tmp_path).test_metrics["accuracy"]
    experiment["train"]["compile"] = True
    compiled = neuralab.train(experiment, out=tmp_path).test_metrics["accuracy"]
    assert compiled == pytest.approx(eager, abs=0.03)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("precision", [32, "bf16", "fp16"])
def test_cuda_trains_in_every_precision(tmp_path, precision):
    experiment = tiny_experiment(
        model={"family": "cnn", "channels": [8, 16]}, train={"epochs": 3, "batch_size": 64}
    )
    experiment["train"].update(device="cuda", precision=precision)
    run = neuralab.train(experiment, out=tmp_path)
    assert run.test_metrics["accuracy"] > 0.75
    # the saved model is a CPU model: it loads and predicts anywhere
    assert next(neuralab.load(run.path).model.parameters()).device.type == "cpu"
