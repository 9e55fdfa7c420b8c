"""CSV files: column types, one-hot encoding, task inference, and bad files."""

from __future__ import annotations

import csv
import importlib.util

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


def reference_encoding(path):
    """The encoding worked out with the csv module, cell by cell: numeric columns as floats,
    text columns one-hot over their sorted values; the target's classes sorted."""
    with path.open(newline="") as file:
        header, *rows = list(csv.reader(file))
    columns = {name: [row[i].strip() for row in rows] for i, name in enumerate(header)}
    blocks = []
    for name in header[:-1]:
        values = columns[name]
        try:
            blocks.append(np.array([float(v) for v in values], dtype=np.float32)[:, None])
        except ValueError:
            categories = sorted(set(values))
            blocks.append(
                np.eye(len(categories), dtype=np.float32)[[categories.index(v) for v in values]]
            )
    labels = sorted(set(columns[header[-1]]))
    y = np.array([labels.index(v) for v in columns[header[-1]]])
    return np.concatenate(blocks, axis=1), y, tuple(labels)


def test_a_large_file_encodes_as_the_csv_module_reads_it(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "large.csv"
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["height", "city", "score", "size", "count", "label"])
        for i in range(20_000):
            writer.writerow(
                [
                    f"{rng.normal(170, 10):.3f}",
                    ["Paris", "Lyon, France", " Nice ", "Saint-Étienne"][i % 4],  # quoted, padded
                    f"{rng.uniform(-1, 1):.2e}",
                    ["small", "large"][int(rng.integers(2))],
                    int(rng.integers(0, 1000)),
                    ["b", "a", "c"][i % 3],
                ]
            )
    raw = CSVConfig(csv=path, target="label").load(seed=0)
    x, y, labels = reference_encoding(path)
    assert [f.kind for f in raw.features] == [
        "numeric",
        "categorical",
        "numeric",
        "categorical",
        "numeric",
    ]
    assert raw.features[1].categories == ("Lyon, France", "Nice", "Paris", "Saint-Étienne")
    assert np.array_equal(raw.x, x)
    assert np.array_equal(raw.y, y)
    assert raw.label_names == labels


TRICKY = (
    'a, b ,y\n\n1.5,"red, dark",yes\n  2 ,NA,no\n3,"two\nlines",yes\n\n4e1, blue ,no\n-.5,red,yes\n'
)


def test_both_readers_give_the_same_table(tmp_path, monkeypatch):
    pytest.importorskip("pyarrow")
    path = write(tmp_path, TRICKY)
    columnar = read_csv(path, where="csv")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    rows = read_csv(path, where="csv")
    assert list(columnar.columns) == list(rows.columns) == ["a", "b", "y"]
    for name in rows.columns:
        one, other = columnar.column(name), rows.column(name)
        assert one.distinct() == other.distinct()
        assert np.array_equal(one.numbers, other.numbers, equal_nan=True)
        assert np.array_equal(one.missing, other.missing)
    assert rows.column("b").distinct() == ["red, dark", "NA", "two\nlines", "blue", "red"]
    assert columnar.line_numbers(np.arange(5)) == rows.line_numbers(np.arange(5)) == [3, 4, 6, 8, 9]


def test_a_ragged_row_in_a_large_file_names_its_line(tmp_path):
    text = "a,b,y\n" + "".join(f"{i},{i},{i % 2}\n" for i in range(5000)) + "1,2\n"
    with pytest.raises(NeuralabError, match="line 5002 has 2 fields, the header has 3"):
        read_csv(write(tmp_path, text), where="data.dataset.csv")


def write_parquet(path, columns):
    pa = pytest.importorskip("pyarrow")
    parquet = pytest.importorskip("pyarrow.parquet")
    parquet.write_table(pa.table(columns), path)
    return path


def test_parquet_reads_like_the_same_csv(tmp_path):
    csv_path = write(tmp_path, table())
    with csv_path.open(newline="") as file:
        header, *rows = list(csv.reader(file))
    columns = {
        "size": [float(row[0]) for row in rows],  # typed columns, as Parquet keeps them
        "colour": [row[1] for row in rows],
        "count": [int(row[2]) for row in rows],
        "label": [row[3] for row in rows],
    }
    parquet_path = write_parquet(tmp_path / "data.parquet", columns)
    from_parquet = CSVConfig(csv=parquet_path, target="label").load(seed=0)
    from_csv = CSVConfig(csv=csv_path, target="label").load(seed=0)
    assert from_parquet.features == from_csv.features
    assert np.array_equal(from_parquet.x, from_csv.x)
    assert np.array_equal(from_parquet.y, from_csv.y)
    counted = CSVConfig(csv=parquet_path, target="count").load(seed=0)
    assert (counted.task, counted.label_names) == ("classification", ("0", "1", "2", "3"))


def test_a_missing_parquet_value_names_its_row(tmp_path):
    path = write_parquet(
        tmp_path / "data.parquet", {"a": [1.0, None, 3.0] * 10, "y": [0, 1, 0] * 10}
    )
    with pytest.raises(NeuralabError, match=r"column 'a' has 10 .* at row\(s\) 2, 5, 8"):
        CSVConfig(csv=path, target="y").load(seed=0)


def test_parquet_without_pyarrow_says_what_to_install(tmp_path, monkeypatch):
    path = tmp_path / "data.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(NeuralabError, match=r"needs pyarrow \(pip install 'neuralab\[tables\]'"):
        read_csv(path, where="data.dataset.csv")
