"""A run folder stands alone: it stores its split and a fingerprint of its source data,
works wherever it is moved, and refuses source data that changed since training."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from neuralab import api
from neuralab.config import load_config
from neuralab.data import RawData, load_data
from neuralab.data.builtin import MoonsConfig
from neuralab.data.bundle import make_bundle
from neuralab.errors import NeuralabError
from neuralab.plan import plan
from neuralab.run_data import SPLIT, load_run_data, read_split
from tests.conftest import write_signal_csv


def csv_experiment(folder, **sections) -> Path:
    """A tiny MLP on `folder/data.csv` (400 rows of the signal table): the experiment file
    written beside it, with its path to the data relative."""
    write_signal_csv(folder / "data.csv")
    experiment = {
        "name": "standalone",
        "data": {"dataset": {"csv": "data.csv", "target": "label"}},
        "model": {"family": "mlp", "hidden_sizes": [8]},
        "train": {"epochs": 2, "batch_size": 64},
        **sections,
    }
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment))
    return path


@pytest.fixture
def project(tmp_path):
    """A folder holding data.csv, experiment.yaml and runs/<one trained run>."""
    folder = tmp_path / "project"
    folder.mkdir()
    api.train(csv_experiment(folder), out=folder / "runs", write_report=False)
    return folder


def the_run(project):
    [run_dir] = (project / "runs").iterdir()
    return run_dir


def test_a_moved_run_folder_evaluates_reports_and_predicts(project, tmp_path, run_cli):
    moved = shutil.move(the_run(project), tmp_path / "elsewhere")
    card = json.loads((moved / "card.json").read_text())
    code, out, err = run_cli("evaluate", str(moved), "--json")
    assert code == 0, err
    assert json.loads(out) == pytest.approx(card["metrics"]["test"], rel=1e-6)
    code, _, err = run_cli("report", str(moved))
    assert code == 0, err
    assert (moved / "report.html").is_file()
    code, out, err = run_cli("predict", str(moved), str(project / "data.csv"))
    assert code == 0, err
    assert len(out.splitlines()) == 1 + 400  # header, then one row per sample


def test_evaluate_refuses_a_csv_changed_since_training_naming_it(project, tmp_path, run_cli):
    moved = shutil.move(the_run(project), tmp_path / "elsewhere")
    data = project / "data.csv"
    lines = data.read_text().splitlines()
    lines[5] = lines[5].replace(lines[5].split(",")[0], "9.5", 1)  # one value of one row
    data.write_text("\n".join(lines) + "\n")
    code, _, err = run_cli("evaluate", str(moved))
    assert code == 2
    assert f"error: {data.resolve()}: changed since this run was trained" in err


def test_a_project_moved_whole_finds_its_data_beside_the_runs(project, tmp_path, run_cli):
    """The absolute path is gone; the path relative to the run folder still holds."""
    moved = shutil.move(project, tmp_path / "moved-project")
    run_dir = the_run(moved)
    card = json.loads((run_dir / "card.json").read_text())
    [record] = card["source"]["files"]
    assert record["key"] == "data.dataset.csv"
    assert record["relative"] == "../../data.csv"
    assert not (project / "data.csv").exists()
    code, out, err = run_cli("evaluate", str(run_dir), "--json")
    assert code == 0, err
    assert json.loads(out) == pytest.approx(card["metrics"]["test"], rel=1e-6)


def test_missing_data_is_an_error_naming_the_file(project, run_cli):
    (project / "data.csv").unlink()
    code, _, err = run_cli("evaluate", str(the_run(project)))
    assert code == 2
    assert f"error: data.dataset.csv: file not found: {(project / 'data.csv').resolve()}" in err


def test_stored_split_is_the_bundle_split_and_evaluate_matches_the_card(tmp_path):
    experiment = load_config(csv_experiment(tmp_path))
    run = api.train(experiment, out=tmp_path / "runs", write_report=False)
    bundle = plan(experiment).bundle
    stored = read_split(run.path)
    for part in ("train", "val", "test"):
        assert np.array_equal(getattr(stored, part), getattr(bundle.split, part))
    every = np.sort(np.concatenate([stored.train, stored.val, stored.test]))
    assert np.array_equal(every, np.arange(400))  # a partition of the source rows
    assert stored.samples_sha256 == run.card.source.samples_sha256
    rebuilt, _ = load_run_data(run.path)
    assert torch.equal(rebuilt.x_test, bundle.x_test)
    assert api.evaluate_run(run.path) == pytest.approx(run.test_metrics, rel=1e-6)


def test_the_data_is_split_as_stored_not_split_again(tmp_path):
    """Editing the split fractions in config.yaml changes nothing: the indices rule."""
    run = api.train(load_config(csv_experiment(tmp_path)), out=tmp_path, write_report=False)
    config = yaml.safe_load((run.path / "config.yaml").read_text())
    config["data"]["split"]["test"] = 0.5
    (run.path / "config.yaml").write_text(yaml.safe_dump(config))
    bundle, _ = load_run_data(run.path)
    assert len(bundle.x_test) == run.card.data.sizes["test"] == 80
    assert api.evaluate_run(run.path) == pytest.approx(run.test_metrics, rel=1e-6)


def test_a_run_without_a_stored_split_splits_again_from_config_and_seed(tmp_path):
    """Runs from before split.safetensors existed still evaluate, as they always did."""
    run = api.train(load_config(csv_experiment(tmp_path)), out=tmp_path, write_report=False)
    (run.path / SPLIT).unlink()
    assert api.evaluate_run(run.path) == pytest.approx(run.test_metrics, rel=1e-6)


def test_generated_samples_that_differ_from_the_split_s_are_refused():
    moons = MoonsConfig(num_samples=100)
    fractions = {"val": 0.1, "test": 0.2, "stratify": True, "seed": 0}
    split = make_bundle(moons.load(0), dataset="moons", **fractions).split
    with pytest.raises(NeuralabError, match=r"data\.dataset \(moons\).*samples differ"):
        make_bundle(moons.load(1), dataset="moons", **fractions, split=split)


def test_a_published_test_split_is_indexed_after_the_other_samples():
    rng = np.random.default_rng(0)
    raw = RawData(
        rng.normal(size=(40, 3)).astype(np.float32),
        np.arange(40) % 2,
        kind="tabular",
        task="classification",
        label_names=("a", "b"),
        x_test=rng.normal(size=(10, 3)).astype(np.float32),
        y_test=np.arange(10) % 2,
    )
    bundle = make_bundle(raw, dataset="fixed", val=0.25, test=0.2, stratify=True, seed=0)
    assert np.array_equal(bundle.split.test, np.arange(40, 50))
    assert len(bundle.split.train) + len(bundle.split.val) == 40
    again = make_bundle(
        raw, dataset="fixed", val=0.5, test=0.5, stratify=False, seed=3, split=bundle.split
    )
    assert torch.equal(again.x_test, bundle.x_test)
    assert torch.equal(again.x_train, bundle.x_train)


def test_fold_bundles_carry_their_split_and_the_folds_cover_every_sample():
    data = {"dataset": {"name": "moons", "num_samples": 60}, "split": {"folds": 3}}
    experiment = load_config({"data": data, "model": {"family": "mlp"}})
    tests = []
    for fold in range(3):
        split = experiment.data.split.model_copy(update={"fold": fold})
        bundle = load_data(experiment.data.model_copy(update={"split": split}), task=None, seed=0)
        assert not set(bundle.split.test) & (set(bundle.split.train) | set(bundle.split.val))
        tests.append(bundle.split.test)
    assert np.array_equal(np.sort(np.concatenate(tests)), np.arange(60))


def test_multitask_runs_store_their_split_and_rebuild_from_it(tmp_path):
    tasks = {"label": {"target": "label"}, "signal": {"target": "signal"}}
    data = {"dataset": {"csv": "data.csv"}}
    experiment = load_config(csv_experiment(tmp_path, data=data, tasks=tasks))
    run = api.train(experiment, out=tmp_path / "runs", write_report=False)
    bundle = plan(experiment).bundle
    assert np.array_equal(read_split(run.path).test, bundle.split.test)
    rebuilt, _ = load_run_data(run.path)
    assert torch.equal(rebuilt.y_test, bundle.y_test)


def test_a_text_file_is_fingerprinted_too(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("to be or not to be, that is the question. " * 30)
    (tmp_path / "lm.yaml").write_text(
        "data: {dataset: {name: text, path: corpus.txt, window: 32}}\n"
        "model: {family: charlm, body: gru, hidden_size: 8, num_layers: 1}\n"
        "train: {epochs: 1, batch_size: 8}\n"
    )
    run = api.train(tmp_path / "lm.yaml", out=tmp_path / "runs", write_report=False)
    assert api.evaluate_run(run.path) == pytest.approx(run.test_metrics, rel=1e-6)
    corpus.write_text(corpus.read_text().replace("question", "answer"))
    with pytest.raises(NeuralabError, match="changed since this run was trained") as caught:
        api.evaluate_run(run.path)
    assert caught.value.problems[0].where == str(corpus.resolve())
