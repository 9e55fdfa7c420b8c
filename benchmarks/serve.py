"""Load benchmark of `neuralab serve` on loopback: requests/s and p50/p99 latency of
single-sample predictions, at concurrency 1, 8 and 64, for the digits CNN and the
MNIST-1D GRU, with and without micro-batching, 1 or 2 workers, PyTorch or ONNX Runtime.

The load comes from `wrk` (`apt-get install wrk`), a C load generator with one thread,
so the client costs as little CPU as it can; every run is bounded by `--seconds`. Only
127.0.0.1 is ever contacted. Results go to `--out` as serve.json and serve.md.

    .venv/bin/python benchmarks/serve.py                 # the whole matrix, ~5 minutes
    .venv/bin/python benchmarks/serve.py --quick         # digits CNN, 1 worker, torch only

Figures on a busy shared machine move from run to run; compare the rows of one run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

import neuralab
from neuralab.config import load_config
from neuralab.data import load_data

REPO = Path(__file__).resolve().parents[1]
MODELS = {"digits-cnn": "examples/digits-cnn.yaml", "mnist1d-gru": "examples/mnist1d-gru.yaml"}
CONCURRENCY = (1, 8, 64)
# Micro-batching off (None), or on with this window in milliseconds.
BATCHING = (None, 0.0, 2.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=4, help="Load per measurement.")
    parser.add_argument("--runs", type=Path, help="Reuse a folder of trained runs.")
    parser.add_argument("--quick", action="store_true", help="Digits CNN, torch, 1 worker.")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("benchmarks/serve.py needs wrk: apt-get install wrk")
    runs = args.runs or _train_models(Path(tempfile.mkdtemp(prefix="serve-bench-")))
    print(f"runs: {runs} (pass --runs to reuse them)", flush=True)
    models = ["digits-cnn"] if args.quick else list(MODELS)
    runtimes = ["torch"] if args.quick or not _has_onnxruntime() else ["torch", "onnx"]
    if "onnx" in runtimes:
        _export_all(runs)
    workers = [1] if args.quick else [1, 2]
    rows = []
    for runtime, num_workers, wait_ms in itertools.product(runtimes, workers, BATCHING):
        with _server(runs, runtime=runtime, workers=num_workers, wait_ms=wait_ms) as url:
            for model, concurrency in itertools.product(models, CONCURRENCY):
                name = _run_name(runs, model)
                row = _measure(url, name, _sample(runs / name), concurrency, args.seconds)
                row.update(model=model, runtime=runtime, workers=num_workers, batching=wait_ms)
                print(json.dumps(row), flush=True)
                rows.append(row)
    _write(rows, args.out)


def _train_models(folder: Path) -> Path:
    """Each benchmarked model, trained briefly: serving speed does not depend on accuracy."""
    for path in MODELS.values():
        neuralab.train(REPO / path, overrides=["train.epochs=2"], out=folder)
    return folder


def _run_name(runs: Path, model: str) -> str:
    return next(p.name for p in sorted(runs.iterdir()) if p.name.startswith(model + "-"))


def _sample(run_dir: Path) -> list:
    """One real test sample of the run's dataset, unscaled, as a client would send it."""
    bundle = load_data(load_config(run_dir / "config.yaml").data, task=None, seed=0)
    scaled = bundle.x_test[:1].numpy()
    meta = bundle.meta
    raw = scaled * np.asarray(meta.x_std) + np.asarray(meta.x_mean)
    return raw.tolist()


def _has_onnxruntime() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _export_all(runs: Path) -> None:
    from neuralab.export import export

    for model in MODELS:
        export(runs / _run_name(runs, model), "onnx")


class _server:
    """`neuralab serve` in a child process on a free loopback port, stopped on exit."""

    def __init__(self, runs: Path, *, runtime: str, workers: int, wait_ms: float | None) -> None:
        self.port = _free_port()
        self.command = [
            *(sys.executable, "-m", "neuralab", "serve", str(runs), "--port", str(self.port)),
            *("--runtime", runtime, "--workers", str(workers)),
            *(
                ["--no-batching"]
                if wait_ms is None
                else ["--batching", "--max-wait-ms", str(wait_ms)]
            ),
        ]

    def __enter__(self) -> str:
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 300  # workers import torch: slow on a busy machine
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=1).read()
                return url
            except OSError:
                time.sleep(0.2)
        self.process.kill()
        raise RuntimeError(f"server did not start: {' '.join(self.command)}")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _measure(url: str, name: str, sample: list, concurrency: int, seconds: int) -> dict:
    endpoint = f"{url}/v1/models/{name}/predict"
    body = json.dumps({"inputs": sample})
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(body)}\n"
        )
    for _ in range(2):  # warm-up: the first requests load the model (and each worker's)
        urllib.request.urlopen(
            urllib.request.Request(endpoint, body.encode(), {"Content-Type": "application/json"})
        ).read()
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s", script.name]
    output = subprocess.run(
        [*command, endpoint], capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    Path(script.name).unlink()
    return {"concurrency": concurrency, **_parse_wrk(output)}


def _parse_wrk(output: str) -> dict:
    def latency_ms(percent: str) -> float:
        value, unit = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": latency_ms("50"),
        "p99_ms": latency_ms("99"),
        "errors": int(errors.group(1)) if errors else 0,
    }


def _write(rows: list[dict], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "serve.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    header = "| model | runtime | workers | batching | concurrency | req/s | p50 ms | p99 ms |"
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        window = "off" if r["batching"] is None else f"{r['batching']:g} ms"
        lines.append(
            f"| {r['model']} | {r['runtime']} | {r['workers']} | "
            f"{window} | {r['concurrency']} | "
            f"{r['requests_per_s']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |"
        )
    (out / "serve.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out / 'serve.md'}")


if __name__ == "__main__":
    main()
