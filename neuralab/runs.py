"""Run directories: the durable record of a training run, and loading one back.

```
runs/<name>-<yyyymmdd-hhmmss>/
  config.yaml  card.json  metrics.jsonl
  split.safetensors                 which samples went to train/val/test (run_data.py)
  model.safetensors  curves.png     deep models (weights, learning curves)
  model.skops                       classical baselines (no pickle)
  code/<file>.py                    `family: module`: the user's network file, which a
                                    load executes only when trusted (`trust_code`)
```

A run is built in a hidden `.partial` folder and renamed into place only when complete,
so a failure or interrupt never leaves a half-written run directory behind.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import yaml
from pydantic import TypeAdapter
from safetensors.torch import load_file, save_file

from neuralab.baselines import Baseline, BaselineSpec, TaskName
from neuralab.card import Card, read_card
from neuralab.config import ModelConfig
from neuralab.data import DataMeta
from neuralab.data.files import encode_features, read_csv
from neuralab.data.images import is_image_path, read_image_inputs
from neuralab.data.text import EOS, PAD, decode, encode
from neuralab.errors import NeuralabError
from neuralab.models import CharLM, Seq2Seq
from neuralab.models.generative import Generative, generate
from neuralab.tasks import Prediction, task_from_card
from neuralab.train import predict_outputs
from neuralab.train.loop import TrainingInterrupted

WEIGHTS = "model.safetensors"
ESTIMATOR = "model.skops"
CONFIG = "config.yaml"
METRICS = "metrics.jsonl"
CURVES = "curves.png"
CHECKPOINTS = "checkpoints"


class NewRunDir:
    """A run directory under construction.

    Inside `with NewRunDir(out, name) as run:` files go to `run.path`, a hidden
    `.<name>-<timestamp>.partial` folder; on success it is renamed to
    `out/<name>-<timestamp>` (and `run.path` follows). On failure it is removed, except
    when training was interrupted with its state checkpointed: then it stays for
    `neuralab resume`. A reopened (resumed) partial folder is never removed.
    """

    def __init__(self, out: Path, name: str, *, existing: Path | None = None) -> None:
        self.out, self.existing = Path(out), existing
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.final_name = f"{name}-{stamp}"
        self.path = existing or self.out / f".{self.final_name}.partial"
        if existing is not None:
            self.final_name = existing.name.removeprefix(".").removesuffix(".partial")

    @classmethod
    def reopen(cls, partial: Path) -> NewRunDir:
        if not (partial.name.startswith(".") and partial.name.endswith(".partial")):
            raise NeuralabError(
                str(partial),
                "not an unfinished run",
                "resume a hidden .<name>-<time>.partial folder",
            )
        return cls(partial.parent, "", existing=partial)

    def __enter__(self) -> NewRunDir:
        if self.existing is None:
            self.out.mkdir(parents=True, exist_ok=True)
            self.path = _unique(self.path)
            self.path.mkdir()
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is not None:
            if self.existing is None and not _resumable(exc, self.path):
                shutil.rmtree(self.path, ignore_errors=True)
            return
        final = _unique(self.out / self.final_name)
        self.path.rename(final)
        self.path = final


def _resumable(error: BaseException | None, path: Path) -> bool:
    """Interrupted with a checkpoint saved: keep the folder so the run can resume."""
    return isinstance(error, TrainingInterrupted) and (path / "checkpoints").is_dir()


def unfinished_runs(out: Path) -> list[Path]:
    """Partial run folders under `out` that hold checkpoints, newest first."""
    if not out.is_dir():
        return []
    partials = [p for p in out.glob(".*.partial") if (p / "checkpoints").is_dir()]
    return sorted(partials, key=lambda p: p.stat().st_mtime, reverse=True)


def _unique(path: Path) -> Path:
    """`path`, or `path-2`, `path-3`... if taken (two runs in the same second)."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def save_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


def save_config(path: Path, resolved: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(resolved, sort_keys=False), encoding="utf-8")


def save_json_lines(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def save_model(run_dir: Path, model: torch.nn.Module | Baseline) -> None:
    """Weights as safetensors for deep models, the estimator via skops for baselines."""
    if isinstance(model, Baseline):
        model.save(run_dir / ESTIMATOR)
    else:
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(run_dir / WEIGHTS))


def read_metrics(run_dir: Path) -> list[dict[str, float]]:
    lines = (Path(run_dir) / METRICS).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line]


class Predictor:
    """A trained model loaded from its run directory, ready for raw (unscaled) inputs.

    Example:
        >>> predictor = Predictor.load("runs/digits-cnn-20261122-120000")  # doctest: +SKIP
        >>> predictor.predict(images).labels[:3]  # doctest: +SKIP
        ['0', '4', '9']
    """

    runs_loops = True  # generation and decoding loops run (not so in an exported graph)

    def __init__(self, model: torch.nn.Module | Baseline, meta: DataMeta, card: Card) -> None:
        self.model, self.meta, self.card = model, meta, card
        self.task = task_from_card(card)

    @classmethod
    def load(cls, run_dir: str | Path, *, trust_code: bool = False) -> Predictor:
        """The run's model with its weights; a run of the user's own network (`family:
        module`) is built from its copy in `code/`, which is executed only when trusted."""
        run_dir = Path(run_dir)
        card = read_card(run_dir)
        meta = card.data
        spec = TypeAdapter(ModelConfig).validate_python(card.model)
        spec = spec.in_run(run_dir, trust_code=trust_code)
        model: torch.nn.Module | Baseline
        if isinstance(spec, BaselineSpec):
            # a baseline learns classes, values or clusters, which its task says
            learned = cast(TaskName, card.task)
            model = Baseline.load(run_dir / ESTIMATOR, task=learned, num_outputs=meta.num_outputs)
        else:
            model = spec.build(input_shape=meta.input_shape, num_outputs=meta.num_outputs)
            model.load_state_dict(load_file(str(run_dir / WEIGHTS)))
            model.eval()
        return cls(model, meta, card)

    @property
    def calibration_temperature(self) -> float:
        """What logits are divided by before the softmax: fitted by `neuralab calibrate`."""
        calibration = self.card.calibration
        return calibration.temperature if calibration is not None else 1.0

    def outputs(self, x: np.ndarray) -> torch.Tensor:
        """Raw model outputs for raw inputs of shape (N, *input_shape) or (N, features)."""
        x = np.asarray(x, dtype=np.float32)
        expected = int(np.prod(self.meta.input_shape))
        if x.ndim < 2 or int(np.prod(x.shape[1:])) != expected:
            raise NeuralabError(
                "input",
                f"samples have shape {x.shape[1:]}, the model expects "
                f"{self.meta.input_shape} ({expected} values each)",
            )
        x = x.reshape(len(x), *self.meta.input_shape)
        return predict_outputs(self.model, self.meta.scale_inputs(x))

    def predict(self, x) -> Prediction:
        """Predictions for raw samples (for seq2seq: a list of source strings)."""
        return self.task.predict(self, x)

    def samples(self, n: int, *, seed: int = 0) -> np.ndarray:
        """`n` new samples in the data's raw units, (n, *input_shape), from a model that
        generates (a GAN, a variational autoencoder); the same seed gives the same samples."""
        if not isinstance(self.model, Generative):
            raise NeuralabError(
                self.card.name,
                f"{self.card.family} runs do not generate samples",
                "train a gan or a variational autoencoder to generate samples, a charlm for text",
            )
        return generate(self.model, self.meta, n, seed=seed)

    def translate(self, texts: list[str]) -> list[str]:
        """Seq2seq: decode each source string (beam width as configured)."""
        width = self.meta.input_shape[0]
        rows = np.full((len(texts), width), PAD, dtype=np.int64)
        for i, text in enumerate(texts):
            ids = encode(text, self.meta.vocab, where=f"input {i + 1}")
            if len(ids) >= width:
                raise NeuralabError(
                    f"input {i + 1}",
                    f"{len(ids)} symbols, but the model reads at most {width - 1}",
                    "shorten it, or train on longer sequences",
                )
            rows[i, : len(ids) + 1] = [*ids, EOS]
        source, model = torch.as_tensor(rows), cast(Seq2Seq, self.model)
        tokens = torch.cat([model.decode(source[i : i + 256]) for i in range(0, len(rows), 256)])
        return [decode(row, self.meta.vocab) for row in tokens.tolist()]

    def generate_text(
        self, prompt: str, length: int, *, temperature: float, top_k: int | None, seed: int
    ) -> str:
        """A language model's continuation of `prompt`, `length` characters long."""
        if not self.task.writes_text:
            raise NeuralabError("--prompt", f"a {self.task.name} model does not write text")
        if not prompt:
            raise NeuralabError("--prompt", "empty", "give at least one character to start from")
        ids = torch.as_tensor(encode(prompt, self.meta.vocab, where="--prompt"))
        generator = torch.Generator().manual_seed(seed)
        out = cast(CharLM, self.model).generate(
            ids, length, temperature=temperature, top_k=top_k, generator=generator
        )
        return prompt + "".join(self.meta.vocab[i] for i in out.tolist())

    def predict_path(self, path: str | Path) -> Prediction:
        """Predictions for the samples `read_inputs` reads from `path`; for image files,
        each row names its file."""
        path = Path(path)
        if self._reads_images(path):
            names, x = read_image_inputs(path, self.meta.input_shape)
            return dataclasses.replace(self.predict(x), names=names)
        return self.predict(self.read_inputs(path))

    def _reads_images(self, path: Path) -> bool:
        return self.meta.kind == "image" and len(self.meta.input_shape) == 3 and is_image_path(path)

    def read_inputs(self, path: str | Path):
        """Samples from a .npy file or a CSV (by column name for models trained on a CSV);
        for seq2seq, a text file with one source per line; for image models, an image file
        or a folder of them, converted and resized to the model's input shape."""
        path = Path(path)
        if self._reads_images(path):
            return read_image_inputs(path, self.meta.input_shape)[1]
        if not path.is_file():
            raise NeuralabError(str(path), "file not found", "check the path")
        if self.task.takes_text:
            lines = path.read_text(encoding="utf-8").splitlines()
            return [line for line in lines if line.strip()]
        if path.suffix == ".npy":
            try:
                return np.load(path, allow_pickle=False)
            except ValueError as error:  # object arrays need pickle, which is never allowed
                raise NeuralabError(
                    str(path), f"cannot read: {error}", "save a plain numeric array"
                ) from None
        if path.suffix != ".csv":
            raise NeuralabError(str(path), f"cannot read '{path.suffix}' files", "use .csv or .npy")
        if self.meta.features:
            return encode_features(read_csv(path, where=str(path)), self.meta.features)
        return _numeric_csv(path)


def _numeric_csv(path: Path) -> np.ndarray:
    """A CSV of numbers, one sample per row; a header row is skipped if present."""
    rows: list[tuple[int, list[str]]] = []
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.reader(file)
        rows = [(reader.line_num, row) for row in reader if row]
    if rows and not _all_numbers(rows[0][1]):
        rows = rows[1:]
    if not rows:
        raise NeuralabError(str(path), "no samples", "one sample per row, comma-separated")
    width = len(rows[0][1])
    for line, row in rows:
        if len(row) != width:
            raise NeuralabError(
                str(path), f"line {line} has {len(row)} values, line {rows[0][0]} has {width}"
            )
        if not _all_numbers(row):
            raise NeuralabError(str(path), f"line {line} has a non-numeric value")
    return np.array([row for _, row in rows], dtype=np.float32)


def _all_numbers(row: list[str]) -> bool:
    try:
        [float(v) for v in row]
    except ValueError:
        return False
    return True
