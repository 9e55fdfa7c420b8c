"""Reading a large CSV table: `neuralab inspect` and the data loading alone, on a
200,000-row, 22-column file (11 numeric and 11 categorical columns, about 30 MB) and a
100-row file with the same columns, with the reader of a git ref (before) and of this
tree (after), side by side in one run.

Each measurement is a fresh Python process: wall time, and peak resident memory from
`os.wait4` (that process alone), which includes the interpreter, torch and the rest of
neuralab; the reading and loading steps alone also report how much they grow that peak.

    .venv/bin/python benchmarks/tables.py                    # before = main, ~2 minutes
    .venv/bin/python benchmarks/tables.py --before HEAD~3 --rows 50000

Not part of `make bench`: the before reader alone takes about 15 s a repeat. Results go
to `--results` as tables.json and tables.md; docs/benchmarks.md points at them.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CATEGORIES = ("red", "green", "blue", "amber", "violet", "grey", "black", "white")
# The data loading alone, as `inspect` and `train` start it: the file's reading and
# encoding (`read`), then the split, scaled tensors (`load`). Prints seconds and the growth
# of peak memory (MB) over the process's peak once everything is imported.
LOAD = """
import resource, sys, time
from pathlib import Path
from neuralab.config import load_config
from neuralab.data import load_data
from neuralab.data.files import CSVConfig
spec = load_config(sys.argv[1], [])
CSVConfig(csv=Path(sys.argv[2]), target="label").load(seed=0)  # imports whatever reading needs
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if sys.argv[3] == "read":
    CSVConfig(csv=spec.data.dataset.csv, target="label").load(seed=0)
else:
    load_data(spec.data, task=None, seed=0)
growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(time.perf_counter() - start, growth)
"""


def write_table(path: Path, rows: int, seed: int = 0) -> None:
    """11 numeric columns (floats and integers), 11 categorical ones, a class label."""
    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=(rows, 11)).round(6)
    numbers[:, ::3] = rng.integers(0, 10_000, size=(rows, 4))
    categories = rng.integers(0, len(CATEGORIES), size=(rows, 10))
    labels = (numbers[:, 1] > 0).astype(int) + (categories[:, 0] % 2)
    header = [f"n{i}" for i in range(11)] + [f"c{i}" for i in range(10)] + ["label"]
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for row in range(rows):
            writer.writerow(
                [
                    *(f"{value:g}" for value in numbers[row]),
                    *(CATEGORIES[index] for index in categories[row]),
                    ["low", "mid", "high"][labels[row]],
                ]
            )


def write_experiment(folder: Path, data: Path) -> Path:
    path = folder / f"{data.stem}.yaml"
    path.write_text(
        f"name: tables\nseed: 0\ndata:\n  dataset: {{csv: {data}, target: label}}\n"
        "model: {family: mlp, hidden_sizes: [64]}\n",
        encoding="utf-8",
    )
    return path


def measure(command: list[str], code: Path) -> dict[str, Any]:
    """Wall seconds and peak resident MB of one process running with `code` first on the
    path; the last line it printed too."""
    path = os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")]))
    with tempfile.TemporaryFile() as output, tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=output, stderr=errors, env={**os.environ, "PYTHONPATH": path}
        )
        _, status, usage = os.wait4(process.pid, 0)  # this process's own peak memory
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        errors.seek(0)
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{errors.read().decode()}")
        last = output.read().decode().strip().splitlines()[-1:]
    return {
        "seconds": seconds,
        "peak_mb": usage.ru_maxrss / 1024,  # KiB on Linux
        "last_line": last[0] if last else "",
    }


def export(ref: str, folder: Path) -> Path:
    """The `neuralab` package as it is at git `ref`, in `folder`."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "neuralab"], check=True, capture_output=True
    ).stdout
    folder.mkdir()
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    files = {"large": folder / "large.csv", "small": folder / "small.csv"}
    write_table(files["large"], args.rows)
    write_table(files["small"], 100)
    experiments = {size: write_experiment(folder, path) for size, path in files.items()}
    readers = {"before": export(args.before, folder / "before"), "after": ROOT}
    results: dict[str, Any] = {
        "rows": args.rows,
        "columns": 22,
        "file_mb": {size: path.stat().st_size / 2**20 for size, path in files.items()},
        "before": args.before,
        "measured": time.strftime("%Y-%m-%d %H:%M"),
        "cores": os.cpu_count(),
        "load": os.getloadavg()[0],
        "figures": {},
    }
    for reader, code in readers.items():
        for size, experiment in experiments.items():
            inspect = [sys.executable, "-m", "neuralab", "inspect", str(experiment)]
            runs = {"inspect": [measure(inspect, code) for _ in range(args.repeats)]}
            for part in ("read", "load"):
                load = [sys.executable, "-c", LOAD, str(experiment), str(files["small"]), part]
                runs[part] = [measure(load, code) for _ in range(args.repeats)]
            figures = {
                "inspect_s": statistics.median(r["seconds"] for r in runs["inspect"]),
                "inspect_peak_mb": max(r["peak_mb"] for r in runs["inspect"]),
            }
            for part in ("read", "load"):
                printed = [r["last_line"].split() for r in runs[part]]
                figures[f"{part}_s"] = statistics.median(float(p[0]) for p in printed)
                figures[f"{part}_growth_mb"] = max(float(p[1]) for p in printed)
            results["figures"][f"{reader} {size}"] = figures
            print(reader, size, results["figures"][f"{reader} {size}"], flush=True)
    return results


def table(results: dict[str, Any]) -> str:
    """Markdown: one row per reader and file size, and the large file's ratios."""
    figures, sizes = results["figures"], results["file_mb"]
    lines = [
        f"{results['rows']:,} rows x {results['columns']} columns ({sizes['large']:.1f} MB) "
        f"against 100 rows ({sizes['small'] * 1024:.0f} KB); before = `{results['before']}`; "
        f"measured {results['measured']}, {results['cores']} cores, load {results['load']:.1f}; "
        "medians of the repeats, peak memory the largest.",
        "",
        "| reader | rows | inspect (s) | inspect peak (MB) | read (s) | read +MB "
        "| load (s) | load +MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, row in figures.items():
        reader, size = key.split()
        rows = results["rows"] if size == "large" else 100
        lines.append(
            f"| {reader} | {rows:,} | {row['inspect_s']:.2f} | {row['inspect_peak_mb']:.0f} "
            f"| {row['read_s']:.3f} | {row['read_growth_mb']:.0f} "
            f"| {row['load_s']:.3f} | {row['load_growth_mb']:.0f} |"
        )
    lines += [
        "",
        "inspect: the whole command, a fresh process (peak: its resident memory). read: the",
        "file read, typed and encoded (`CSVConfig.load`); load: that plus the split and the",
        "scaled tensors (`load_data`); +MB: growth of the process's peak memory over its peak",
        "before that step.",
        "",
    ]
    for reader in ("before", "after"):
        large, small = figures[f"{reader} large"], figures[f"{reader} small"]
        lines.append(
            f"- {reader}: the large file inspects in "
            f"{large['inspect_s'] / small['inspect_s']:.2f}x the small file's time; reading it "
            f"costs {large['read_growth_mb'] / sizes['large']:.1f}x the file's size in memory, "
            f"loading it {large['load_growth_mb'] / sizes['large']:.1f}x."
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", default="main", help="git ref whose reader is 'before'")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        results = run(args, Path(folder))
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "tables.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.results / "tables.md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()
