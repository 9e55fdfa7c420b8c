"""The benchmarks compare like with like, and their page flags what misses its target."""

import torch

from benchmarks import overhead, summary
from neuralab.data import load_data


def test_neuralab_fit_does_the_hand_written_loops_work_exactly():
    # same batches, same start, same math: the overhead ratio then measures only overhead
    experiment = overhead.experiment_for("digits-mlp", 2)
    bundle = load_data(experiment.data, task=None, seed=experiment.seed)
    floor = overhead.hand_written(experiment, bundle)
    fit = overhead.with_fit(experiment, bundle)
    assert floor.weights.keys() == fit.weights.keys()
    assert all(torch.equal(floor.weights[k], fit.weights[k]) for k in floor.weights)


def machine(load):
    return {
        "cores": 2,
        "cpu": "test cpu",
        "torch": "2.13.0",
        "torch_threads": 1,
        "python": "3.11",
        "platform": "linux",
        "load_average_1min": load,
        "load_average_1min_after": load,
    }


def overhead_result(ratio_b, mode="full", load=0.5):
    arms = list(summary.ARM_NAMES)
    ratios = {f"{arm}/a": ratio_b for arm in arms[1:]}
    return {
        "mode": mode,
        "date": "2026-11-23T00:00:00",
        "wall_seconds": 60.0,
        "machine": machine(load),
        "cases": [
            {
                "case": "digits-mlp",
                "train_samples": 1257,
                "val_samples": 180,
                "batch_size": 64,
                "epochs": 30,
                "repeats": 5,
                "experiment": {"model": {"family": "mlp"}, "optim": {"name": "adam"}},
                "median_seconds_per_epoch": dict.fromkeys(arms, 0.05),
                "median_cpu_seconds_per_epoch": dict.fromkeys(arms, 0.04),
                "ratios": ratios,
                "cpu_ratios": ratios,
                "same_weights": dict.fromkeys(arms[1:], True),
            }
        ],
    }


def test_summary_marks_a_ratio_over_the_target_and_only_that():
    over = summary.render({"overhead": overhead_result(1.2)})
    within = summary.render({"overhead": overhead_result(1.01)})
    assert "**1.200**" in over
    assert "1.010" in within
    assert "**1.010**" not in within


def test_summary_says_when_figures_are_not_measurements():
    page = summary.render({"overhead": overhead_result(1.0, mode="quick", load=8.0)})
    assert "quick mode" in page
    assert "busy machine" in page
    assert "Not run yet" in page  # accuracy and throughput have no results here
    quiet = summary.render({"overhead": overhead_result(1.0)})
    assert "quick mode" not in quiet
    assert "busy machine" not in quiet
