"""Experiment files: defaults, overrides, and one clear line per mistake."""

from __future__ import annotations

import pytest

from neuralab.config import Experiment, load_config
from neuralab.errors import NeuralabError
from tests.conftest import EXAMPLES, tiny_experiment


def problems(source, overrides=()) -> list[str]:
    with pytest.raises(NeuralabError) as caught:
        load_config(source, overrides)
    return caught.value.lines()


def test_issue_example_loads_with_every_section():
    experiment = load_config(EXAMPLES / "digits-cnn.yaml")
    assert experiment.model.family == "cnn"
    assert experiment.model.channels == (32, 64)
    assert experiment.optim.name == "adam"
    assert experiment.schedule.name == "cosine"
    assert experiment.train.early_stopping.monitor == "val_accuracy"
    assert experiment.data.split.test == 0.2


def test_defaults_fill_everything_not_given():
    experiment = load_config({"data": {"dataset": "moons"}, "model": {"family": "mlp"}})
    resolved = experiment.resolved()
    assert resolved["optim"] == {
        "name": "adam",
        "lr": 0.001,
        "betas": [0.9, 0.999],
        "weight_decay": 0.0,
        "param_groups": {},
    }
    assert resolved["data"]["dataset"] == {"name": "moons", "num_samples": 1000, "noise": 0.2}
    assert resolved["train"]["epochs"] == 20
    assert resolved["schedule"] == {"name": "none"}
    # the resolved config loads back to the same experiment
    assert Experiment.model_validate(resolved) == experiment


def test_overrides_apply_before_validation():
    experiment = load_config(
        EXAMPLES / "digits-cnn.yaml",
        ["optim.lr=0.01", "model.channels=[8, 16]", "data.dataset.name=mnist1d"],
    )
    assert experiment.optim.lr == 0.01
    assert experiment.model.channels == (8, 16)
    assert experiment.data.dataset.name == "mnist1d"


def test_optimizer_without_name_keeps_the_default_optimizer():
    experiment = load_config(tiny_experiment(), ["optim.lr=0.05"])
    assert experiment.optim.name == "adam"
    assert experiment.optim.lr == 0.05


def test_override_is_validated_like_the_file():
    assert problems(tiny_experiment(), ["optim.lr=-1"]) == [
        "optim.lr: Input should be greater than 0, got -1"
    ]


def test_unknown_key_suggests_the_closest():
    [line] = problems(tiny_experiment(optim={"name": "adam", "lrr": 0.1}))
    assert line.startswith("optim.lrr: unknown key (did you mean 'lr'?")


def test_unknown_key_inside_a_model_family_names_the_user_key():
    [line] = problems(tiny_experiment(model={"family": "cnn", "chanels": [8]}))
    assert line.startswith("model.chanels: unknown key (did you mean 'channels'?")


def test_wrong_type_names_key_and_value():
    [line] = problems(tiny_experiment(train={"epochs": "many"}))
    assert line.startswith("train.epochs: Input should be a valid integer")
    assert "'many'" in line


def test_split_fractions_that_do_not_fit():
    [line] = problems(
        tiny_experiment(data={"dataset": "digits", "split": {"val": 0.5, "test": 0.5}})
    )
    assert line == (
        "data.split: val + test must be below 1 to leave training data, but got val=0.5, test=0.5"
    )


def test_unknown_dataset_and_family_list_the_valid_ones():
    lines = problems(tiny_experiment(data={"dataset": "digitz"}, model={"family": "lstmm"}))
    assert lines[0].startswith("data.dataset.name: unknown name 'digitz' (did you mean 'digits'?")
    assert lines[1].startswith(
        "model.family: unknown family 'lstmm' (valid: autoencoder, charlm, cnn,"
    )
    assert "mlp" in lines[1]


def test_every_mistake_is_reported_at_once():
    lines = problems(tiny_experiment(seed="x", train={"epochs": 0, "batch_size": -1}))
    assert [line.split(":")[0] for line in lines] == ["seed", "train.epochs", "train.batch_size"]


def test_missing_required_section():
    assert problems({"data": {"dataset": "digits"}}) == ["model: required key is missing"]


def test_malformed_yaml_gives_line_and_column(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ndata:\n  dataset: digits\n model: {family: mlp}\n")
    [line] = problems(path)
    assert line.startswith(f"{path}:4:2: malformed YAML")


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "experiment file is empty"), ("- a\n- b\n", "an experiment must be a mapping")],
)
def test_empty_or_non_mapping_file(tmp_path, text, message):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    [line] = problems(path)
    assert message in line


def test_missing_file():
    assert problems("no/such.yaml") == ["no/such.yaml: experiment file not found (check the path)"]


def test_bad_override_syntax():
    [line] = problems(tiny_experiment(), ["optim.lr"])
    assert line.startswith("--set: 'optim.lr' is not key=value")


def test_relative_csv_path_is_read_from_the_experiment_folder():
    experiment = load_config(EXAMPLES / "csv-regression.yaml")
    assert experiment.data.dataset.csv == EXAMPLES / "data" / "houses.csv"


def test_config_is_frozen():
    experiment = load_config(tiny_experiment())
    with pytest.raises(ValueError, match="frozen"):
        experiment.seed = 3


TEXT_SHORTHAND = "data:\n  dataset: {text: corpus.txt, window: 64}\nmodel: {family: charlm}\n"


@pytest.mark.parametrize(
    ("yaml_text", "overrides"),
    [
        (TEXT_SHORTHAND, ()),
        ("data: {text: corpus.txt}\nmodel: {family: charlm}\n", ["data.dataset.window=64"]),
        (
            "data: {dataset: digits}\nmodel: {family: charlm}\n",
            ["data.dataset={text: corpus.txt, window: 64}"],
        ),
        (TEXT_SHORTHAND, ["data.dataset={text: corpus.txt, window: 64}"]),
    ],
)
def test_text_shorthand_with_window_in_the_file_or_set(tmp_path, yaml_text, overrides):
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml_text)
    dataset = load_config(path, overrides).data.dataset
    assert (dataset.name, dataset.path, dataset.window) == (
        "text",
        str(tmp_path / "corpus.txt"),
        64,
    )
