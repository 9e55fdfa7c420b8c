"""The public workflow: `train` an experiment into a run directory, `load` it back,
`evaluate` it on its test split.

Deep families train with `train.fit`; classical baselines are fitted by scikit-learn on
the same `DataBundle`. Both end in the same run directory and card.
"""

from __future__ import annotations

import platform
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import torch

from neuralab.baselines import Baseline, BaselineSpec
from neuralab.calibration import expected_calibration_error, fit_temperature
from neuralab.card import (
    Calibration,
    Card,
    Diagnostics,
    Privacy,
    Source,
    Transfer,
    Versions,
    read_card,
    write_card,
)
from neuralab.config import Experiment, load_config
from neuralab.data import DataBundle
from neuralab.errors import NeuralabError
from neuralab.lr_find import plot_found_lr, with_found_lr
from neuralab.models import GANConfig
from neuralab.plan import Plan, plan
from neuralab.report import plot_curves, write_run_report
from neuralab.report.samples import SampleGrid
from neuralab.run_data import (
    load_run_data,
    save_split,
    saved_experiment,
    source_record,
)
from neuralab.runs import (
    CHECKPOINTS,
    CONFIG,
    CURVES,
    METRICS,
    NewRunDir,
    Predictor,
    save_config,
    save_json_lines,
    save_model,
    unfinished_runs,
)
from neuralab.tasks import (
    Classification,
    Summarized,
    Task,
    task_from_card,
    task_record,
)
from neuralab.train import (
    Callback,
    EarlyStopping,
    MetricsLog,
    count_parameters,
    evaluate,
    fit,
)
from neuralab.train.device import compile_model, make_placement, uncompile
from neuralab.train.diagnostics import GradientHealth, NonFiniteGuard, TrainingWarning
from neuralab.train.distributed import SINGLE, Shard, process_group, share
from neuralab.train.loop import (
    Checkpointing,
    num_batches,
    predict_outputs,
    score,
)
from neuralab.train.optim import resolved_lr
from neuralab.train.privacy import make_private, quiet
from neuralab.train.state import StopFlag, latest_checkpoint, stop_on_signals
from neuralab.train.steps import StepSettings
from neuralab.transfer import (
    Unfreeze,
    freeze,
    load_pretrained,
    parameter_groups,
    trainable_summary,
)
from neuralab.version import __version__


@dataclass(frozen=True)
class Run:
    """A finished run: where it lives and what it measured."""

    path: Path
    card: Card

    @property
    def test_metrics(self) -> dict[str, float]:
        return self.card.metrics["test"]


@dataclass
class FitRecord:
    """How fitting went, whichever kind of model was fitted."""

    history: list[dict[str, float]] = field(default_factory=list)
    epochs_run: int = 1
    best_epoch: int | None = None
    seconds: float = 0.0
    diagnostics: Diagnostics | None = None
    transfer: Transfer | None = None
    privacy: Privacy | None = None  # the DP budget and what training spent of it


def train(
    experiment: Experiment | str | Path | dict[str, Any],
    *,
    overrides: list[str] | tuple[str, ...] = (),
    out: str | Path = "runs",
    callbacks: Sequence[Callback] = (),
    write_report: bool = True,
) -> Run:
    """Train one experiment and write its run directory.

    Args:
        experiment: An `Experiment`, a YAML path, or the experiment as a dict.
        overrides: `key.path=value` strings applied before validation.
        out: Folder the run directory is created in.
        callbacks: Extra observers of deep training, e.g. a `ProgressBar`.
        write_report: Write `report.html` (most of a tiny run's time; tuning trials skip it).
    """
    if not isinstance(experiment, Experiment):
        experiment = load_config(experiment, overrides)
    planned = plan(experiment)  # every data and config error before any file is written
    # every rank sweeps the same data from the same seed, so all find the same rate
    experiment, sweep = with_found_lr(experiment, planned.bundle, planned.task)
    with process_group() as shard:
        if not shard.writes:  # a helper rank under torchrun: trains its shard, writes nothing
            stopper = planned.early_stopping()
            observers: list[Callback] = [stopper] if stopper else []
            _fit_deep(experiment, planned, stopper, observers, None, None, shard)
            run_dir = Path(share(None, shard))  # shared once rank 0 has written its card
            return Run(run_dir, read_card(run_dir))
        with NewRunDir(Path(out), experiment.name) as run:
            # samples handed over from Python travel into the run, which then reads them there
            data = experiment.data.carry_into(run.path)
            experiment = experiment.model_copy(update={"data": data})
            save_config(run.path / CONFIG, experiment.resolved())
            experiment = experiment.model_copy(
                update={"model": experiment.model.carry_into(run.path)}
            )
            plot_found_lr(sweep, run.path, title=experiment.name)
            card = _train_into(
                run.path,
                experiment,
                planned,
                callbacks,
                resume=None,
                shard=shard,
                write_report=write_report,
            )
        share(str(run.path), shard)
    return Run(run.path, card)


def resume(
    run_dir: str | Path, *, callbacks: Sequence[Callback] = (), trust_code: bool = False
) -> Run:
    """Continue an interrupted or killed run from its newest valid checkpoint.

    The result equals an uninterrupted run's: same weights, bit for bit, on the same
    machine and versions. Damaged checkpoints are skipped with a `TrainingWarning` saying
    why; with none valid this fails rather than silently starting again. A run of the
    user's own network (`family: module`) resumes from its copy in `code/`, which it
    executes, so it needs `trust_code`.
    """
    run = NewRunDir.reopen(Path(run_dir))
    experiment = saved_experiment(run.path, trust_code=trust_code)
    _, saved, skipped = latest_checkpoint(run.path / CHECKPOINTS)
    for line in skipped:
        warnings.warn(line, TrainingWarning, stacklevel=2)
    planned = plan(experiment)
    with run:
        card = _train_into(run.path, experiment, planned, callbacks, resume=saved)
    return Run(run.path, card)


def latest_unfinished(out: str | Path = "runs") -> Path:
    """The newest interrupted run under `out`, for `neuralab resume` without a path."""
    partials = unfinished_runs(Path(out))
    if not partials:
        raise NeuralabError(
            str(out), "no interrupted run to resume", "pass the run folder, or --out where it lives"
        )
    return partials[0]


def _train_into(
    run_dir: Path,
    experiment: Experiment,
    planned: Plan,
    callbacks: Sequence[Callback],
    *,
    resume: dict[str, Any] | None,
    shard: Shard = SINGLE,
    write_report: bool = True,
) -> Card:
    """Fit, then write weights, split, card, metrics, curves and report into `run_dir`."""
    bundle, task, stopper = planned.bundle, planned.task, planned.early_stopping()
    model: torch.nn.Module | Baseline
    if isinstance(experiment.model, BaselineSpec):
        model, record = _fit_baseline(experiment, task, bundle)
        save_json_lines(run_dir / METRICS, record.history)
    else:
        health = GradientHealth(loss_should_fall=task.loss_should_fall)
        observers = [
            NonFiniteGuard(),
            health,
            MetricsLog(run_dir / METRICS),
            *([stopper] if stopper else []),
            *_sample_grids(experiment, run_dir, bundle),
            *callbacks,
        ]
        model, record = _fit_deep(experiment, planned, stopper, observers, run_dir, resume, shard)
        record.diagnostics = Diagnostics(warnings=health.messages, gradient_norms=health.norms)
        plot_curves(
            record.history,
            task.curves,
            run_dir / CURVES,
            title=experiment.name,
            best_epoch=record.best_epoch,
        )
    source = source_record(experiment.data.dataset, run_dir, bundle.split)
    card = _card(experiment, model, task, bundle, record, source=source, processes=shard.world)
    save_model(run_dir, model)
    save_split(run_dir, bundle.split)
    write_card(run_dir, card)
    if write_report:
        config_text = (run_dir / CONFIG).read_text(encoding="utf-8")
        write_run_report(run_dir, card, config_text, model, bundle)
    return card


def _sample_grids(experiment: Experiment, run_dir: Path, bundle: DataBundle) -> list[Callback]:
    if not isinstance(experiment.model, GANConfig):
        return []
    return [SampleGrid(run_dir, bundle.meta, experiment.model.samples_every)]


def _fit_deep(
    experiment: Experiment,
    planned: Plan,
    stopper: EarlyStopping | None,
    observers: list[Callback],
    run_dir: Path | None,
    resume: dict[str, Any] | None,
    shard: Shard = SINGLE,
) -> tuple[torch.nn.Module, FitRecord]:
    """Train a deep model; checkpoints go to `run_dir` (None: a helper rank, no files)."""
    bundle, task = planned.bundle, planned.task
    model = experiment.network.initialised(bundle.meta, seed=experiment.seed)
    reuse = _reuse(experiment, model, bundle)  # weights loaded and frozen before placing
    observers = [*observers, *reuse.callbacks]
    placement = make_placement(experiment.train.device, experiment.train.precision)
    model.to(placement.device)
    if experiment.train.compile:
        compile_model(model, bundle.x_train[:2].to(placement.device))
    optimizer = experiment.optim.build(
        parameter_groups(model, resolved_lr(experiment.optim.lr), experiment.optim.param_groups)
    )
    epochs, batch_size = experiment.train.epochs, experiment.train.batch_size
    steps = num_batches(len(bundle.x_train), batch_size)
    scheduler = experiment.schedule.build(optimizer, epochs=epochs, steps_per_epoch=steps)
    trained, private = model, None
    if experiment.privacy is not None:
        private = make_private(
            model,
            optimizer,
            bundle.x_train,
            bundle.y_train,
            experiment.privacy,
            epochs=epochs,
            batch_size=batch_size,
        )
        trained, optimizer = private.model, private.optimizer
        observers = [private.accounting, *observers]  # before MetricsLog: epsilon is logged
    with (
        _deterministic(experiment.train.deterministic),
        stop_on_signals() as stop,
        quiet() if private else nullcontext(),
    ):
        state = fit(
            trained,
            task,
            bundle,
            optimizer=optimizer,
            scheduler=scheduler,
            schedule_interval=experiment.schedule.interval,
            epochs=epochs,
            batch_size=batch_size,
            seed=experiment.seed,
            step=experiment.network.step(),
            settings=StepSettings.of(experiment),
            callbacks=observers,
            checkpointing=_checkpointing(experiment, run_dir, shard, stop),
            resume=resume,
            placement=placement,
            shard=shard,
            draw_batches=private.draw_batches if private else None,
            augment=experiment.data.augment if experiment.data.augment.options() else None,
        )
    uncompile(model)  # saved, scored and reported eagerly on the CPU in fp32, like a loaded run
    model.cpu()
    best = stopper.best_epoch if stopper else None
    seconds = state.history[-1]["seconds"] if state.history else 0.0  # resumed runs included
    record = FitRecord(state.history, state.epoch, best, seconds, transfer=reuse.record)
    record.privacy = Privacy.model_validate(private.summary()) if private else None
    return model, record


@contextmanager
def _deterministic(wanted: bool) -> Iterator[None]:
    """`torch.use_deterministic_algorithms` for the fit when wanted (or already on)."""
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(wanted or previous)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def _checkpointing(
    experiment: Experiment, run_dir: Path | None, shard: Shard, stop: StopFlag
) -> Checkpointing | None:
    """Where and when the fit checkpoints; None on a helper rank, which writes nothing."""
    if run_dir is None:
        return None
    train = experiment.train
    return Checkpointing(
        run_dir / CHECKPOINTS,
        # mid-epoch state would hold one rank's share only: epoch ends suffice
        every=None if shard.distributed else train.checkpoint_every,
        keep=train.keep_checkpoints,
        stop=stop,
        seconds=train.checkpoint_seconds,
    )


@dataclass
class Reuse:
    """What `model.init_from`, `model.freeze` and `optim.param_groups` did (for the card),
    and the callback that unfreezes at `train.unfreeze_at_epoch`."""

    record: Transfer
    callbacks: list[Callback]


def _reuse(experiment: Experiment, model: torch.nn.Module, bundle: DataBundle) -> Reuse:
    spec, at = experiment.network, experiment.train.unfreeze_at_epoch
    init = load_pretrained(model, spec, bundle.meta, spec.init_from) if spec.init_from else None
    frozen = freeze(model, spec.freeze)
    record = Transfer(
        init_from=init,
        **trainable_summary(model, frozen, experiment.optim.param_groups),
        unfreeze_at_epoch=at,
    )
    return Reuse(record, [Unfreeze(frozen, at)] if at is not None else [])


def _fit_baseline(experiment, task, bundle) -> tuple[Baseline, FitRecord]:
    started = time.perf_counter()
    model = Baseline.fit(
        experiment.model,
        bundle.x_train,
        bundle.y_train,
        task=task.name,
        num_outputs=bundle.meta.num_outputs,
        seed=experiment.seed,
    )
    seconds = time.perf_counter() - started
    train_metrics = evaluate(model, task, bundle.x_train, bundle.y_train)
    val_metrics = evaluate(model, task, bundle.x_val, bundle.y_val)
    record = {
        "epoch": 1,
        **{f"train_{k}": v for k, v in train_metrics.items()},
        **{f"val_{k}": v for k, v in val_metrics.items()},
        "seconds": seconds,
    }
    return model, FitRecord([record], 1, None, seconds)


def _card(
    experiment, model, task: Task, bundle, record: FitRecord, *, source: Source, processes: int
) -> Card:
    """What a loader needs, plus what the run measured (val and test, once, at the end).

    `processes` is how many data-parallel processes trained the last session (a resumed
    run resumes in one).
    """
    started = time.perf_counter()
    if isinstance(task, Summarized):  # a language model's logits are summed chunk by chunk
        test = evaluate(model, task, bundle.x_test, bundle.y_test)
        inference_seconds = time.perf_counter() - started
        test_record: dict[str, Any] = {}
    else:
        test_output = predict_outputs(model, bundle.x_test)
        inference_seconds = time.perf_counter() - started
        test = score(task, test_output, bundle.y_test)  # the timed pass, not a second one
        test_record = task.test_record(test_output, bundle.y_test)
    return Card(
        name=experiment.name,
        model=experiment.model.as_recorded().model_dump(mode="json"),
        **task_record(task),
        data=bundle.meta,
        metrics={"val": evaluate(model, task, bundle.x_val, bundle.y_val), "test": test},
        num_parameters=(
            model.num_parameters() if isinstance(model, Baseline) else count_parameters(model)
        ),
        train_seconds=round(record.seconds, 3),
        inference_ms_per_1000=round(1e6 * inference_seconds / len(bundle.x_test), 3),
        epochs_run=record.epochs_run,
        best_epoch=record.best_epoch or record.epochs_run,
        seed=experiment.seed,
        processes=processes,
        diagnostics=record.diagnostics,
        transfer=record.transfer,
        versions=_versions(),
        privacy=record.privacy,
        source=source,
        **test_record,
    )


def _versions() -> Versions:
    return Versions(
        neuralab=__version__,
        torch=torch.__version__,
        numpy=np.__version__,
        scikit_learn=sklearn.__version__,
        python=platform.python_version(),
        platform=platform.platform(),
        torch_threads=torch.get_num_threads(),
    )


def load(run_dir: str | Path, *, trust_code: bool = False) -> Predictor:
    """A trained model from its run directory, ready to `.predict(array)`.

    A run of the user's own network (`family: module`) carries code that loading executes:
    it is refused unless `trust_code` is true.
    """
    return Predictor.load(run_dir, trust_code=trust_code)


def report(run_dir: str | Path, *, explain: bool = False, trust_code: bool = False) -> Path:
    """(Re)write a run's `report.html` from its card, config and weights; with `explain`,
    add attributions for a few test samples and permutation importance (slower: Captum)."""
    run_dir = Path(run_dir)
    card = read_card(run_dir)
    bundle, task = load_run_data(run_dir, trust_code=trust_code)
    predictor = Predictor.load(run_dir, trust_code=trust_code)
    config_text = (run_dir / CONFIG).read_text(encoding="utf-8")
    extra = ""
    if explain:
        from neuralab.trust.explanations import explanations_section

        extra = explanations_section(predictor, bundle, task)
    return write_run_report(run_dir, card, config_text, predictor.model, bundle, explanations=extra)


def importance(run_dir: str | Path, out: str | Path = "runs", *, trust_code: bool = False) -> Path:
    """Permutation importance of a run's input columns on its test split; returns the
    folder holding `importance.json` and `importance.png`."""
    from neuralab.trust.importance import write_importance

    bundle, task = load_run_data(run_dir, trust_code=trust_code)  # names a non-run folder
    predictor = Predictor.load(run_dir, trust_code=trust_code)
    return write_importance(predictor, bundle, task, Path(out))


def evaluate_run(run_dir: str | Path, *, trust_code: bool = False) -> dict[str, float]:
    """Test-split metrics of a saved run, recomputed from its folder: its own split of its
    (unchanged) source data, and its weights."""
    bundle, task = load_run_data(run_dir, trust_code=trust_code)  # names a non-run folder
    predictor = Predictor.load(run_dir, trust_code=trust_code)
    output = predict_outputs(predictor.model, bundle.x_test) / predictor.calibration_temperature
    return score(task, output, bundle.y_test)


def calibrate(run_dir: str | Path, *, trust_code: bool = False) -> Calibration:
    """Fit temperature scaling on the validation split; keep it in the card (so `predict`
    and `evaluate` use it) and redraw the report's reliability diagram."""
    run_dir = Path(run_dir)
    card = read_card(run_dir)
    task = task_from_card(card)
    if not isinstance(task, Classification):
        raise NeuralabError(
            str(run_dir), f"calibration is for classifiers; this run is {task.name}"
        )
    bundle, _ = load_run_data(run_dir, trust_code=trust_code)
    model = Predictor.load(run_dir, trust_code=trust_code).model
    val, test = predict_outputs(model, bundle.x_val), predict_outputs(model, bundle.x_test)
    temperature = fit_temperature(val, bundle.y_val)
    calibration = Calibration(
        temperature=temperature,
        val_ece_before=expected_calibration_error(val, bundle.y_val),
        val_ece_after=expected_calibration_error(val / temperature, bundle.y_val),
        test_ece_before=expected_calibration_error(test, bundle.y_test),
        test_ece_after=expected_calibration_error(test / temperature, bundle.y_test),
    )
    card = card.model_copy(update={"calibration": calibration})
    config_text = (run_dir / CONFIG).read_text(encoding="utf-8")
    write_run_report(run_dir, card, config_text, model, bundle)
    write_card(run_dir, card)
    return calibration
