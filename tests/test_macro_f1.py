"""The per-epoch macro-F1 gives exactly what sklearn's f1_score gives."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from neuralab.tasks import macro_f1


@pytest.mark.parametrize(
    ("truth", "predicted"),
    [
        ([0, 1, 2, 2, 1], [0, 2, 2, 2, 1]),  # every class present
        ([0, 0, 1, 1], [0, 0, 0, 0]),  # class 1 never predicted
        ([0, 0, 0], [0, 0, 0]),  # classes 1 and 2 neither true nor predicted: F1 0
        ([2, 2], [1, 1]),  # nothing right
    ],
)
def test_macro_f1_matches_sklearn_on_edge_cases(truth, predicted):
    truth, predicted = np.array(truth), np.array(predicted)
    expected = f1_score(truth, predicted, average="macro", labels=range(3), zero_division=0)
    assert macro_f1(truth, predicted, 3) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_macro_f1_matches_sklearn_on_random_labels():
    rng = np.random.default_rng(0)
    for _ in range(50):
        num_classes = int(rng.integers(2, 12))
        truth = rng.integers(0, num_classes, size=int(rng.integers(1, 200)))
        predicted = np.where(rng.random(len(truth)) < 0.6, truth, rng.integers(0, num_classes))
        expected = f1_score(
            truth, predicted, average="macro", labels=range(num_classes), zero_division=0
        )
        assert macro_f1(truth, predicted, num_classes) == pytest.approx(expected, rel=1e-12)
