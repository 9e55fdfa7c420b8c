"""The seq2seq family on the builtin `reverse` task: it learns, beam search finds likelier
outputs than greedy decoding, and a loaded run translates strings."""

from __future__ import annotations

import shutil

import pytest
import torch
from torch.nn import functional as F

import neuralab
from neuralab.data.text import EOS, PAD, ReverseConfig, decode
from neuralab.models import Seq2SeqConfig


@pytest.fixture(scope="module")
def reverse_run(tmp_path_factory):
    """Reverse strings of 2-5 letters: one short run (~8 s) shared by the tests below."""
    return neuralab.train(
        {
            "name": "rev",
            "seed": 0,
            "data": {
                "dataset": {
                    "name": "reverse",
                    "num_samples": 1500,
                    "min_length": 2,
                    "max_length": 5,
                }
            },
            "model": {"family": "seq2seq", "hidden_size": 64, "beam_width": 3},
            "optim": {"name": "adam", "lr": 0.01},
            "train": {"epochs": 8, "batch_size": 32, "grad_clip": 1.0},
        },
        out=tmp_path_factory.mktemp("runs"),
    )


def test_reverse_data_targets_are_the_sources_backwards():
    raw = ReverseConfig(num_samples=50, min_length=2, max_length=6).load(seed=1)
    for source, target in zip(raw.x, raw.y, strict=True):
        assert decode(target, raw.vocab) == decode(source, raw.vocab)[::-1]
        assert EOS in source.tolist()


def test_learns_to_reverse(reverse_run):
    # Chance exact match is about 8^-4 at length 4; 8 epochs reach ~0.9 (measured).
    assert reverse_run.card.task == "seq2seq"
    assert reverse_run.test_metrics["exact_match"] > 0.6
    assert reverse_run.test_metrics["token_accuracy"] > 0.85


def _log_prob(model, source: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Each output's log-probability under the model, up to and including its end marker."""
    after_end = (tokens == EOS).int().cumsum(1) - (tokens == EOS).int() > 0
    tokens = tokens.masked_fill(after_end, PAD)
    with torch.no_grad():
        log_p = F.log_softmax(model.forward_train(source, tokens)[0], dim=-1)
    picked = log_p.gather(-1, tokens[..., None])[..., 0]
    return picked.masked_fill(tokens == PAD, 0.0).sum(1)


def test_beam_search_finds_likelier_outputs_than_greedy(reverse_run):
    predictor = neuralab.load(reverse_run.path)
    model = predictor.model.eval()
    source = torch.as_tensor(
        ReverseConfig(num_samples=300, min_length=2, max_length=5).load(seed=9).x
    )
    greedy, beam = model.decode(source, 1), model.decode(source, 4)
    assert torch.equal(greedy, model(source).argmax(-1))
    assert _log_prob(model, source, beam).mean() >= _log_prob(model, source, greedy).mean()


def test_a_loaded_run_translates_without_its_config(reverse_run, tmp_path):
    copy = shutil.copytree(reverse_run.path, tmp_path / "run")
    (copy / "config.yaml").unlink()
    texts = neuralab.load(copy).predict(["abc", "hgfe", "jj"]).texts
    assert sum(t == s[::-1] for t, s in zip(texts, ["abc", "hgfe", "jj"], strict=True)) >= 2


def test_predict_cli_reads_a_text_file_and_names_a_bad_line(reverse_run, run_cli, tmp_path):
    sources = tmp_path / "sources.txt"
    sources.write_text("abc\nbad!\n", encoding="utf-8")
    code, _, err = run_cli("predict", str(reverse_run.path), str(sources))
    assert code == 2
    assert err.startswith("error: input 2: 1 character(s) the model never saw: '!'")
    sources.write_text("abcd\n", encoding="utf-8")
    code, out, _ = run_cli("predict", str(reverse_run.path), str(sources))
    assert code == 0
    assert out.splitlines()[0] == "prediction"


def test_needs_token_data(tmp_path):
    from tests.conftest import tiny_experiment

    experiment = tiny_experiment(model={"family": "seq2seq"})
    with pytest.raises(neuralab.NeuralabError, match="use dataset: reverse"):
        neuralab.train(experiment, out=tmp_path)
    assert not any(tmp_path.iterdir())


def test_lstm_cell_and_no_attention_build_and_run():
    for config in (Seq2SeqConfig(cell="lstm"), Seq2SeqConfig(attention=False, beam_width=2)):
        model = config.build(input_shape=(6,), num_outputs=9)
        source = torch.tensor([[3, 4, 5, EOS, PAD, PAD]])
        assert model(source).shape == (1, 6, 9)
        assert model.decode(source).shape == (1, 6)
