"""Multi-task learning: one body, a head per `tasks:` entry, metrics per head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neuralab
from neuralab.errors import NeuralabError
from neuralab.tasks import Classification, Head, MultiTask
from tests.conftest import tiny_experiment


def write_csv(tmp_path, rows=200):
    """x1 decides the class, x2 the value: both heads can learn."""
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    lines = ["x1,x2,kind,amount"] + [
        f"{a:.3f},{b:.3f},{'big' if a > 0 else 'small'},{3 * b + 10:.3f}"
        for a, b in zip(x1, x2, strict=True)
    ]
    path = tmp_path / "two.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_csv_class_and_numeric_heads_each_learn_and_report(tmp_path):
    experiment = tiny_experiment(
        data={"dataset": {"csv": str(write_csv(tmp_path))}},
        tasks={"kind": {"target": "kind"}, "amount": {"target": "amount", "weight": 0.5}},
        model={"family": "mlp", "hidden_sizes": [16]},
        optim={"name": "adam", "lr": 0.01},
        train={"epochs": 30, "batch_size": 32},
    )
    run = neuralab.train(experiment, out=tmp_path)
    test = run.test_metrics
    assert test["kind_accuracy"] > 0.9  # chance is 0.5
    assert test["amount_r2"] > 0.8
    assert test["amount_mae"] < 1.0  # in the target's own units (its std is 3)
    assert [h["name"] for h in run.card.task_settings["heads"]] == ["kind", "amount"]
    assert run.card.task_settings["heads"][0]["labels"] == ["big", "small"]
    assert run.card.data.num_outputs == 3  # two class outputs and one value
    assert "val_kind_accuracy" in (run.path / "metrics.jsonl").read_text()
    assert "<h2>Heads</h2>" in (run.path / "report.html").read_text()


def test_digits_class_and_parity(tmp_path):
    experiment = tiny_experiment(
        tasks={"digit": {"target": "label"}, "parity": {"target": "parity", "weight": 0.5}},
        model={"family": "mlp", "hidden_sizes": [32]},
        train={"epochs": 5, "batch_size": 64, "early_stopping": {"monitor": "val_parity_loss"}},
    )
    run = neuralab.train(experiment, out=tmp_path)
    assert run.test_metrics["digit_accuracy"] > 0.8
    assert run.test_metrics["parity_accuracy"] > 0.8
    assert run.card.task_settings["heads"][1]["labels"] == ["even", "odd"]


def test_the_loss_is_the_weighted_sum_of_the_heads():
    task = MultiTask(
        (
            Head("a", Classification(2), slice(0, 2), 0, weight=1.0),
            Head("b", Classification(3), slice(2, 5), 1, weight=0.25),
        )
    )
    output = torch.randn(6, 5)
    target = torch.tensor([[0, 2], [1, 0], [0, 1], [1, 1], [0, 0], [1, 2]], dtype=torch.float32)
    a = torch.nn.functional.cross_entropy(output[:, :2], target[:, 0].long())
    b = torch.nn.functional.cross_entropy(output[:, 2:], target[:, 1].long())
    assert task.loss(output, target).item() == pytest.approx((a + 0.25 * b).item())
    assert task.metrics(output, target)["b_loss"] == pytest.approx(b.item())


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ({"x": {"target": "colour"}}, "tasks.x.target: 'colour' is not a classification target"),
        ({"x": {"target": "label", "task": "regression"}}, "tasks.x.target"),
    ],
)
def test_unknown_builtin_targets_are_errors(tasks, message, tmp_path):
    with pytest.raises(NeuralabError, match=message):
        neuralab.train(tiny_experiment(tasks=tasks), out=tmp_path)


def test_a_missing_csv_column_names_the_task(tmp_path):
    experiment = tiny_experiment(
        data={"dataset": {"csv": str(write_csv(tmp_path))}},
        tasks={"kind": {"target": "knid"}},
    )
    with pytest.raises(NeuralabError, match="tasks.kind.target: column 'knid' not in two.csv"):
        neuralab.train(experiment, out=tmp_path)


def test_evaluate_recomputes_every_head_and_predict_says_it_cannot(tmp_path):
    experiment = tiny_experiment(
        tasks={"digit": {"target": "label"}, "parity": {"target": "parity"}},
    )
    run = neuralab.train(experiment, out=tmp_path)
    assert neuralab.evaluate_run(run.path) == pytest.approx(run.test_metrics)
    with pytest.raises(NeuralabError, match="predict: multi-task runs are not served"):
        neuralab.load(run.path).predict(np.zeros((2, 8, 8)))
