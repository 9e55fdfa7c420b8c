"""The `neuralab` command: each verb a thin wrapper over the public API.

A `NeuralabError` becomes `error: <where>: <what> (<hint>)` on stderr and exit code 2;
`--debug` shows the traceback instead.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import warnings
from pathlib import Path
from typing import Annotated

import torch
import typer
import yaml
from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn
from rich.table import Table

import neuralab
from neuralab import api
from neuralab.baselines import BaselineSpec, describe_baselines
from neuralab.card import CARD, read_card
from neuralab.compare import Comparison
from neuralab.config import load_config
from neuralab.cross_validation import CrossValidation, train_experiment
from neuralab.data import describe_datasets
from neuralab.data.download import download
from neuralab.errors import NeuralabError
from neuralab.inspection import Inspection, inspect_experiment
from neuralab.lr_find import find_lr
from neuralab.models import EVERY_FAMILY, describe_models
from neuralab.report.figures import sample_grid
from neuralab.runs import Predictor
from neuralab.train import ProgressBar, distributed
from neuralab.train.diagnostics import TrainingWarning
from neuralab.train.loop import TrainingInterrupted
from neuralab.tune import tune

app = typer.Typer(
    help="Train, evaluate and compare deep-learning models from one experiment file.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# Pipes and logs get a wide table instead of rich's 80-column default.
console = Console() if Console().is_terminal else Console(width=120)
error_console = Console(stderr=True)  # progress bars, which pipes of stdout should not see

Out = Annotated[Path, typer.Option("--out", help="Folder to write run directories in.")]
Overrides = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a key, e.g. --set optim.lr=0.01 (repeatable)."),
]

TrustCode = Annotated[
    bool,
    typer.Option(
        "--trust-code",
        help="Load a run that carries its network's code (family: module): this executes it.",
    ),
]


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    threads: Annotated[
        int, typer.Option("--threads", min=1, help="CPU threads for PyTorch's kernels.")
    ] = 1,
) -> None:
    """neuralab: a deep-learning workbench."""
    # One thread by default: the models here are small enough that intra-op threads buy
    # nothing (measured equal or slower on 2 idle cores), and on shared cores OpenMP
    # spin-waiting made them 2-8x slower. Larger models on free cores: raise --threads.
    torch.set_num_threads(threads)


@app.command()
def quickstart(out: Out = Path("runs")) -> None:
    """Compare classical baselines, an MLP and a CNN on the embedded digits."""
    comparison = neuralab.quickstart(out=out, callbacks=[ProgressBar("val_accuracy")])
    _print_leaderboard(comparison, title="digits: test split (360 images never used in training)")


@app.command("compare")
def compare_command(
    experiment: Annotated[Path, typer.Argument(help="Experiment YAML file (data, training).")],
    models: Annotated[
        str, typer.Option("--models", help="Comma-separated families, e.g. logreg,svm,rf,mlp,cnn.")
    ] = "",
    vary: Annotated[
        list[str] | None,
        typer.Option("--vary", help="KEY=V1,V2,... one run per value; repeat for a grid."),
    ] = None,
    seeds: Annotated[
        int | None, typer.Option("--seeds", help="Seeds per model (default 3).")
    ] = None,
    set_: Overrides = None,
    out: Out = Path("runs"),
) -> None:
    """Train several models (or --vary settings) x seeds on the same split; print a leaderboard."""
    spec = load_config(experiment, set_ or [])
    comparison = neuralab.compare(
        experiment,
        models=[m for m in models.split(",") if m],
        vary=vary or [],
        overrides=set_ or [],
        seeds=seeds,
        out=out,
        callbacks=[ProgressBar("val_loss")],
    )
    kind = "setting" if vary else "model"
    folds = spec.data.split.folds
    runs = f"{folds} folds" if folds else f"{3 if seeds is None else seeds} seed(s)"
    _print_leaderboard(comparison, title=f"{spec.name}: test split, {runs} per {kind}")


def _print_leaderboard(comparison: Comparison, *, title: str) -> None:
    table = Table(title=title)
    metric, secondary = comparison.metric, comparison.secondary
    for column in (
        "model",
        f"test {metric}",
        secondary.replace("_", "-"),
        "params",
        "train s",
        "infer ms/1k",
        "vs leader",
    ):
        table.add_column(column, justify="left" if column in ("model", "vs leader") else "right")
    leader = comparison.rows[0].model
    for row in comparison.rows:
        score = f"{row.mean:.4f}" + (f" ± {row.std:.4f}" if len(row.values) > 1 else "")
        table.add_row(
            row.model,
            score,
            f"{statistics.fmean(row.secondary):.4f}",
            f"{row.num_parameters:,}",
            f"{row.train_seconds:.2f}",
            f"{row.inference_ms_per_1000:.1f}",
            row.verdict(leader),
        )
    console.print(table)
    console.print(f"significance: {comparison.test}", soft_wrap=True)
    console.print(f"leaderboard: {comparison.path / 'leaderboard.md'}", soft_wrap=True)
    for family, runs in comparison.runs.items():
        for run in runs:
            console.print(f"{family}: {run.path}", soft_wrap=True)


@app.command("train")
def train_command(
    experiment: Annotated[
        Path | None, typer.Argument(help="Experiment YAML file (omit with --resume).")
    ] = None,
    set_: Overrides = None,
    resume: Annotated[
        Path | None, typer.Option("--resume", help="Continue an interrupted run's folder.")
    ] = None,
    out: Out = Path("runs"),
    nproc: Annotated[
        int, typer.Option("--nproc", min=1, help="Data-parallel processes here (via torchrun).")
    ] = 1,
    trust_code: TrustCode = False,
) -> None:
    """Train one experiment (or --resume one); print its test metrics and run directory."""
    if resume is not None:
        if nproc > 1:
            raise NeuralabError("--nproc", "a run resumes in one process", "drop --nproc")
        run = api.resume(resume, callbacks=[ProgressBar("val_loss")], trust_code=trust_code)
    elif experiment is None:
        raise NeuralabError("train", "no experiment file given", "neuralab train EXPERIMENT.yaml")
    else:
        spec = load_config(experiment, set_ or [])  # config errors before any process starts
        if nproc > 1:
            if spec.data.split.folds:
                raise NeuralabError(
                    "--nproc", "data.split.folds trains its folds in one process", "drop --nproc"
                )
            if isinstance(spec.model, BaselineSpec):
                raise NeuralabError(
                    "--nproc", "classical baselines fit in one process", "drop --nproc"
                )
            raise typer.Exit(_launch(nproc, experiment, set_ or [], out))
        stopping = spec.train.early_stopping
        progress = ProgressBar(stopping.monitor if stopping else "val_loss")
        result = train_experiment(spec, out=out, callbacks=[progress])
        if isinstance(result, CrossValidation):
            _print_folds(result)
            return
        run = result
        if not distributed.current().writes:
            return  # rank 0 reports for all
    _print_metrics(f"{run.card.name}: test metrics", run.test_metrics)
    console.print(f"run: {run.path}", soft_wrap=True)


def _launch(nproc: int, experiment: Path, overrides: list[str], out: Path) -> int:
    if distributed.current().distributed:
        raise NeuralabError("--nproc", "already running under torchrun", "drop --nproc")
    argv = ["--threads", str(torch.get_num_threads()), "train", str(experiment), "--out", str(out)]
    for override in overrides:
        argv += ["--set", override]
    return distributed.launch(nproc, argv)


@app.command("tune")
def tune_command(
    experiment: Annotated[Path, typer.Argument(help="Experiment YAML file with a search: block.")],
    trials: Annotated[
        int | None, typer.Option("--trials", min=1, help="Finished trials the study should hold.")
    ] = None,
    storage: Annotated[
        str | None, typer.Option("--storage", help="SQLAlchemy URL (default: a journal file).")
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Processes on this machine.")
    ] = 1,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Seconds after which no trial starts.")
    ] = None,
    set_: Overrides = None,
    out: Out = Path("runs"),
) -> None:
    """Search hyperparameters with Optuna (rerun to resume); print the best trial."""
    study = tune(
        experiment,
        overrides=set_ or [],
        trials=trials,
        storage=storage,
        workers=workers,
        timeout=timeout,
        out=out,
    )
    counts = ", ".join(f"{n} {state}" for state, n in study.counts.items())
    table = Table("key", "best value", title=f"best of {sum(study.counts.values())} trials")
    for key, value in study.best_params.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)
    console.print(f"trials: {counts}")
    console.print(f"best: trial {study.best_number}, {study.metric} {study.best_value:.4f}")
    console.print(f"best.yaml: {study.path / 'best.yaml'}", soft_wrap=True)
    where = study.best_run or f"in trials/ on {study.best_host}, which ran it"
    console.print(f"best run: {where}", soft_wrap=True)
    console.print(f"study: {study.path}", soft_wrap=True)


@app.command("inspect")
def inspect_command(
    experiment: Annotated[Path, typer.Argument(help="Experiment YAML file.")],
    set_: Overrides = None,
) -> None:
    """Check an experiment without training: layers, sizes, one batch, data, resolved config."""
    inspection = inspect_experiment(load_config(experiment, set_ or []))
    _print_inspection(inspection)


def _print_inspection(inspection: Inspection) -> None:
    spec, meta = inspection.experiment, inspection.bundle.meta
    console.print(f"[bold]{spec.name}[/bold]: {spec.model.family} on {meta.dataset}")
    if inspection.estimator is not None:
        console.print(f"estimator: {inspection.estimator}", soft_wrap=True)
        stored = inspection.num_parameters
        console.print(f"stored numbers after fitting the training split: {stored:,}")
    else:
        _print_layers(inspection)
    sizes = ", ".join(f"{name} {size:,}" for name, size in meta.sizes.items())
    learns = ""
    task = inspection.task
    if task is not None and task.data_task != meta.task:  # e.g. an autoencoder on labels
        learns = f" ({task.labels_use}: the run learns {task.name})"
    console.print(
        f"data: {meta.kind}, {meta.task}{learns}, input shape {meta.input_shape}; {sizes}"
    )
    counts = inspection.class_counts()
    if counts is not None:
        table = Table("class", *counts, title="samples per class", title_justify="left")
        for index, label in enumerate(meta.label_names):
            table.add_row(label, *(f"{split[index]:,}" for split in counts.values()))
        console.print(table)
    console.print("resolved config:")
    text = yaml.safe_dump(spec.resolved(), sort_keys=False, default_flow_style=None)
    console.print(text.rstrip(), markup=False)
    console.print(f"inspected in {inspection.seconds:.2f} s; nothing was written")


def _print_layers(inspection: Inspection) -> None:
    table = Table("layer", "type", "output shape", "params", "trainable")
    for layer in inspection.layers:
        shape = "" if layer.output_shape is None else str(list(layer.output_shape))
        trainable = {None: "", True: "yes", False: "no"}[layer.trainable]
        table.add_row(layer.name, layer.kind, shape, f"{layer.parameters:,}", trainable)
    console.print(table)
    batch = inspection.experiment.train.batch_size
    activations = (inspection.activation_bytes_per_batch or 0) / 2**20
    console.print(
        f"parameters: {inspection.num_parameters:,} ({inspection.num_trainable:,} trainable)\n"
        f"multiply-adds per sample: {inspection.multiply_adds_per_sample:,}\n"
        f"activation memory per batch of {batch}: {activations:.2f} MiB"
        " (tensors kept for the backward pass)\n"
        f"loss of the first batch before training: {inspection.initial_loss:.4f}"
        + _reference_note(inspection)
    )
    if inspection.without_gradient:
        missing = ", ".join(inspection.without_gradient)
        console.print(f"[yellow]parameters without a gradient: {missing}[/yellow]")


def _reference_note(inspection: Inspection) -> str:
    """The first batch's loss under a trivial model (an all-zero output), to judge by."""
    if inspection.reference_loss is None:
        return ""
    trivial, loss = inspection.reference_loss
    return f" ({trivial} scores {loss:.4f})"


@app.command("lr-find")
def lr_find_command(
    experiment: Annotated[Path, typer.Argument(help="Experiment YAML file.")],
    set_: Overrides = None,
    start_lr: Annotated[float, typer.Option("--start-lr", help="First rate tried.")] = 1e-7,
    end_lr: Annotated[float, typer.Option("--end-lr", help="Last rate tried.")] = 10.0,
    steps: Annotated[int, typer.Option("--steps", min=5, help="Training batches.")] = 200,
    out: Out = Path("runs"),
) -> None:
    """Learning-rate range test: plot loss against an exponentially rising rate; suggest one."""
    spec = load_config(experiment, set_ or [])
    sweep, folder = find_lr(spec, out=out, start_lr=start_lr, end_lr=end_lr, num_steps=steps)
    console.print(f"suggested optim.lr: {sweep.suggestion:.3g} ({sweep.rule})", soft_wrap=True)
    console.print(f"swept {len(sweep.lrs)} batches from {sweep.lrs[0]:.1g} to {sweep.lrs[-1]:.3g}")
    console.print(f"plot: {folder / 'lr_find.png'}", soft_wrap=True)
    hint = f"neuralab train {experiment} --set optim.lr={sweep.suggestion:.3g}"
    console.print(f"train with it: {hint}", soft_wrap=True)


@app.command("evaluate")
def evaluate_command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    trust_code: TrustCode = False,
) -> None:
    """Recompute a run's test-split metrics from its folder: its split, its data, its weights."""
    metrics = api.evaluate_run(run_dir, trust_code=trust_code)
    if as_json:
        print(json.dumps(metrics, indent=2))
    else:
        _print_metrics(f"{read_card(run_dir).name}: test metrics", metrics)


@app.command("predict")
def predict_command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    input_path: Annotated[
        Path,
        typer.Argument(
            metavar="INPUT",
            help="Samples: .csv or .npy (seq2seq: .txt, one a line; images: a file or folder).",
        ),
    ],
    output: Annotated[
        Path | None, typer.Option("--output", help="Write the CSV here instead of stdout.")
    ] = None,
    trust_code: TrustCode = False,
) -> None:
    """Predict labels (with class probabilities) or values for new samples."""
    predictor = Predictor.load(run_dir, trust_code=trust_code)
    prediction = predictor.predict_path(input_path)
    text = prediction.to_csv()
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {len(prediction)} predictions to {output}")


@app.command("generate")
def generate_command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory of a generative model.")],
    prompt: Annotated[str, typer.Option("--prompt", help="Text to continue.")] = "\n",
    length: Annotated[int, typer.Option("--length", min=1, help="Characters to add.")] = 300,
    temperature: Annotated[
        float, typer.Option("--temperature", min=0.0, help="Below 1 safer, above wilder; 0 greedy.")
    ] = 0.8,
    top_k: Annotated[
        int | None, typer.Option("--top-k", min=1, help="Sample among the k likeliest only.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seeds the sampling.")] = 0,
    n: Annotated[int, typer.Option("--n", min=1, help="Samples to draw (GAN, VAE).")] = 64,
    output: Annotated[
        Path | None,
        typer.Option("--output", help="Grid PNG to write (default: RUN/generated-seedS.png)."),
    ] = None,
    trust_code: TrustCode = False,
) -> None:
    """Generate: text from a language model, an image grid from a GAN or a VAE."""
    predictor = Predictor.load(run_dir, trust_code=trust_code)
    if predictor.task.writes_text:
        text = predictor.generate_text(
            prompt, length, temperature=temperature, top_k=top_k, seed=seed
        )
        sys.stdout.write(text + "\n")
        return
    # samples() names the families that generate when this run's cannot.
    samples = predictor.samples(n, seed=seed)
    path = output or run_dir / f"generated-seed{seed}.png"
    path.write_bytes(sample_grid(samples, predictor.meta.kind))
    console.print(f"wrote {n} samples to {path}", soft_wrap=True)


@app.command("explain")
def explain_command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    input_path: Annotated[
        Path | None,
        typer.Argument(metavar="INPUT", help="Samples: .csv or .npy (not with --global)."),
    ] = None,
    method: Annotated[
        str, typer.Option("--method", help="integrated_gradients, saliency or occlusion.")
    ] = "integrated_gradients",
    target: Annotated[
        str | None, typer.Option("--target", help="Class to explain (default: the predicted).")
    ] = None,
    global_: Annotated[
        bool,
        typer.Option("--global", help="Permutation importance of each column on the test split."),
    ] = False,
    out: Out = Path("runs"),
    trust_code: TrustCode = False,
) -> None:
    """Attribute each sample's prediction to its inputs (Captum), or with --global rank the
    input columns by permutation importance; write PNG and JSON."""
    if global_:
        if input_path is not None:
            raise NeuralabError("--global", "ranks columns on the test split; it takes no INPUT")
        folder = api.importance(run_dir, out, trust_code=trust_code)
        console.print(f"importance: {folder}", soft_wrap=True)
        return
    if input_path is None:
        raise NeuralabError("INPUT", "missing: samples to explain", "or --global for a ranking")
    from neuralab.trust.explain import write_explanation  # Captum loads only when asked for

    predictor = Predictor.load(run_dir, trust_code=trust_code)
    samples = predictor.read_inputs(input_path)
    folder = write_explanation(predictor, samples, method=method, target=target, out=out)
    console.print(f"explanation: {folder}", soft_wrap=True)


@app.command("calibrate")
def calibrate_command(
    run_dir: Annotated[Path, typer.Argument(help="A classifier's run.")],
    trust_code: TrustCode = False,
) -> None:
    """Fit temperature scaling on the validation split; predict and evaluate then use it."""
    result = api.calibrate(run_dir, trust_code=trust_code)
    table = Table("expected calibration error", "before", "after", title="calibration")
    table.add_row("val", f"{result.val_ece_before:.4f}", f"{result.val_ece_after:.4f}")
    table.add_row("test", f"{result.test_ece_before:.4f}", f"{result.test_ece_after:.4f}")
    console.print(table)
    console.print(f"temperature: {result.temperature:.4f} (saved in {run_dir / CARD})")


@app.command("resume")
def resume_command(
    run_dir: Annotated[
        Path | None, typer.Argument(help="An interrupted run's .partial folder (default: newest).")
    ] = None,
    out: Out = Path("runs"),
    trust_code: TrustCode = False,
) -> None:
    """Continue an interrupted run from its newest valid checkpoint."""
    path = run_dir if run_dir is not None else api.latest_unfinished(out)
    run = api.resume(path, callbacks=[ProgressBar("val_loss")], trust_code=trust_code)
    _print_metrics(f"{run.card.name}: test metrics", run.test_metrics)
    console.print(f"run: {run.path}", soft_wrap=True)


@app.command("report")
def report_command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    explain: Annotated[
        bool, typer.Option("--explain", help="Add attributions and permutation importance.")
    ] = False,
    trust_code: TrustCode = False,
) -> None:
    """(Re)write a run's self-contained report.html and print its path."""
    path = api.report(run_dir, explain=explain, trust_code=trust_code)
    console.print(f"report: {path}", soft_wrap=True)


@app.command("export")
def export_command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory of a network.")],
    format_: Annotated[str, typer.Option("--format", help="onnx or torchscript.")] = "onnx",
    trust_code: TrustCode = False,
) -> None:
    """Export a run's network to ONNX or TorchScript, checked on its test split."""
    from neuralab.export import export

    exported = export(run_dir, format_, trust_code=trust_code)  # type: ignore[arg-type]
    console.print(
        f"wrote {exported.path} (outputs within {exported.max_abs_difference:.2g} of PyTorch "
        f"on {exported.num_samples} test samples)",
        soft_wrap=True,
    )


# With --workers N, uvicorn starts N processes that each build the app; they read the
# settings from this variable, set by `serve` below.
SERVE_SETTINGS_VARIABLE = "NEURALAB_SERVE_SETTINGS"


@app.command("serve")
def serve_command(
    runs_dir: Annotated[Path, typer.Argument(help="Folder of run directories to serve.")],
    host: Annotated[str, typer.Option(help="Address to bind; non-loopback needs --token.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8000,
    token: Annotated[
        str | None, typer.Option(help="Require 'Authorization: Bearer TOKEN' on /v1.")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
    batching: Annotated[
        bool, typer.Option("--batching/--no-batching", help="Micro-batch concurrent requests.")
    ] = True,
    max_batch: Annotated[int, typer.Option(min=1, help="Most samples per batch.")] = 64,
    max_wait_ms: Annotated[
        float, typer.Option(min=0.0, max=1000.0, help="Batching window per request.")
    ] = 0.0,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="Largest request body.")] = 1_000_000,
    runtime: Annotated[
        str, typer.Option(help="torch, or onnx (needs `neuralab export` and the [onnx] extra).")
    ] = "torch",
    trust_code: TrustCode = False,
) -> None:
    """Serve the runs in RUNS_DIR: JSON API under /v1, dashboard at /, /metrics."""
    from neuralab.serve import ServeSettings
    from neuralab.serve.server import run, settings_json

    if runtime not in ("torch", "onnx"):
        raise NeuralabError("--runtime", f"'{runtime}' is not a runtime", "valid: onnx, torch")
    settings = ServeSettings(
        runs_dir=runs_dir,
        token=token,
        batching=batching,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        max_body_bytes=max_body_bytes,
        runtime=runtime,
        trust_code=trust_code,
    )
    os.environ[SERVE_SETTINGS_VARIABLE] = json.dumps(
        {**settings_json(settings), "threads": torch.get_num_threads()}
    )
    console.print(
        f"serving {runs_dir} at http://{host}:{port}/ (API: /v1/models, docs: /docs)",
        soft_wrap=True,
    )
    run(settings, host=host, port=port, workers=workers, worker_app="neuralab.cli:worker_app")


def worker_app():
    """The app of one `serve --workers N` process, from the settings `serve` left."""
    from neuralab.serve import ServeSettings, create_app

    values = json.loads(os.environ[SERVE_SETTINGS_VARIABLE])
    torch.set_num_threads(values.pop("threads"))
    return create_app(ServeSettings(**{**values, "runs_dir": Path(values["runs_dir"])}))


datasets_app = typer.Typer(no_args_is_help=False)
app.add_typer(datasets_app, name="datasets")


@datasets_app.callback(invoke_without_command=True)
def datasets(context: typer.Context) -> None:
    """List the datasets an experiment can name in `data.dataset`; `download` fetches one."""
    if context.invoked_subcommand is None:
        _print_listing("dataset", describe_datasets())


@datasets_app.command("download")
def datasets_download(
    name: Annotated[str, typer.Argument(help="mnist, fashion_mnist, cifar10 or cifar100.")],
    to: Annotated[
        Path | None, typer.Option("--to", help="Folder for the files (default: data/NAME).")
    ] = None,
    mirror: Annotated[
        str | None,
        typer.Option(
            "--mirror",
            envvar="NEURALAB_DATASETS_MIRROR",
            help="Base URL serving the same file names instead of the official host.",
        ),
    ] = None,
) -> None:
    """Fetch a public dataset's official files, checked against their published sha256."""
    folder = Path("data") / name if to is None else to
    with Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), console=error_console
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def show(file: str, done: int, total: int | None) -> None:
            if file not in tasks:
                tasks[file] = bar.add_task(file, total=total)
            bar.update(tasks[file], completed=done)

        written = download(name, folder, mirror=mirror, progress=show)
    for path in written:
        console.print(f"wrote {path}", soft_wrap=True)


@app.command()
def models() -> None:
    """List the model families an experiment can name in `model.family`, with options."""
    options = {cls.model_fields["family"].default: _options(cls) for cls in EVERY_FAMILY}
    rows = [
        (name, f"{text}\n[dim]{options[name]}[/dim]")
        for name, text in (*describe_models(), *describe_baselines())
    ]
    _print_listing("family", rows)


def _options(cls: type[BaseModel]) -> str:
    """`key=default` for every option of a config class."""
    return ", ".join(
        f"{name}={'(required)' if field.is_required() else _yaml_value(field.default)}"
        for name, field in cls.model_fields.items()
        if name != "family"
    )


def _yaml_value(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _print_listing(kind: str, rows: list[tuple[str, str]]) -> None:
    table = Table(kind, "description", box=None)
    for name, description in rows:
        table.add_row(name, description)
    console.print(table)


def _print_folds(cv: CrossValidation) -> None:
    metrics = list(cv.summary)
    table = Table("fold", *metrics, title=f"test metrics, {len(cv.runs)}-fold cross-validation")
    for k, run in enumerate(cv.runs):
        table.add_row(str(k), *(f"{run.test_metrics[m]:.4f}" for m in metrics))
    table.add_row("mean ± std", *(f"{s['mean']:.4f} ± {s['std']:.4f}" for s in cv.summary.values()))
    console.print(table)
    console.print(f"cross-validation: {cv.path}", soft_wrap=True)


def _print_metrics(title: str, metrics: dict[str, float]) -> None:
    table = Table("metric", "value", title=title, min_width=len(title) + 4)
    for name, value in metrics.items():
        table.add_row(name, f"{value:.4f}")
    console.print(table)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Training warnings as one plain line; anything else as Python shows it."""
    if issubclass(category, TrainingWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning


def _global_options_first(argv: list[str]) -> tuple[list[str], bool]:
    """Move `--debug` and `--threads N` before the verb, so they work anywhere on the line."""
    front, rest, items = [], [], iter(argv)
    for arg in items:
        if arg == "--debug" or arg.startswith("--threads="):
            front.append(arg)
        elif arg == "--threads":
            front += [arg, next(items, "")]
        else:
            rest.append(arg)
    return [*front, *rest], "--debug" in front


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app, turning user errors into one line each."""
    argv = sys.argv[1:] if argv is None else argv
    argv, debug = _global_options_first(argv)
    warnings.showwarning = _show_warning
    code = _run(argv, debug=debug)
    if distributed.current().distributed:
        _leave_process(code)
    sys.exit(code)


def _run(argv: list[str], *, debug: bool) -> int:
    """The exit code of the command `argv`."""
    try:
        app(args=argv, prog_name="neuralab")  # exits itself; usage errors exit 2
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except TrainingInterrupted as stopped:
        print(f"interrupted: {stopped}", file=sys.stderr)
        return 130
    except NeuralabError as error:
        if debug:
            raise
        for line in error.lines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    return 0


def _leave_process(code: int) -> None:
    """A process torchrun started leaves without C++'s exit-time destructors: a finished
    rank aborted in them in 7 of 10 two-process runs here ("terminate called without an
    active exception", SIGABRT, no Python frame), failing a run that had completed."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
