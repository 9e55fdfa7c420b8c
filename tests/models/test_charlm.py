"""The charlm family: it learns the pydoc corpus below 3 bits per character, generates
reproducible text through `neuralab generate`, and reads a user's own text file."""

from __future__ import annotations

import math
import shutil

import pytest
import torch

import neuralab
from neuralab.models import CharLMConfig
from neuralab.runs import read_metrics
from neuralab.tasks import LanguageModel
from neuralab.train.loop import EpochProgress


def _experiment(**model) -> dict:
    return {
        "name": "lm",
        "seed": 0,
        "data": {"dataset": {"name": "pydoc", "window": 64, "max_chars": 40000}},
        "model": {"family": "charlm", "body": "gru", "hidden_size": 128, "num_layers": 1, **model},
        "optim": {"name": "adam", "lr": 0.01},
        "train": {"epochs": 3, "batch_size": 32, "grad_clip": 1.0},
    }


@pytest.fixture(scope="module")
def pydoc_run(tmp_path_factory):
    """A one-layer GRU on 40,000 characters for 3 epochs (~6 s), shared below."""
    return neuralab.train(_experiment(), out=tmp_path_factory.mktemp("runs"))


def test_bits_per_char_fall_below_3(pydoc_run):
    # A uniform guess over the corpus's ~90 characters costs log2(90) = 6.5 bits.
    vocab = len(pydoc_run.card.data.vocab)
    history = read_metrics(pydoc_run.path)
    assert history[0]["train_bits_per_char"] < math.log2(vocab)
    assert pydoc_run.test_metrics["bits_per_char"] < 3.0
    assert history[-1]["val_bits_per_char"] < history[0]["val_bits_per_char"]


def test_transformer_body_learns(tmp_path):
    run = neuralab.train(
        _experiment(body="transformer", embedding_size=64, hidden_size=128, num_heads=4),
        overrides=["train.epochs=2", "optim.lr=0.003"],
        out=tmp_path,
    )
    history = read_metrics(run.path)
    assert history[-1]["val_bits_per_char"] < 0.7 * math.log2(len(run.card.data.vocab))


def test_transformer_is_causal():
    model = CharLMConfig(body="transformer", embedding_size=16, num_heads=2).build(
        input_shape=(10,), num_outputs=7
    )
    model.eval()
    x = torch.randint(0, 7, (1, 10))
    changed = x.clone()
    changed[0, 6:] = (changed[0, 6:] + 1) % 7
    # positions before the change must not see it
    assert torch.allclose(model(x)[0, :6], model(changed)[0, :6], atol=1e-5)


def test_generate_cli_is_reproducible_and_continues_the_prompt(pydoc_run, run_cli, tmp_path):
    copy = shutil.copytree(pydoc_run.path, tmp_path / "run")
    (copy / "config.yaml").unlink()  # the card alone rebuilds the model
    args = ("generate", str(copy), "--prompt", "The ", "--length", "50", "--top-k", "5")
    code, first, _ = run_cli(*args)
    assert code == 0
    assert first.startswith("The ")
    assert len(first) == len("The ") + 50 + 1  # and a newline
    assert run_cli(*args)[1] == first
    assert run_cli(*args, "--seed", "1")[1] != first


def test_greedy_and_top_1_sampling_agree(pydoc_run):
    predictor = neuralab.load(pydoc_run.path)
    greedy = predictor.generate_text("def ", 40, temperature=0.0, top_k=None, seed=0)
    top_1 = predictor.generate_text("def ", 40, temperature=1.0, top_k=1, seed=3)
    assert greedy == top_1


def test_generate_names_unknown_prompt_characters(pydoc_run, run_cli):
    code, _, err = run_cli("generate", str(pydoc_run.path), "--prompt", "naïve ☃")
    assert code == 2
    assert err.startswith("error: --prompt: ")
    assert "'☃'" in err


def test_trains_on_a_users_text_file_relative_to_the_experiment(tmp_path):
    (tmp_path / "corpus.txt").write_text("to be or not to be, that is the question. " * 60)
    (tmp_path / "lm.yaml").write_text(
        "data: {text: corpus.txt, }\n"
        "model: {family: charlm, body: gru, hidden_size: 32, num_layers: 1}\n"
        "train: {epochs: 2, batch_size: 8}\n"
    )
    run = neuralab.train(tmp_path / "lm.yaml", overrides=["data.dataset.window=32"], out=tmp_path)
    assert run.card.data.dataset == "text"
    assert set(run.card.data.vocab) == set("to be or not to be, that is the question. ")


def test_text_too_short_and_family_mismatch_are_clear_errors(tmp_path):
    (tmp_path / "tiny.txt").write_text("hello")
    with pytest.raises(neuralab.NeuralabError, match="fewer than 10 windows"):
        neuralab.train(
            {"data": {"text": str(tmp_path / "tiny.txt")}, "model": {"family": "charlm"}}
        )
    with pytest.raises(neuralab.NeuralabError, match="use family: charlm") as caught:
        neuralab.train({"data": {"dataset": "pydoc"}, "model": {"family": "mlp"}}, out=tmp_path)
    assert caught.value.problems[0].where == "model.family"


def test_an_epoch_keeps_three_numbers_per_batch_and_scores_the_same():
    """Train metrics sum per-batch summaries instead of keeping (B, T, vocab) logits; the
    sums give exactly the scores computed from all the logits at once."""
    task = LanguageModel()
    logits, target = torch.randn(12, 7, 30), torch.randint(0, 30, (12, 7))
    progress = EpochProgress(batches=[])
    for rows in (slice(0, 5), slice(5, 12)):
        progress.record(logits[rows], target[rows], 0.0, task.summarize)
    assert [tuple(o.shape) for o in progress.outputs] == [(3,), (3,)]
    summed = task.summary_scores(torch.stack(progress.outputs).sum(dim=0))
    whole = {"loss": task.loss(logits, target).item(), **task.metrics(logits, target)}
    assert summed == pytest.approx(whole, rel=1e-5)
    assert whole["bits_per_char"] == pytest.approx(whole["loss"] / math.log(2))
