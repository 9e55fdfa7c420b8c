"""Serving trained runs over HTTP: a FastAPI app with a JSON model API, micro-batching,
Prometheus metrics and a browser dashboard. `neuralab serve RUNS_DIR` runs it."""

from neuralab.serve.app import ServeSettings, create_app

__all__ = ["ServeSettings", "create_app"]
