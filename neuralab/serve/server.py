"""Running the app under uvicorn, with the safe-by-default binding rule.

Without a token the server only binds a loopback address: anyone who can reach the port
can use every served model, so exposing it is an explicit choice that needs `--token`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict

import uvicorn

from neuralab.errors import NeuralabError
from neuralab.serve.app import ServeSettings, create_app


def check_binding(host: str, token: str | None) -> None:
    """Refuse a non-loopback address unless a token guards the API."""
    if token is None and not _is_loopback(host):
        raise NeuralabError(
            "--host",
            f"'{host}' is reachable from other machines and no --token was given",
            "add --token SECRET (clients send 'Authorization: Bearer SECRET'), "
            "or keep the default 127.0.0.1",
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def check_settings(settings: ServeSettings) -> None:
    """Problems to report before binding a port."""
    if not settings.runs_dir.is_dir():
        raise NeuralabError(
            str(settings.runs_dir), "not a directory", "pass the folder your runs are in"
        )
    if settings.runtime == "onnx":
        from neuralab.export import require_onnxruntime

        require_onnxruntime()


def settings_json(settings: ServeSettings) -> dict:
    """Settings as plain JSON, to hand to worker processes."""
    return {**asdict(settings), "runs_dir": str(settings.runs_dir)}


def run(settings: ServeSettings, *, host: str, port: int, workers: int, worker_app: str) -> None:
    """Serve until interrupted. With several workers uvicorn starts processes that build
    the app from `worker_app`, an import string of a factory (it cannot pickle an app)."""
    check_binding(host, settings.token)
    check_settings(settings)
    app = create_app(settings) if workers == 1 else worker_app
    uvicorn.run(
        app,
        host=host,
        port=port,
        workers=workers,
        factory=workers > 1,
        log_level="warning",
        access_log=False,  # a log line per request costs more than a tiny model's forward
    )
