"""Calibration: ECE measures over-confidence, and temperature scaling removes it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neuralab.calibration import expected_calibration_error, fit_temperature, reliability
from tests.conftest import tiny_experiment


def overconfident(num_samples: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels drawn from softmax(logits), reported with the logits x 4: over-confident."""
    generator = torch.Generator().manual_seed(seed)
    logits = 1.5 * torch.randn(num_samples, 5, generator=generator)
    labels = torch.multinomial(logits.softmax(dim=1), 1, generator=generator).squeeze(1)
    return 4.0 * logits, labels


def test_temperature_scaling_recovers_the_inflation_and_ece_falls():
    val_logits, val_labels = overconfident(2000, seed=0)
    test_logits, test_labels = overconfident(2000, seed=1)
    temperature = fit_temperature(val_logits, val_labels)
    before = expected_calibration_error(test_logits, test_labels)
    after = expected_calibration_error(test_logits / temperature, test_labels)
    assert temperature == pytest.approx(4.0, rel=0.15)
    assert before > 0.2
    assert after < 0.03
    assert torch.equal((test_logits / temperature).argmax(1), test_logits.argmax(1))


def test_ece_is_zero_when_confidence_matches_accuracy():
    # confidence 0.75 for every sample, and exactly 3 of each 4 right
    logits = torch.log(torch.tensor([[0.75, 0.25]])).repeat(400, 1)
    labels = torch.tensor([0, 0, 0, 1]).repeat(100)
    bins = reliability(logits, labels)
    assert bins.ece == pytest.approx(0.0, abs=1e-6)  # float32 softmax
    assert bins.counts.sum() == 400
    assert np.count_nonzero(bins.counts) == 1


def test_calibrate_stores_a_temperature_that_predict_and_evaluate_use(run_cli, tmp_path):
    # A wide MLP trained long on a few noisy moons: it overfits and becomes over-confident.
    spec = tmp_path / "moons.yaml"
    experiment = tiny_experiment(
        data={"dataset": {"name": "moons", "num_samples": 300, "noise": 0.5}},
        model={"family": "mlp", "hidden_sizes": [64, 64]},
        optim={"lr": 0.02},
        train={"epochs": 60, "batch_size": 32},
    )
    spec.write_text(json.dumps(experiment))
    code, out, _ = run_cli("train", str(spec), "--out", str(tmp_path))
    assert code == 0
    run_dir = out.split("run: ")[1].strip()
    samples = tmp_path / "samples.npy"
    np.save(samples, np.array([[0.0, 0.5], [1.0, -0.5], [2.0, 0.2]], dtype=np.float32))
    _, raw_csv, _ = run_cli("predict", run_dir, str(samples))

    code, out, _ = run_cli("calibrate", run_dir)
    assert code == 0
    card = json.loads((tmp_path / run_dir / "card.json").read_text())
    calibration = card["calibration"]
    assert calibration["temperature"] > 1.2, calibration  # softened: it was over-confident
    assert f"{calibration['temperature']:.4f}" in out

    _, calibrated_csv, _ = run_cli("predict", run_dir, str(samples))
    raw, calibrated = raw_csv.splitlines()[1:], calibrated_csv.splitlines()[1:]
    assert [r.split(",")[0] for r in raw] == [c.split(",")[0] for c in calibrated]  # same labels
    top = [max(map(float, r.split(",")[1:])) for r in raw]
    top_calibrated = [max(map(float, c.split(",")[1:])) for c in calibrated]
    assert all(c < r for c, r in zip(top_calibrated, top, strict=True))  # less confident
    _, evaluated, _ = run_cli("evaluate", run_dir, "--json")
    metrics = json.loads(evaluated)
    assert metrics["ece"] == pytest.approx(calibration["test_ece_after"])
    assert metrics["loss"] < card["metrics"]["test"]["loss"]  # held-out NLL falls too
    assert "T = " in (tmp_path / run_dir / "report.html").read_text()


def test_calibrate_refuses_a_regression_run(run_cli, tmp_path):
    spec = tmp_path / "sine.yaml"
    spec.write_text(json.dumps(tiny_experiment(data={"dataset": "sine"}, train={"epochs": 1})))
    _, out, _ = run_cli("train", str(spec), "--out", str(tmp_path))
    code, _, err = run_cli("calibrate", out.split("run: ")[1].strip())
    assert code == 2
    assert "calibration is for classifiers; this run is regression" in err
