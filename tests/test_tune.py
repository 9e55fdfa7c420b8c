"""Hyperparameter search: the space is checked before any trial, pruning stops poor trials,
studies resume after Ctrl-C or a killed worker, and local workers share one study."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
import torch
import yaml

import neuralab
from neuralab.config import load_config
from neuralab.errors import NeuralabError
from neuralab.search import SearchConfig
from neuralab.train import Callback, TrainState
from neuralab.train.loop import TrainingInterrupted
from neuralab.tune import Pruning, _suggest, _values, tune
from tests.conftest import tiny_experiment

LR = {"optim.lr": {"log_uniform": [1.0e-4, 0.3]}}


def experiment_with(space=None, **search):
    """The tiny digits MLP (3 epochs) with a search block over the learning rate."""
    return tiny_experiment(
        train={"epochs": 3, "batch_size": 128},
        search={"space": space or LR, "min_epochs": 1, **search},
    )


def trials_of(folder):
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(folder / "journal.log"))
    )
    return optuna.load_study(study_name="tiny", storage=storage).get_trials()


@pytest.mark.parametrize(
    ("space", "search", "message"),
    [
        ({"optim.lrr": {"uniform": [0.1, 0.2]}}, {}, "search.space.optim.lrr: unknown key"),
        ({"model.channels": {"choice": [[8], [16]]}}, {}, "search.space.model.channels: unknown"),
        ({"optim.lr": {"log_uniform": [0.0, 0.1]}}, {}, "search.space.optim.lr: log_uniform needs"),
        ({"model.dropout": {"uniform": [0.3, 0.3]}}, {}, "search.space.model.dropout: uniform"),
        ({"model.dropout": {"uniform": [0.5, 0.1]}}, {}, "low < high"),
        ({"model.dropout": {"uniform": [0.0, 1.5]}}, {}, "search.space.model.dropout: Input"),
        ({"train.batch_size": {"uniform": [16, 128]}}, {}, "search.space.train.batch_size"),
        ({"train.epochs": {"int": [0, 3]}}, {}, "search.space.train.epochs"),
        ({"model.dropout": {"choice": []}}, {}, "search.space.model.dropout.choice"),
        ({"model.hidden_sizes": {"choice": [[8], "[8]"]}}, {}, "[8] and '[8]' are one choice"),
        ({"model.dropout": {"choice": [0.0, 0, False]}}, {}, "0.0 and 0 are one choice"),
        ({"optim.lr": {"loguniform": [0.1, 0.2]}}, {}, "did you mean 'log_uniform'"),
        (LR, {"metric": "val_acc"}, "search.metric: 'val_acc' is not a validation metric"),
        (LR, {"pruner": "asha"}, "search.pruner"),
    ],
)
def test_invalid_search_is_refused_before_any_trial(run_cli, tmp_path, space, search, message):
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(experiment_with(space, **search)))
    code, _, err = run_cli("tune", str(path), "--out", str(tmp_path / "runs"))
    assert code == 2
    assert message in err
    assert not (tmp_path / "runs").exists()


def test_folds_are_refused_rather_than_silently_tuning_fold_zero(run_cli, tmp_path):
    path = tmp_path / "tune.yaml"
    experiment = experiment_with() | {"data": {"dataset": "digits", "split": {"folds": 3}}}
    path.write_text(yaml.safe_dump(experiment))
    code, _, err = run_cli("tune", str(path), "--out", str(tmp_path / "runs"))
    assert code == 2
    assert err.startswith("error: data.split.folds: tune scores each trial on one validation")
    assert not (tmp_path / "runs").exists()


def test_tuning_needs_a_search_block(run_cli, tmp_path):
    path = tmp_path / "plain.yaml"
    path.write_text(yaml.safe_dump(tiny_experiment()))
    code, _, err = run_cli("tune", str(path), "--out", str(tmp_path))
    assert (code, err.strip()) == (
        2,
        "error: search: the experiment has no search: block "
        + ("(add e.g. search: {space: {optim.lr: {log_uniform: [1.0e-4, 1.0e-1]}}})"),
    )


def test_no_trial_starts_after_the_timeout(tmp_path):
    with pytest.raises(NeuralabError, match="no trial completed"):
        tune(experiment_with(), trials=3, timeout=0, out=tmp_path)
    assert trials_of(tmp_path / "tiny-tune") == []


def test_pruning_callback_stops_a_trial_below_the_median():
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=2)
    )
    for accuracy in (0.8, 0.9):
        trial = study.ask()
        trial.report(accuracy, 1)
        study.tell(trial, accuracy)
    model = torch.nn.Linear(1, 1)
    state = TrainState(model, torch.optim.SGD(model.parameters()), 3, 1, epoch=1)
    good, bad = Pruning(study.ask(), "val_accuracy"), Pruning(study.ask(), "val_accuracy")
    state.metrics = {"val_accuracy": 0.95}
    good.on_epoch_end(state)
    assert (state.should_stop, good.pruned_at) == (False, None)
    state.metrics = {"val_accuracy": 0.5}
    bad.on_epoch_end(state)
    assert (state.should_stop, bad.pruned_at) == (True, 1)


def test_study_prunes_and_its_best_trial_beats_the_default(tmp_path):
    space = {**LR, "model.hidden_sizes": {"choice": [[8], [32]]}}
    study = tune(experiment_with(space), trials=8, out=tmp_path)
    default = neuralab.train(tiny_experiment(train={"epochs": 3, "batch_size": 128}), out=tmp_path)

    assert study.counts["complete"] + study.counts["pruned"] == 8
    assert study.counts["pruned"] >= 1
    pruned = [t for t in trials_of(study.path) if t.state == optuna.trial.TrialState.PRUNED]
    assert any(len(t.intermediate_values) < 3 for t in pruned)  # stopped early
    assert study.best_value > default.card.metrics["val"]["accuracy"] + 0.05
    best_card = neuralab.load(study.best_run).card
    assert best_card.metrics["test"]["accuracy"] > default.test_metrics["accuracy"] + 0.05

    # best.yaml holds the best values and, trained as it is, gives the best trial's result
    best = load_config(study.path / "best.yaml")
    assert best.optim.lr == study.best_params["optim.lr"]
    assert list(best.model.hidden_sizes) == study.best_params["model.hidden_sizes"]
    assert best.search is None
    again = neuralab.train(study.path / "best.yaml", out=tmp_path)
    assert again.card.metrics["val"]["accuracy"] == study.best_value

    rows = list(csv.DictReader((study.path / "trials.csv").read_text().splitlines()))
    assert [int(r["number"]) for r in rows] == list(range(8))
    assert {r["state"] for r in rows} == {"complete", "pruned"}
    for name in ("history.png", "importances.png", "slice-optim.lr.png"):
        assert (study.path / name).stat().st_size > 10_000
    assert (study.best_run / "report.html").is_file()


EARLY_STOPPING = {"monitor": "val_loss", "patience": 3}


def test_choices_mixing_null_mappings_and_lists_reach_every_trial_and_best_yaml(tmp_path):
    space = {
        "train.early_stopping": {"choice": [None, EARLY_STOPPING]},
        "model.hidden_sizes": {"choice": [[8], [16]]},
    }
    experiment = experiment_with(space, pruner="none", sampler="random")
    study = tune(experiment, trials=4, out=tmp_path)

    picked = []
    for trial in trials_of(study.path):
        config = load_config(study.path / "trials" / trial.user_attrs["run"] / "config.yaml")
        early = config.train.early_stopping
        picked.append(None if early is None else early.model_dump(include={"monitor", "patience"}))
        assert list(config.model.hidden_sizes) in ([8], [16])
    assert None in picked  # the study tried both kinds
    assert EARLY_STOPPING in picked

    best = load_config(study.path / "best.yaml")  # it validates, whichever choice won
    assert study.best_params["train.early_stopping"] in (None, EARLY_STOPPING)
    early = best.train.early_stopping
    chosen = None if early is None else early.model_dump(include={"monitor", "patience"})
    assert chosen == study.best_params["train.early_stopping"]
    assert list(best.model.hidden_sizes) == study.best_params["model.hidden_sizes"]


def test_every_choice_of_any_kind_comes_back_from_the_stored_trial_as_written():
    choices = [None, EARLY_STOPPING, [8, 16], 2, 0.5, True, "text", "[8]"]
    search = SearchConfig(space={"key": {"choice": choices}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    suggested = []
    for _ in range(60):
        trial = study.ask()
        suggested.append(_suggest(trial, "key", search.space["key"]))
        study.tell(trial, 0.0)

    kinds = {(type(value), repr(value)) for value in suggested}
    assert kinds == {(type(value), repr(value)) for value in choices}
    for value, trial in zip(suggested, study.trials, strict=True):
        stored = _values(trial, search)["key"]
        assert (type(stored), stored) == (type(value), value)


class InterruptSecondTrial(Callback):
    """Presses Ctrl-C during the second trial's first epoch."""

    def __init__(self) -> None:
        self.fits = 0

    def on_fit_start(self, state: TrainState) -> None:
        self.fits += 1

    def on_epoch_end(self, state: TrainState) -> None:
        if self.fits == 2:
            os.kill(os.getpid(), signal.SIGINT)


def test_interrupted_study_resumes_and_reaches_the_total(tmp_path):
    experiment = experiment_with(pruner="none")
    with pytest.raises(TrainingInterrupted, match="during trial 1, which is marked failed"):
        tune(experiment, trials=3, out=tmp_path, callbacks=[InterruptSecondTrial()])
    folder = tmp_path / "tiny-tune"
    states = [t.state.name for t in trials_of(folder)]
    assert states == ["COMPLETE", "FAIL"]
    assert not list((folder / "trials").glob(".*.partial"))  # a trial restarts, never resumes

    study = tune(experiment, trials=3, out=tmp_path)
    assert study.counts == {"complete": 3, "pruned": 0, "fail": 1}
    study = tune(experiment, trials=4, out=tmp_path)  # rerunning adds trials
    assert study.counts["complete"] == 4

    changed = experiment_with({"optim.lr": {"log_uniform": [1.0e-3, 0.3]}}, pruner="none")
    with pytest.raises(NeuralabError, match="different experiment"):
        tune(changed, trials=5, out=tmp_path)


class WaitForAnotherWorker(Callback):
    """Holds this process's first trial until a trial of another worker is running, so
    both workers provably take part."""

    def __init__(self, folder) -> None:
        self.folder, self.waited = folder, False

    def on_fit_start(self, state: TrainState) -> None:
        deadline = time.monotonic() + 120
        while not self.waited and time.monotonic() < deadline:
            self.waited = len({t.user_attrs.get("worker") for t in trials_of(self.folder)}) > 1
            time.sleep(0.2)


def test_two_workers_share_the_study_without_duplicates_or_losses(tmp_path):
    waiting = WaitForAnotherWorker(tmp_path / "tiny-tune")
    study = tune(
        experiment_with(pruner="none"), trials=4, workers=2, out=tmp_path, callbacks=[waiting]
    )
    trials = trials_of(study.path)
    assert waiting.waited
    assert [t.number for t in trials] == list(range(4))
    assert {t.state.name for t in trials} == {"COMPLETE"}
    assert len({t.params["optim.lr"] for t in trials}) == 4
    assert len({t.user_attrs["worker"] for t in trials}) == 2
    runs = sorted(p.name for p in (study.path / "trials").iterdir())
    assert sorted(t.user_attrs["run"] for t in trials) == runs


def test_a_killed_workers_trial_is_marked_failed_and_retried(tmp_path):
    experiment = tiny_experiment(
        train={"epochs": 10, "batch_size": 128}, search={"space": LR, "pruner": "none"}
    )
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(experiment))
    folder = tmp_path / "runs" / "tiny-tune"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "neuralab",
            "tune",
            str(path),
            "--trials",
            "1",
            "--out",
            str(tmp_path / "runs"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(folder.glob("trials/.trial-0000-*.partial/metrics.jsonl")):
            assert time.monotonic() < deadline
            assert worker.poll() is None
            time.sleep(0.05)
        worker.kill()
    finally:
        worker.wait()

    study = tune(path, trials=1, out=tmp_path / "runs")
    killed, retried = trials_of(folder)
    assert killed.state.name == "FAIL"
    assert retried.state.name == "COMPLETE"
    assert retried.params == killed.params
    assert retried.system_attrs["failed_trial"] == killed.number
    assert study.best_number == retried.number
    assert not list((folder / "trials").glob(".*.partial"))


def test_sqlite_storage_serves_one_process_and_refuses_several(run_cli, tmp_path):
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(experiment_with(pruner="none")))
    url = f"sqlite:///{tmp_path / 'study.db'}"
    code, out, _ = run_cli(
        "tune", str(path), "--trials", "1", "--storage", url, "--out", str(tmp_path)
    )
    assert code == 0
    assert "trials: 1 complete, 0 pruned, 0 fail" in out
    assert f"best.yaml: {tmp_path / 'tiny-tune' / 'best.yaml'}" in out
    assert (tmp_path / "study.db").is_file()
    assert not (tmp_path / "tiny-tune" / "journal.log").exists()
    code, _, err = run_cli("tune", str(path), "--storage", "nonsense", "--out", str(tmp_path / "x"))
    assert code == 2
    assert "error: --storage: cannot open 'nonsense'" in err
    assert not (tmp_path / "x" / "tiny-tune").exists()
    code, _, err = run_cli("tune", str(path), "--storage", url, "--workers", "2")
    assert (code, err.strip()) == (
        2,
        "error: --storage: SQLite is unsafe with parallel writers "
        "(drop --storage or use one worker)",
    )
