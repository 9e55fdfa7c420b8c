"""The HTTP app: the model API under `/v1`, health and metrics, and the dashboard at `/`.

Every error is a JSON body `{"error": {"where", "what", "hint"}}` with a 4xx status: an
unknown model is a 404, a bad sample a 422, a missing token a 401, an oversized body a
413. Responses are serialised with orjson straight from numpy arrays.
"""

import asyncio
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response

from neuralab.errors import NeuralabError
from neuralab.models.generative import Generative
from neuralab.runs import Prediction, Predictor
from neuralab.serve import dashboard
from neuralab.serve.batching import MicroBatcher, batch_invariant
from neuralab.serve.guards import ApiError, BodyLimit, RequestMetrics, error_body
from neuralab.serve.schemas import GenerateRequest, PredictRequest, prediction_rows, to_inputs
from neuralab.serve.store import ModelStore, Runtime, UnknownName, summary
from neuralab.version import __version__

STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class ServeSettings:
    """How the app serves; the defaults are `neuralab serve`'s.

    Args:
        runs_dir: The folder whose run directories are the models.
        token: When set, every `/v1` request needs `Authorization: Bearer <token>`.
        batching: Coalesce concurrent predictions into one forward pass.
        max_batch: Most samples in one batched forward pass.
        max_wait_ms: How long a request waits for others to join its batch.
        max_body_bytes: Larger request bodies are refused with 413.
        runtime: "torch", or "onnx" to run each run's exported model.onnx.
        trust_code: Load runs that carry code (`family: module`), which executes it.
    """

    runs_dir: Path
    token: str | None = None
    batching: bool = True
    max_batch: int = 64
    max_wait_ms: float = 0.0
    max_body_bytes: int = 1_000_000
    runtime: str = "torch"
    trust_code: bool = False


def json_response(content: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
    )


def create_app(settings: ServeSettings) -> FastAPI:
    """The ASGI app serving the run directories in `settings.runs_dir`."""
    store = ModelStore(
        Path(settings.runs_dir), runtime=settings.runtime, trust_code=settings.trust_code
    )
    batchers: dict[str, MicroBatcher] = {}
    app = FastAPI(title="neuralab", version=__version__, docs_url="/docs", redoc_url=None)
    app.include_router(_api(settings, store, batchers))
    registry = CollectorRegistry()

    @app.get("/healthz", summary="Liveness: the server answers")
    async def healthz() -> Response:
        return json_response({"status": "ok", "models": len(store.names())})

    @app.get("/metrics", summary="Request counts and latency histograms (Prometheus text)")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, registry=registry)
    return app


def _api(settings: ServeSettings, store: ModelStore, batchers: dict[str, MicroBatcher]):
    router = APIRouter(prefix="/v1", dependencies=[Depends(_token_check(settings.token))])

    @router.get("/models", summary="The served models")
    async def list_models() -> Response:
        return json_response({"models": [summary(n, store.card(n)) for n in store.names()]})

    @router.get("/models/{name}", summary="One model: family, task, input spec, metrics")
    async def show_model(name: str) -> Response:
        info, model = store.card(name), store.model(name)
        details = {
            "confusion_matrix": info.confusion_matrix,
            # an exported graph holds the forward pass, not the generation loop
            "generates": isinstance(model, Predictor) and model.runs_loops and generates(model),
        }
        return json_response({**summary(name, info), **details})

    @router.post(
        "/models/{name}/predict",
        summary="Predict a batch of samples",
        openapi_extra={"requestBody": _body_schema(PredictRequest)},
    )
    async def predict(name: str, request: Request) -> Response:
        # Parsed by pydantic-core's JSON reader in one pass, not json.loads + validation.
        payload = _parse(PredictRequest, await request.body())
        model = store.model(name)
        x = to_inputs(payload.inputs, model.meta, text=model.task.takes_text)
        prediction: Prediction
        if isinstance(x, list):  # seq2seq sources: decoded one by one, never padded
            prediction = await asyncio.to_thread(model.predict, x)
        elif settings.batching:
            batcher = batchers.get(name)
            if batcher is None:
                batcher = batchers[name] = MicroBatcher(
                    batch_invariant(model.predict),
                    max_batch=settings.max_batch,
                    max_wait_s=settings.max_wait_ms / 1000,
                )
            prediction = await batcher.predict(x)
        else:  # in a worker thread: a forward pass on the event loop would stall every request
            prediction = await asyncio.to_thread(batch_invariant(model.predict), x)
        return json_response({"model": name, "predictions": prediction_rows(prediction)})

    @router.post(
        "/models/{name}/generate",
        summary="Generate text (language models) or samples (GANs)",
        openapi_extra={"requestBody": _body_schema(GenerateRequest)},
    )
    async def generate(name: str, request: Request) -> Response:
        payload = _parse(GenerateRequest, await request.body())
        model = store.model(name)
        if not isinstance(model, Predictor) or not generates(model):
            info = store.card(name)  # only to say what this model is
            raise ApiError(
                400,
                NeuralabError(
                    "model",
                    f"'{name}' ({info.family}, {info.task}) does not generate",
                    "generation serves language models, GANs and VAEs; use /predict",
                ),
            )
        samples = await asyncio.to_thread(_generate, model, payload)
        return json_response({"model": name, "samples": samples})

    dashboard.add_routes(router, store)
    return router


def generates(model: Runtime) -> bool:
    """Language models write text; GANs and variational autoencoders draw samples."""
    if not isinstance(model, Predictor):
        return False
    return model.task.writes_text or isinstance(model.model, Generative)


def _generate(model: Predictor, request: GenerateRequest) -> list:
    """`num_samples` texts from a language model (the i-th seeded `seed + i`), or
    `num_samples` samples in the data's raw units from a GAN or variational autoencoder."""
    if model.task.writes_text:
        return [
            model.generate_text(
                request.prompt,
                request.max_tokens,
                temperature=request.temperature,
                top_k=request.top_k,
                seed=request.seed + i,
            )
            for i in range(request.num_samples)
        ]
    return model.samples(request.num_samples, seed=request.seed).tolist()


def _token_check(token: str | None):
    bearer = HTTPBearer(auto_error=False, description="The token given to `neuralab serve`.")

    async def check(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if token is None:
            return
        given = credentials.credentials if credentials else ""
        if not secrets.compare_digest(given.encode(), token.encode()):
            raise ApiError(
                401,
                NeuralabError(
                    "authorization",
                    "missing or wrong bearer token",
                    "send the header 'Authorization: Bearer <token>'",
                ),
            )

    return check


def _body_schema(model) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _parse(model, body: bytes):
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        raise RequestValidationError(error.errors(include_url=False, include_input=False)) from None


def _error_handlers(app: FastAPI) -> None:
    def problem(status: int, error: NeuralabError) -> Response:
        first = error.problems[0]
        return Response(
            error_body(first.where, first.what, first.hint),
            status_code=status,
            media_type="application/json",
            headers={"WWW-Authenticate": "Bearer"} if status == 401 else None,
        )

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> Response:
        return problem(error.status, error.error)

    @app.exception_handler(UnknownName)
    async def unknown(request: Request, error: UnknownName) -> Response:
        return problem(404, error)

    @app.exception_handler(NeuralabError)
    async def input_error(request: Request, error: NeuralabError) -> Response:
        return problem(422, error)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"] if part != "body") or "body"
        return problem(422, NeuralabError(where, first["msg"], "see /docs for the request schema"))

    @app.exception_handler(Exception)
    async def crashed(request: Request, error: Exception) -> Response:
        # A bug, not bad input: the body names no internals; the server log has the trace.
        return problem(500, NeuralabError("server", "internal error", "see the server log"))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        return problem(error.status_code, NeuralabError(request.url.path, str(error.detail)))
