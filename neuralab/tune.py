"""Hyperparameter search: an Optuna study over the experiment's `search:` block.

Each trial sets the searched keys in the experiment, trains it with `api.train` into the
study's `trials/` folder, and reports the validation metric every epoch so the pruner can
stop a poor trial early. The study lives in a storage that outlives the command (by
default an Optuna journal file in the study folder), so re-running the same command
resumes it, and `workers` processes on this machine can share it.

Local workers take turns to start a trial under a file lock (`claim.lock`), so they run
exactly the requested number of trials. Each worker holds a lock file of its own for as
long as it lives; a RUNNING trial whose worker's lock is free was killed, so it is marked
failed and retried with the same parameters. Remote databases use Optuna's heartbeat.
"""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing
import shutil
import socket
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
import yaml
from optuna.exceptions import StorageInternalError
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from neuralab import api
from neuralab.card import CARD, read_card
from neuralab.config import Experiment, load_config, load_raw, set_key
from neuralab.errors import NeuralabError, Problem, did_you_mean
from neuralab.plan import plan
from neuralab.report.tuning import plot_study, write_trials_csv
from neuralab.search import Dimension, SearchConfig
from neuralab.tasks import lower_is_better, monitor_names
from neuralab.train import Callback, TrainState
from neuralab.train.loop import TrainingInterrupted

JOURNAL = "journal.log"
TRIALS = "trials"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# Optuna's RDB heartbeat, for databases shared by workers on several machines.
HEARTBEAT_SECONDS, GRACE_SECONDS = 60, 180


@dataclass(frozen=True)
class StudyResult:
    """A tuning study after this command: its folder, the best trial, trial counts.

    `best_run` is None when the best trial ran on another machine sharing the database:
    its run folder is there, under `best_host`.
    """

    path: Path
    metric: str
    direction: str
    best_number: int
    best_value: float
    best_params: dict[str, Any]
    best_run: Path | None
    best_host: str
    counts: dict[str, int]


@dataclass(frozen=True)
class Job:
    """What every worker process needs to open the study and run trials (picklable)."""

    raw: dict[str, Any]
    folder: Path
    storage: str | None
    trials: int
    metric: str
    direction: str
    deadline: float | None
    threads: int


class Pruning(Callback):
    """Report the monitored metric to the trial every epoch; stop when the pruner says so."""

    def __init__(self, trial: optuna.Trial, monitor: str) -> None:
        self.trial, self.monitor = trial, monitor
        self.pruned_at: int | None = None

    def on_epoch_end(self, state: TrainState) -> None:
        self.trial.report(state.metrics[self.monitor], state.epoch)
        if self.trial.should_prune():
            self.pruned_at, state.should_stop = state.epoch, True


def tune(
    experiment: str | Path | dict[str, Any],
    *,
    overrides: Sequence[str] = (),
    trials: int | None = None,
    storage: str | None = None,
    workers: int = 1,
    timeout: float | None = None,
    out: str | Path = "runs",
    callbacks: Sequence[Callback] = (),
) -> StudyResult:
    """Run (or resume) the study of `experiment`'s `search:` block until it has `trials`
    finished (complete or pruned) trials, then write the study's summary files.

    Args:
        experiment: A YAML path, or the experiment as a dict, with a `search:` block.
        trials: Finished trials the study should hold; default `search.trials`.
        storage: An SQLAlchemy URL; default a journal file in the study folder.
        workers: Processes on this machine working on the study at once.
        timeout: Seconds after which no new trial starts (running ones finish).
        out: The study folder is `out/<name>-tune`.
        callbacks: Extra observers of every trial's training (in this process only).
    """
    raw = load_raw(experiment, tuple(overrides))
    base, search, metric, direction = _checked(raw)
    if workers < 1 or (trials is not None and trials < 1):
        raise NeuralabError(
            "tune", f"trials and workers must be at least 1, got {trials=}, {workers=}"
        )
    if workers > 1 and storage and storage.startswith("sqlite"):
        raise NeuralabError(
            "--storage",
            "SQLite is unsafe with parallel writers",
            "drop --storage or use one worker",
        )
    job = Job(
        raw={k: v for k, v in raw.items() if k != "search"},
        folder=Path(out) / f"{base.name}-tune",
        storage=storage,
        trials=search.trials if trials is None else trials,
        metric=metric,
        direction=direction,
        deadline=None if timeout is None else time.time() + timeout,
        threads=torch.get_num_threads(),
    )
    created = not job.folder.exists()
    job.folder.mkdir(parents=True, exist_ok=True)
    try:
        study = _open_study(job, search, fingerprint=raw)  # or refuse a different experiment's
    except NeuralabError:
        if created:  # a storage that cannot be opened leaves nothing behind
            shutil.rmtree(job.folder)
        raise
    try:
        _run_workers(study, job, search, workers, callbacks)
    except KeyboardInterrupt:  # Ctrl-C between trials, outside training's own handler
        raise TrainingInterrupted(
            str(job.folder), "tuning stopped by Ctrl-C", "rerun the same command to continue"
        ) from None
    return _summarise(study, job, search, base)


def _checked(raw: dict[str, Any]) -> tuple[Experiment, SearchConfig, str, str]:
    """The experiment, its search block, the metric and its direction; every problem with
    them reported at once, before anything is written."""
    base = load_config(raw)
    search = _search_of(base)
    problems = _space_problems(raw, search)
    if base.data.split.folds is not None:  # each trial trains one run: fold 0 alone
        problems.append(
            Problem(
                "data.split.folds",
                "tune scores each trial on one validation split, not across folds",
                "remove data.split.folds to tune, then cross-validate the best.yaml",
            )
        )
    try:
        metric, direction = _objective(base, search)
    except NeuralabError as error:
        problems = [*error.problems, *problems]
    if problems:
        raise NeuralabError.many(problems)
    return base, search, metric, direction


def _search_of(experiment: Experiment) -> SearchConfig:
    if experiment.search is None:
        raise NeuralabError(
            "search",
            "the experiment has no search: block",
            "add e.g. search: {space: {optim.lr: {log_uniform: [1.0e-4, 1.0e-1]}}}",
        )
    return experiment.search


def _objective(experiment: Experiment, search: SearchConfig) -> tuple[str, str]:
    """The validation metric to optimise and its direction, checked against the task."""
    task = plan(experiment).task  # the data and task exactly as each trial sees them
    metric = search.metric or f"val_{task.main_metric}"
    available = [name for name in monitor_names(task) if name.startswith("val_")]
    if metric not in available:
        raise NeuralabError(
            "search.metric",
            f"'{metric}' is not a validation metric this run produces",
            did_you_mean(metric, available),
        )
    inferred = "minimize" if lower_is_better(metric) else "maximize"
    return metric, search.direction or inferred


def _space_problems(raw: dict[str, Any], search: SearchConfig) -> list[Problem]:
    """Every searched key must exist and accept the values at the edges of its range."""
    problems: list[Problem] = []
    for key, dimension in search.space.items():
        for value in _probes(dimension):
            try:
                load_config(_trial_raw(raw, {key: value}))
            except NeuralabError as error:
                problems += [_space_problem(key, p) for p in error.problems]
                break
    return problems


def _probes(dimension: Dimension) -> list[Any]:
    """The edges of a range plus an interior, non-round value (which an integer key
    rejects), or every choice."""
    if dimension.choice is not None:
        return list(dimension.choice)
    low, high = dimension.extremes()
    return [low, high, low + (high - low) * 0.37] if dimension.kind != "int" else [low, high]


def _space_problem(key: str, problem: Problem) -> Problem:
    where = f"search.space.{key}"
    if problem.where == key:
        return Problem(where, problem.what, problem.hint)
    return Problem(where, f"{problem.where}: {problem.what}", problem.hint)


def _trial_raw(
    raw: dict[str, Any], values: dict[str, Any], name: str | None = None
) -> dict[str, Any]:
    """A copy of the raw experiment with the searched keys set and no search block."""
    trial = yaml.safe_load(yaml.safe_dump(raw))  # a deep copy of plain data
    trial.pop("search", None)
    for key, value in values.items():
        set_key(trial, key, value)
    if name is not None:
        trial["name"] = name
    return trial


def _storage(job: Job) -> optuna.storages.BaseStorage:
    if job.storage is None:
        path = str(job.folder / JOURNAL)
        return optuna.storages.JournalStorage(JournalFileBackend(path))
    from sqlalchemy.exc import SQLAlchemyError  # only for a database: it takes a second

    heartbeat = (
        {}
        if job.storage.startswith("sqlite")
        else {
            "heartbeat_interval": HEARTBEAT_SECONDS,
            "grace_period": GRACE_SECONDS,
            "heartbeat_stale_trial_callback": _retry(),
        }
    )
    try:
        return _database(job.storage, heartbeat)
    except ImportError as error:  # Optuna's, from SQLAlchemy's import of the driver
        driver = getattr(error.__cause__, "name", None)
        raise NeuralabError(
            "--storage",
            f"cannot open '{job.storage}': its driver '{driver}' is not installed",
            "for postgresql:// URLs, pip install 'neuralab[postgres]'",
        ) from None
    except (ValueError, SQLAlchemyError, StorageInternalError) as error:
        raise NeuralabError("--storage", f"cannot open '{job.storage}': {error}") from None


def _database(url: str, heartbeat: dict[str, Any]) -> optuna.storages.RDBStorage:
    """Optuna's RDBStorage. Machines started together on a fresh database race to create
    its tables, and PostgreSQL refuses the loser's CREATE TABLE: it retries, and finds them."""
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    def storage() -> optuna.storages.RDBStorage:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, **heartbeat)

    for _ in range(2):
        with contextlib.suppress(IntegrityError, ProgrammingError):
            return storage()
        time.sleep(0.5)
    return storage()


def _retry() -> optuna.storages.RetryHeartbeatStaleTrialCallback:
    """Re-enqueue a dead worker's trial with the same parameters (at most 3 times)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)


def _open_study(
    job: Job, search: SearchConfig, fingerprint: dict[str, Any] | None = None
) -> optuna.Study:
    """Load the study (creating it the first time); with `fingerprint`, refuse to add
    trials to a study made from a different experiment."""
    study = optuna.create_study(
        storage=_storage(job),
        study_name=str(job.raw.get("name", "experiment")),
        direction=job.direction,  # type: ignore[arg-type]
        pruner=_pruner(search),
        load_if_exists=True,
    )
    if fingerprint is not None:
        text = yaml.safe_dump(_without_trials(fingerprint), sort_keys=True)
        saved = study.user_attrs.get("experiment")
        if saved is None:
            study.set_user_attr("experiment", text)
        elif saved != text:
            raise NeuralabError(
                str(job.folder),
                "holds a study of a different experiment (changed keys or search space)",
                "use another --out, or delete the folder to start again",
            )
    return study


def _without_trials(raw: dict[str, Any]) -> dict[str, Any]:
    """`search.trials` may change between runs of one study: it only extends it."""
    search = {k: v for k, v in raw.get("search", {}).items() if k != "trials"}
    return {**raw, "search": search}


def _pruner(search: SearchConfig) -> optuna.pruners.BasePruner:
    if search.pruner == "median":
        # Five finished trials give a median worth comparing against.
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=search.min_epochs)
    if search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=search.min_epochs)
    return optuna.pruners.NopPruner()


def _sampler(search: SearchConfig, seed: int) -> optuna.samplers.BaseSampler:
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # constant_liar keeps parallel workers from sampling next to each other's running trials
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def _run_workers(
    study: optuna.Study, job: Job, search: SearchConfig, workers: int, callbacks: Sequence[Callback]
) -> None:
    """This process is one worker; `workers - 1` more are spawned beside it."""
    context = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools
    others = [context.Process(target=_worker_main, args=(job, search)) for _ in range(workers - 1)]
    for process in others:
        process.start()
    try:
        _work(study, job, search, callbacks)
    finally:
        for process in others:
            process.join()
    failed = [p.exitcode for p in others if p.exitcode != 0]
    if failed:
        raise NeuralabError(
            "--workers", f"{len(failed)} worker(s) failed", "see their errors above; rerun to go on"
        )


def _worker_main(job: Job, search: SearchConfig) -> None:
    """Entry point of a spawned worker: stops quietly on Ctrl-C (its trial is marked failed)."""
    torch.set_num_threads(job.threads)
    try:
        _work(_open_study(job, search), job, search, ())
    except (TrainingInterrupted, KeyboardInterrupt):
        raise SystemExit(130) from None


def _work(
    study: optuna.Study, job: Job, search: SearchConfig, callbacks: Sequence[Callback]
) -> None:
    """Start trials, one at a time, until the study holds `job.trials` finished ones."""
    local = job.storage is None or job.storage.startswith("sqlite")
    with _worker_lock(job.folder) as worker:
        while job.deadline is None or time.time() < job.deadline:
            claim = _claim(job.folder)
            try:
                if local:
                    _fail_dead_trials(study, job.folder)
                if not _wants_more(study, job.trials):
                    break
                study.sampler = _sampler(search, _trial_seed(job, len(study.trials)))
                objective = _Objective(job, search, worker, claim, callbacks)
                study.optimize(objective, n_trials=1, catch=(_TrialFailed,))
            finally:
                _release(claim)


def _trial_seed(job: Job, number: int) -> int:
    """A sampler seed per trial number: a resumed study samples what an uninterrupted one
    would have, and parallel workers do not repeat each other's first samples."""
    sequence = np.random.SeedSequence([int(job.raw.get("seed", 0)), number])
    return int(sequence.generate_state(1)[0])


def _wants_more(study: optuna.Study, total: int) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # RDB heartbeat; a no-op for the journal
    states = (*FINISHED, TrialState.RUNNING)
    return len(study.get_trials(deepcopy=False, states=states)) < total


class _TrialFailed(Exception):
    """A trial whose training failed (e.g. a diverging learning rate): recorded as failed,
    and the study goes on."""


class _Objective:
    def __init__(self, job: Job, search: SearchConfig, worker: str, claim, callbacks) -> None:
        self.job, self.search, self.worker = job, search, worker
        self.claim, self.callbacks = claim, callbacks

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", self.worker)
        trial.set_user_attr("host", socket.gethostname())
        _release(self.claim)  # the trial is in storage and tagged: the next may start
        values = {key: _suggest(trial, key, dim) for key, dim in self.search.space.items()}
        name = f"trial-{trial.number:04d}"
        experiment = load_config(_trial_raw(self.job.raw, values, name))
        pruning = Pruning(trial, self.job.metric)
        trials_dir = self.job.folder / TRIALS
        try:
            run = api.train(
                experiment, out=trials_dir, callbacks=[pruning, *self.callbacks], write_report=False
            )
        except TrainingInterrupted:
            _remove_partials(trials_dir, trial.number)  # a trial is rerun, never resumed
            raise TrainingInterrupted(
                str(self.job.folder),
                f"tuning stopped during trial {trial.number}, which is marked failed",
                "rerun the same command to continue the study",
            ) from None
        except NeuralabError as error:
            trial.set_user_attr("error", str(error))
            raise _TrialFailed(str(error)) from None
        trial.set_user_attr("run", run.path.name)
        if pruning.pruned_at is not None:
            raise optuna.TrialPruned(f"pruned at epoch {pruning.pruned_at}")
        return float(run.card.metrics["val"][self.job.metric.removeprefix("val_")])


def _suggest(trial: optuna.Trial, key: str, dimension: Dimension) -> Any:
    if dimension.log_uniform is not None:
        return trial.suggest_float(key, *dimension.log_uniform, log=True)
    if dimension.uniform is not None:
        return trial.suggest_float(key, *dimension.uniform)
    if dimension.int is not None:
        return trial.suggest_int(key, *dimension.int)
    return dimension.chosen(trial.suggest_categorical(key, dimension.labels()))


# -- liveness of local workers ---------------------------------------------------------


@contextlib.contextmanager
def _worker_lock(folder: Path) -> Iterator[str]:
    """Hold `workers/<id>.lock` while this worker lives; the kernel frees it on death."""
    worker = uuid.uuid4().hex
    path = folder / "workers" / f"{worker}.lock"
    path.parent.mkdir(exist_ok=True)
    with path.open("w") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        try:
            yield worker
        finally:
            path.unlink(missing_ok=True)


def _alive(folder: Path, worker: str | None) -> bool:
    path = folder / "workers" / f"{worker}.lock"
    if worker is None or not path.exists():
        return False
    with path.open("a") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
    path.unlink(missing_ok=True)
    return False


def _fail_dead_trials(study: optuna.Study, folder: Path) -> None:
    """Mark RUNNING trials of dead workers failed and enqueue a retry of each.

    Runs under the claim lock, during which every live worker's RUNNING trial is tagged.
    """
    retry = _retry()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if _alive(folder, trial.user_attrs.get("worker")):
            continue
        study.tell(trial.number, state=TrialState.FAIL)
        _remove_partials(folder / TRIALS, trial.number)
        retry(study, study.trials[trial.number])


def _remove_partials(trials_dir: Path, number: int) -> None:
    for partial in trials_dir.glob(f".trial-{number:04d}-*.partial"):
        shutil.rmtree(partial, ignore_errors=True)


def _claim(folder: Path) -> Any:
    file = (folder / "claim.lock").open("w")
    fcntl.flock(file, fcntl.LOCK_EX)
    return file


def _release(claim: Any) -> None:
    if not claim.closed:
        claim.close()  # closing the file releases its lock


# -- the study's summary files ----------------------------------------------------------


def _summarise(
    study: optuna.Study, job: Job, search: SearchConfig, base: Experiment
) -> StudyResult:
    trials = study.get_trials(deepcopy=False)
    write_trials_csv(job.folder / "trials.csv", trials, list(search.space))
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        raise NeuralabError(
            str(job.folder), "no trial completed", "see trials.csv for failed trials' errors"
        )
    best = study.best_trial
    values = _values(best, search)
    best_config = load_config(_trial_raw(job.raw, values, base.name)).resolved()
    (job.folder / "best.yaml").write_text(
        yaml.safe_dump(best_config, sort_keys=False), encoding="utf-8"
    )
    best_run = _copy_best_run(job.folder, best)
    plot_study(study, job.folder, list(search.space))
    counts = {state.name.lower(): 0 for state in (*FINISHED, TrialState.FAIL)}
    for trial in trials:
        if trial.state.name.lower() in counts:
            counts[trial.state.name.lower()] += 1
    return StudyResult(
        path=job.folder,
        metric=job.metric,
        direction=job.direction,
        best_number=best.number,
        best_value=float(best.value or 0.0),
        best_params=values,
        best_run=best_run,
        best_host=str(best.user_attrs.get("host", socket.gethostname())),
        counts=counts,
    )


def _values(trial: FrozenTrial, search: SearchConfig) -> dict[str, Any]:
    """The trial's config values (choices turned back from their stored text)."""
    values = {}
    for key, dimension in search.space.items():
        value = trial.params[key]
        values[key] = value if dimension.choice is None else dimension.chosen(value)
    return values


def _copy_best_run(folder: Path, best: FrozenTrial) -> Path | None:
    """`best-run/`: a copy of the best trial's run directory, replaced whole when a
    rerun found a better trial; None, and no stale copy, when the best trial ran on
    another machine sharing the study's database."""
    source = folder / TRIALS / best.user_attrs["run"]
    target, staging = folder / "best-run", folder / ".best-run.partial"
    if not source.is_dir():
        shutil.rmtree(target, ignore_errors=True)
        return None
    if (target / CARD).is_file() and read_card(target).name == read_card(source).name:
        return target
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    # trials skip their reports; the kept run gets its own. It trained from this study's
    # experiment, so a user network's code in it is the user's own file.
    api.report(target, trust_code=True)
    return target
