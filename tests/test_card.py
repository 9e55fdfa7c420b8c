"""card.json: written and read back equal, versioned, refused by key when invalid, and
never left half-written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import neuralab
from neuralab.card import (
    CARD,
    Calibration,
    Diagnostics,
    InitFrom,
    Privacy,
    Source,
    SourceFile,
    Transfer,
    read_card,
    write_card,
)
from neuralab.errors import NeuralabError
from tests.conftest import make_card, tiny_experiment

EVERY_SECTION = {
    "diagnostics": Diagnostics(warnings=["gradients vanish"], gradient_norms={"a": [0.1, 0.2]}),
    "transfer": Transfer(
        init_from=InitFrom(
            run="runs/pretrain", loaded=["a"], rebuilt=["head"], skipped=[], unused=["b"]
        ),
        trainable_parameters=10,
        frozen_parameters=48,
        frozen=["a"],
        lr_factors={"a": 0.1},
        unfreeze_at_epoch=None,
    ),
    "privacy": Privacy(
        epsilon_target=8.0,
        epsilon_spent=7.5,
        delta=1e-5,
        max_grad_norm=1.0,
        noise_multiplier=0.9,
        sample_rate=0.01,
        accountant="prv",
    ),
    "confusion_matrix": [[1, 0], [1, 0]],
    "source": Source(
        files=[
            SourceFile(key="data.dataset.path", path="/d/a.csv", relative="../a.csv", sha256="f")
        ],
        samples_sha256="e",
    ),
    "calibration": Calibration(
        temperature=1.5,
        val_ece_before=0.1,
        val_ece_after=0.05,
        test_ece_before=0.12,
        test_ece_after=0.06,
    ),
}


def written(tmp_path: Path, card_json: dict) -> Path:
    (tmp_path / CARD).write_text(json.dumps(card_json), encoding="utf-8")
    return tmp_path


def card_json(tmp_path: Path, **fields) -> dict:
    """A valid card as card.json holds it."""
    write_card(tmp_path, make_card(**fields))
    return json.loads((tmp_path / CARD).read_text(encoding="utf-8"))


def test_a_card_with_every_section_reads_back_equal(tmp_path):
    card = make_card(**EVERY_SECTION)
    write_card(tmp_path, card)
    assert read_card(tmp_path) == card
    saved = json.loads((tmp_path / CARD).read_text(encoding="utf-8"))
    assert saved["format"] == 1
    assert saved["versions"]["scikit-learn"] == "1.6.0"  # the key as it always was
    assert saved["transfer"]["unfreeze_at_epoch"] is None  # inside a section, None is kept


def test_absent_sections_are_absent_from_the_file(tmp_path):
    saved = card_json(tmp_path)
    assert not set(EVERY_SECTION) & set(saved)
    assert read_card(tmp_path).calibration is None


def test_a_card_from_before_formats_loads_as_format_1(tmp_path):
    old = card_json(tmp_path, **EVERY_SECTION)
    del old["format"]
    card = read_card(written(tmp_path, old))
    assert card.format == 1
    assert card == make_card(**EVERY_SECTION)


def test_a_card_of_an_unknown_format_is_refused(tmp_path):
    future = {**card_json(tmp_path), "format": 2}
    with pytest.raises(NeuralabError, match=r"card\.json: format: 2, but this neuralab reads"):
        read_card(written(tmp_path, future))


def test_a_wrong_typed_key_is_named(tmp_path):
    card = card_json(tmp_path)
    card["metrics"]["test"]["accuracy"] = "high"
    with pytest.raises(NeuralabError) as error:
        read_card(written(tmp_path, card))
    [line] = error.value.lines()
    assert "card.json: metrics.test.accuracy: " in line
    assert "'high'" in line


def test_missing_unknown_and_nested_keys_are_named_all_at_once(tmp_path):
    card = card_json(tmp_path)
    del card["seed"]
    card["colour"] = "blue"
    card["data"]["input_shape"] = ["four"]
    with pytest.raises(NeuralabError) as error:
        read_card(written(tmp_path, card))
    keys = sorted(line.split(": ")[1] for line in error.value.lines())
    assert keys == ["colour", "data.input_shape.0", "seed"]


def test_a_card_that_is_not_json_is_named(tmp_path):
    (tmp_path / CARD).write_text('{"name": ', encoding="utf-8")
    with pytest.raises(NeuralabError, match=r"card\.json: not valid JSON"):
        read_card(tmp_path)


def test_a_failed_write_leaves_the_old_card_whole(tmp_path, monkeypatch):
    write_card(tmp_path, make_card())
    before = (tmp_path / CARD).read_bytes()
    real_write_text = Path.write_text

    def disk_full_halfway(path: Path, text: str, *args, **kwargs) -> int:
        real_write_text(path, text[: len(text) // 2], *args, **kwargs)
        raise OSError("no space left on device")

    monkeypatch.setattr(Path, "write_text", disk_full_halfway)
    with pytest.raises(OSError, match="no space left"):
        write_card(tmp_path, make_card(**EVERY_SECTION))
    monkeypatch.undo()
    assert (tmp_path / CARD).read_bytes() == before
    assert [path.name for path in tmp_path.iterdir()] == [CARD]  # no temporary file left


def test_a_failed_serialisation_writes_nothing(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("cannot serialise")

    monkeypatch.setattr("neuralab.card.json.dumps", broken)
    with pytest.raises(ValueError, match="cannot serialise"):
        write_card(tmp_path, make_card())
    assert list(tmp_path.iterdir()) == []


def test_a_trained_run_card_is_typed_and_an_old_one_still_predicts(tmp_path):
    run = neuralab.train(tiny_experiment(), out=tmp_path, write_report=False)
    assert run.card == read_card(run.path)
    assert run.card.family == "mlp"
    assert run.card.data.label_names == tuple("0123456789")
    assert run.test_metrics == run.card.metrics["test"]
    old = json.loads((run.path / CARD).read_text(encoding="utf-8"))
    del old["format"]
    written(run.path, old)
    predictor = neuralab.load(run.path)
    assert predictor.card == run.card
    assert len(predictor.predict([[0.0] * 64]).labels) == 1


BEFORE_FORMAT = Path(__file__).parent / "data" / "runs_before_format"


@pytest.mark.parametrize("name", ["old-mlp", "old-multitask"])
def test_a_run_trained_before_the_card_had_a_format_still_evaluates(tmp_path, name):
    """Folders written by neuralab 0.1.0 before issue 17 (card.json, config.yaml and the
    weights, copied from real runs): task names the data kind, no task settings, heads
    under `tasks`."""
    run = shutil.copytree(BEFORE_FORMAT / name, tmp_path / name)
    card = read_card(run)
    assert card.format == 1
    metrics = neuralab.evaluate_run(run)
    assert metrics == pytest.approx(card.metrics["test"], rel=1e-5)


def test_a_language_model_trained_before_the_card_had_a_format_still_writes_text(tmp_path):
    run = shutil.copytree(BEFORE_FORMAT / "old-lm", tmp_path / "old-lm")
    predictor = neuralab.load(run)
    assert predictor.meta.task == "next_token"
    text = predictor.generate_text("The ", 20, temperature=1.0, top_k=None, seed=0)
    assert text.startswith("The ")
    assert len(text) == 24
