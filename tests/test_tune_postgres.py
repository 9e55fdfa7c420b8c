"""`tune --storage postgresql://...`: commands on several machines share one study, against
a throwaway PostgreSQL server (skipped where its binaries or the driver are missing)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pytest
import yaml

from tests.conftest import tiny_experiment

TRIALS = 6
LR = {"optim.lr": {"log_uniform": [1.0e-4, 0.3]}}


def _as_postgres() -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` user."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no postgres user to start PostgreSQL as")
    return ["runuser", "-u", "postgres", "--"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url():
    """A PostgreSQL server on 127.0.0.1 in a temp folder, with one empty database."""
    psycopg = pytest.importorskip("psycopg", reason="the PostgreSQL driver is not installed")
    binaries = [shutil.which(name) for name in ("initdb", "pg_ctl")]
    if None in binaries:
        pytest.skip("PostgreSQL's initdb and pg_ctl are not on PATH")
    initdb, pg_ctl = binaries
    user = _as_postgres()
    home = Path(tempfile.mkdtemp(prefix="neuralab-pg-"))
    if user:
        shutil.chown(home, "postgres")
    data, port = home / "data", _free_port()
    options = f"-h 127.0.0.1 -p {port} -k {home} -F"  # -F: no fsync, a throwaway server
    start = [pg_ctl, "-D", str(data), "-l", str(home / "log"), "-w", "-o", options, "start"]
    try:
        for command in ([initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "-N"], start):
            done = subprocess.run([*user, *command], capture_output=True, text=True, timeout=60)
            if done.returncode != 0:
                pytest.skip(f"cannot start PostgreSQL: {done.stderr.strip()[-300:]}")
        address = {"host": "127.0.0.1", "port": port, "user": "postgres", "dbname": "postgres"}
        # autocommit: CREATE DATABASE cannot run in a transaction
        with psycopg.connect(**address, autocommit=True) as connection:
            connection.execute("CREATE DATABASE study")
        yield f"postgresql://postgres@127.0.0.1:{port}/study"
    finally:
        subprocess.run(
            [*user, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True
        )
        shutil.rmtree(home, ignore_errors=True)


def _tune(path: Path, url: str, out: Path, trials: int = TRIALS) -> subprocess.Popen:
    """`neuralab tune` as another machine would run it: same command and storage, its own
    disk (`out`)."""
    command = ["tune", str(path), "--trials", str(trials), "--storage", url, "--out", str(out)]
    return subprocess.Popen(
        [sys.executable, "-m", "neuralab", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _trials(url: str) -> tuple[list[optuna.trial.FrozenTrial], optuna.trial.FrozenTrial]:
    """The study's trials and its best trial, read from the database."""
    storage = optuna.storages.RDBStorage(url)
    try:
        study = optuna.load_study(study_name="tiny", storage=storage)
        return study.get_trials(), study.best_trial
    finally:  # close its pooled connections now, not when garbage (a ResourceWarning)
        storage.engine.dispose()


def _finish(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    return out


def test_two_machines_share_a_postgresql_study_and_resume_it(postgres_url, tmp_path):
    experiment = tiny_experiment(
        train={"epochs": 3, "batch_size": 128},
        search={"space": LR, "pruner": "none"},
    )
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(experiment))
    machines = [tmp_path / "a", tmp_path / "b"]
    for output in [_finish(p) for p in [_tune(path, postgres_url, m) for m in machines]]:
        assert "best.yaml:" in output

    trials, best = _trials(postgres_url)
    numbers = [t.number for t in trials]
    assert numbers == list(range(len(trials)))  # every number once
    finished = [t for t in trials if t.state.is_finished()]
    # the documented bound: each machine past the first may start one trial too many
    assert TRIALS <= len(finished) <= TRIALS + len(machines) - 1
    runs = {m: {p.name for p in (m / "tiny-tune" / "trials").iterdir()} for m in machines}
    assert all(runs.values())  # both machines ran trials ...
    assert runs[machines[0]].isdisjoint(runs[machines[1]])  # ... none twice
    assert set.union(*runs.values()) == {t.user_attrs["run"] for t in finished}
    for machine in machines:
        assert (machine / "tiny-tune" / "best.yaml").is_file()
        # best-run/ is copied on the machine that ran the best trial, and only there
        has_copy = (machine / "tiny-tune" / "best-run").is_dir()
        assert has_copy == (best.user_attrs["run"] in runs[machine])

    # rerunning resumes the study from the database: nothing to add, then the remainder
    output = _finish(_tune(path, postgres_url, machines[0]))
    assert f"trials: {len(finished)} complete" in output
    assert len(_trials(postgres_url)[0]) == len(trials)
    output = _finish(_tune(path, postgres_url, machines[1], trials=len(finished) + 1))
    assert f"trials: {len(finished) + 1} complete" in output
    resumed = _trials(postgres_url)[0]
    assert [t.number for t in resumed] == list(range(len(trials) + 1))


def test_a_url_whose_driver_is_missing_names_it(run_cli, tmp_path):
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(tiny_experiment(search={"space": LR})))
    url = "mysql://user@127.0.0.1/study"  # SQLAlchemy's default MySQL driver, MySQLdb
    code, _, err = run_cli("tune", str(path), "--storage", url, "--out", str(tmp_path / "runs"))
    assert (code, err.strip()) == (
        2,
        f"error: --storage: cannot open '{url}': its driver 'MySQLdb' is not installed "
        "(for postgresql:// URLs, pip install 'neuralab[postgres]')",
    )
    assert not (tmp_path / "runs" / "tiny-tune").exists()
