"""CSV files: column types, one-hot encoding, task inference, and bad files."""

from __future__ import annotations

import numpy as np
import pytest

from neuralab.data import DataConfig, Feature, load_data
from neuralab.data.files import CSVConfig, Table, encode_features, read_csv
from neuralab.errors import NeuralabError


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def table(rows=40):
    lines = ["size,colour,count,label"]
    for i in range(rows):
        lines.append(
            f"{i * 0.5},{['red', 'green', 'blue'][i % 3]},{i % 4},{'yes' if i % 2 else 'no'}"
        )
    return "\n".join(lines) + "\n"


def test_numeric_and_categorical_columns(tmp_path):
    raw = CSVConfig(csv=write(tmp_path, table()), target="label").load(seed=0)
    kinds = [(f.name, f.kind, f.categories) for f in raw.features]
    assert kinds == [
        ("size", "numeric", ()),
        ("colour", "categorical", ("blue", "green", "red")),
        ("count", "numeric", ()),
    ]
    assert raw.x.shape == (40, 5)
    assert raw.x[0].tolist() == [0.0, 0.0, 0.0, 1.0, 0.0]  # size 0, red, count 0
    assert raw.task == "classification"
    assert raw.label_names == ("no", "yes")


def test_one_hot_columns_are_not_standardised(tmp_path):
    config = DataConfig.model_validate(
        {"dataset": {"csv": str(write(tmp_path, table())), "target": "label"}}
    )
    bundle = load_data(config, task=None, seed=0)
    onehot = bundle.x_train[:, 1:4]
    assert set(onehot.unique().tolist()) == {0.0, 1.0}


@pytest.mark.parametrize(
    ("target", "task"),
    [("size", "regression"), ("count", "classification"), ("colour", "classification")],
)
def test_target_type_decides_the_task(tmp_path, target, task):
    raw = CSVConfig(csv=write(tmp_path, table()), target=target).load(seed=0)
    assert raw.task == task


def test_stated_task_overrides_inference(tmp_path):
    raw = CSVConfig(csv=write(tmp_path, table()), target="count").load(seed=0, task="regression")
    assert raw.task == "regression"
    assert raw.y.shape == (40, 1)


def test_regression_on_text_target_is_refused(tmp_path):
    with pytest.raises(NeuralabError, match="regression needs a numeric target"):
        CSVConfig(csv=write(tmp_path, table()), target="colour").load(seed=0, task="regression")


def test_missing_values_name_the_lines(tmp_path):
    text = "a,b,y\n1,2,0\n,3,1\n2,nan,0\n3,4,1\n" + "".join(f"{i},{i},{i % 2}\n" for i in range(20))
    with pytest.raises(NeuralabError) as caught:
        CSVConfig(csv=write(tmp_path, text), target="y").load(seed=0)
    assert str(caught.value) == (
        "data.csv: column 'a' has 1 missing or non-numeric value(s) at line(s) 3 "
        "(fill or drop those rows)"
    )


def test_a_typo_in_a_numeric_column_is_reported_not_made_categorical(tmp_path):
    text = "a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(30)) + "1O,1\n"
    with pytest.raises(NeuralabError, match=r"column 'a' .* line\(s\) 32"):
        CSVConfig(csv=write(tmp_path, text), target="y").load(seed=0)


def test_absent_target_lists_the_columns(tmp_path):
    with pytest.raises(NeuralabError) as caught:
        CSVConfig(csv=write(tmp_path, table()), target="price").load(seed=0)
    assert str(caught.value) == (
        "data.dataset.target: column 'price' not in data.csv (columns: size, colour, count, label)"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "data.csv is empty"),
        ("a,b\n", "data.csv is empty"),
        ("a,b\n1,2\n3\n", "line 3 has 1 fields, the header has 2"),
    ],
)
def test_malformed_files(tmp_path, text, message):
    with pytest.raises(NeuralabError, match=message):
        read_csv(write(tmp_path, text), where="data.dataset.csv")


def test_missing_file(tmp_path):
    with pytest.raises(NeuralabError, match="file not found"):
        CSVConfig(csv=tmp_path / "none.csv", target="y").load(seed=0)


def test_unseen_category_encodes_as_zeros(tmp_path):
    raw = CSVConfig(csv=write(tmp_path, table()), target="label").load(seed=0)
    new = Table("new.csv", {"size": ["1"], "colour": ["purple"], "count": ["2"]}, [2])
    encoded = encode_features(new, raw.features)
    assert np.array_equal(encoded, [[1.0, 0.0, 0.0, 0.0, 2.0]])


def test_line_numbers_count_blank_lines(tmp_path):
    text = "a,y\n\n" + "".join(f"{i},{i % 2}\n" for i in range(20)) + "\nx,1\n"
    with pytest.raises(NeuralabError, match=r"column 'a' .* at line\(s\) 24 "):
        CSVConfig(csv=write(tmp_path, text), target="y").load(seed=0)


def test_empty_target_cells_are_named(tmp_path):
    text = "a,y\n" + "".join(f"{i},{i * 1.5}\n" for i in range(20)) + "3,\n"
    with pytest.raises(NeuralabError, match=r"target column 'y' is empty at line\(s\) 22"):
        CSVConfig(csv=write(tmp_path, text), target="y").load(seed=0)


def test_every_missing_column_is_named_at_once(tmp_path):
    (tmp_path / "new.csv").write_text("area,colour\n1.0,red\n")
    features = (
        Feature("area", "numeric"),
        Feature("rooms", "numeric"),
        Feature("colour", "categorical", ("red", "blue")),
        Feature("age", "numeric"),
    )
    table = read_csv(tmp_path / "new.csv", where="new.csv")
    with pytest.raises(NeuralabError, match="columns 'rooms', 'age' missing"):
        encode_features(table, features)
