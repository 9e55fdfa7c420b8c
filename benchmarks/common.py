"""What every benchmark shares: the command line, the machine's description, result files
and the callbacks that time neuralab's loop from inside."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from threadpoolctl import threadpool_limits

from neuralab import __version__
from neuralab.train import Callback, TrainState

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
EXAMPLES = ROOT / "examples"


def parse_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes: checks the pipeline in minutes; the figures are not measurements",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1, as the CLI uses)"
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    # scikit-learn's BLAS and OpenMP pools too: the baselines then run on the same threads,
    # and OpenMP's spinning workers cannot stall on a busy machine (histogram boosting
    # took 7 minutes instead of seconds at load 9 on 2 cores)
    threadpool_limits(args.threads)
    return args


def machine() -> dict[str, Any]:
    """What the figures depend on: cores, CPU, versions, threads, and how busy it was."""
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "neuralab": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return platform.processor() or "unknown"
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or "unknown"


def write_result(
    args: argparse.Namespace, name: str, started: float, payload: dict[str, Any]
) -> Path:
    """`<results>/<name>.json`: the payload plus mode, machine (load before and after) and
    the benchmark's own wall time."""
    before = payload.pop("machine")
    record = {
        "benchmark": name,
        "mode": "quick" if args.quick else "full",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "machine": {**before, "load_average_1min_after": round(os.getloadavg()[0], 2)},
        **payload,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"{name}.json"
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return path


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


class FitTimer(Callback):
    """Seconds from `fit`'s start to its end: every epoch with its validation, callbacks
    and checkpoints, but not the run directory's setup or the report written after."""

    def __init__(self) -> None:
        self.started = self.seconds = self.cpu_started = self.cpu_seconds = 0.0

    def on_fit_start(self, state: TrainState) -> None:
        self.started, self.cpu_started = time.perf_counter(), time.process_time()

    def on_fit_end(self, state: TrainState) -> None:
        self.seconds = time.perf_counter() - self.started
        self.cpu_seconds = time.process_time() - self.cpu_started


class StepTimer(Callback):
    """Training samples per second, timed between consecutive steps of the same epoch, so
    the validation pass and checkpoint at each epoch's end are left out."""

    def __init__(self) -> None:
        self.samples, self.seconds = 0, 0.0
        self.last: tuple[int, float] | None = None  # (epoch, time) of the previous step

    def on_step_end(self, state: TrainState) -> None:
        now = time.perf_counter()
        if self.last is not None and self.last[0] == state.epoch:
            self.samples += len(state.batch) if state.batch is not None else 0
            self.seconds += now - self.last[1]
        self.last = (state.epoch, now)

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds else float("nan")
