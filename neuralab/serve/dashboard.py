"""The data behind the dashboard's pages, as `/v1` routes (so a token guards them too).

A run page reads a run's per-epoch metrics, config and report; the comparison page reads
the leaderboards that `neuralab compare` wrote. Files are read only from folders the
store or the listing below found in the served directory.
"""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
from fastapi import APIRouter
from starlette.responses import FileResponse, Response

from neuralab.runs import CONFIG, METRICS, read_metrics
from neuralab.serve.store import ModelStore, UnknownName

LEADERBOARD = "leaderboard.csv"
REPORT = "report.html"


def add_routes(router: APIRouter, store: ModelStore) -> None:
    """Add the dashboard's read-only routes; `store.path` answers 404 for unknown names."""

    @router.get("/models/{name}/history", summary="Per-epoch metrics of a run")
    async def history(name: str) -> Response:
        run_dir = store.path(name)
        rows = read_metrics(run_dir) if (run_dir / METRICS).is_file() else []
        return Response(orjson.dumps({"epochs": rows}), media_type="application/json")

    @router.get("/models/{name}/config", summary="A run's resolved config.yaml")
    async def config(name: str) -> Response:
        return FileResponse(store.path(name) / CONFIG, media_type="text/plain; charset=utf-8")

    @router.get("/models/{name}/report", summary="A run's self-contained report.html")
    async def report(name: str) -> Response:
        return _report(store.path(name))

    @router.get("/comparisons", summary="Leaderboards written by `neuralab compare`")
    async def comparisons() -> Response:
        found = [{"name": p.name, "rows": _leaderboard(p)} for p in _comparisons(store.root)]
        return Response(orjson.dumps({"comparisons": found}), media_type="application/json")

    @router.get("/comparisons/{name}/report", summary="A comparison's report.html")
    async def comparison_report(name: str) -> Response:
        folders = {p.name: p for p in _comparisons(store.root)}
        if name not in folders:
            raise UnknownName("comparison", f"no comparison named '{name}'")
        return _report(folders[name])


def _comparisons(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / LEADERBOARD).is_file())


def _leaderboard(folder: Path) -> list[dict[str, str]]:
    with (folder / LEADERBOARD).open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def _report(folder: Path) -> Response:
    path = folder / REPORT
    if not path.is_file():
        raise UnknownName("report", f"'{folder.name}' has no {REPORT}")
    return FileResponse(path, media_type="text/html; charset=utf-8")
