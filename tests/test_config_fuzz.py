"""Property: whatever YAML a user writes, loading it raises nothing but NeuralabError."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuralab.config import load_config
from neuralab.errors import NeuralabError

KEYS = [
    "name",
    "seed",
    "task",
    "data",
    "model",
    "optim",
    "schedule",
    "train",
    "dataset",
    "split",
    "family",
    "channels",
    "lr",
    "epochs",
    "early_stopping",
    "monitor",
    "csv",
    "target",
    "val",
    "test",
    "hidden_sizes",
    "regularization",
    "l2",
    "nme",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["mlp", "cnn", "digits", "adam", "cosine", "csv"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), children, max_size=5),
    ),
    max_leaves=20,
)


def loads_or_refuses(tmp_path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(path)
    except NeuralabError as error:
        refusal = error.lines()
    else:
        refusal = ["accepted"]
    assert all(line.strip() for line in refusal)  # every refusal says something


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6))
def test_structured_documents(tmp_path, document):
    loads_or_refuses(tmp_path, yaml.safe_dump(document))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(alphabet=st.sampled_from(list("abc:{}[]-,'\" \n\t#&*!|>%@`0.9")), max_size=60))
def test_arbitrary_text(tmp_path, text):
    loads_or_refuses(tmp_path, text)
