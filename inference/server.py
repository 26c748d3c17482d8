"""`python -m inference serve`: the extractor behind a small HTTP API (FastAPI, run by uvicorn).

POST /extract takes one article `{"text", "id"?}` or several `{"articles": [...]}` (and an
optional `min_score`); GET /health and GET /model describe the server and the run; /docs is
the OpenAPI page. Concurrent requests are micro-batched (inference.batching) into one
`extract_many` call. Requests are bounded: body size (413), articles per request and characters
per article (413), time (504); malformed input gets a 4xx with a message.
"""
from __future__ import annotations

import asyncio
import ctypes
import json
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Literal

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field, model_validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .batching import MicroBatcher, QueueFull
from .extractor import NewsExtractor, keep_confident
from .schema import Article


@dataclass(frozen=True)
class ServerLimits:
    """What one request may ask for, and how requests are batched."""

    max_body_bytes: int = 2_000_000
    max_articles: int = 64
    max_chars: int = 200_000
    timeout_s: float = 60.0
    max_batch: int = 32  # texts gathered into one model call
    max_wait_ms: float = 5.0  # how long the first request of a batch waits for others
    max_queue: int = 1024  # texts waiting beyond this get 503

    def __post_init__(self) -> None:
        bad = [k for k, v in asdict(self).items() if v < 0 or (v == 0 and k != "max_wait_ms")]
        if bad:
            raise ValueError(f"server limits must be positive: {', '.join(bad)}")


class ArticleIn(BaseModel):
    text: str = Field(description="the article, raw text of any length (up to the server's character limit)")
    id: str | None = Field(None, description="returned as is; default: the article's position in the request")


class ExtractRequest(BaseModel):
    """One article (`text`, `id`) or several (`articles`), not both."""

    text: str | None = None
    id: str | None = None
    articles: list[ArticleIn] | None = None
    min_score: float | dict[str, float] | Literal["run"] | None = Field(
        None, description='leave out entities and relations scoring under this (0..1), under a floor per label '
        '({"Peop": 0.8}), or under the per-type thresholds the run stores ("run"); default: the run\'s decision '
        'floors (chosen on dev for the best F1); 0 returns everything')

    @model_validator(mode="after")
    def one_form(self) -> ExtractRequest:
        if (self.text is None) == (self.articles is None):
            raise ValueError("give either 'text' (one article) or 'articles' (a list of {text, id}), not both or neither")
        return self

    def items(self) -> list[tuple[str, str]]:
        """(text, id) of each article in the request."""
        if self.articles is None:
            return [(self.text or "", self.id or "0")]
        return [(a.text, a.id if a.id is not None else str(k)) for k, a in enumerate(self.articles)]


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` gets 413 before it is read into memory."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps({"detail": f"request body over {self.max_bytes} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


_TRIM = _malloc_trim()


def release_freed_memory() -> None:
    """Hand memory freed by a batch back to the system (glibc keeps it otherwise, and a server's
    resident size then creeps up with the largest batches it has seen); a no-op off glibc."""
    if _TRIM is not None:
        _TRIM(0)


def model_summary(extractor: NewsExtractor, run_dir: Path) -> dict[str, Any]:
    """What GET /model returns: labels, encoder, calibration and the run's evaluation, if any."""
    settings = extractor.settings
    calibration = settings.get("calibration") or {}
    relations = settings.get("relations") or {}
    metrics_path = run_dir / "metrics.json"
    metrics = None
    if metrics_path.is_file():
        full = json.loads(metrics_path.read_text(encoding="utf-8"))
        metrics = {k: full.get(k) for k in ("data", "level", "ner", "relations", "calibration", "commit", "date")}
    return {
        "run": str(run_dir),
        "encoder": settings["encoder"],
        "entity_labels": extractor.entity_labels,
        "relation_labels": relations.get("labels", []),
        "calibration": {
            "calibrated": bool(extractor.calibration),
            "temperatures": {k: v for k, v in calibration.items() if k.endswith("temperature")},
            "maps": sorted(k for k in calibration if k.endswith("platt")),
            "thresholds": {kind: {label: t["min_score"] for label, t in rows.items()}
                           for kind, rows in (calibration.get("thresholds") or {}).items() if isinstance(rows, dict)},
            "fitted_on": calibration.get("fitted_on"),
        },
        "training": {part: {k: v for k, v in (result or {}).items() if k != "history"}
                     for part, result in (settings.get("training") or {}).items()},
        "metrics": metrics,
    }


def create_app(extractor: NewsExtractor, run_dir: Path, limits: ServerLimits = ServerLimits()) -> FastAPI:
    """The FastAPI application serving `extractor` under `limits`."""

    def run_model(items: list[tuple[str, str]]) -> list[Article]:
        try:
            # Everything found: each request's own floor (or the default decision floors) applies below.
            return extractor.extract_many([t for t, _ in items], ids=[i for _, i in items], batch_size=limits.max_batch, min_score=0.0)
        finally:
            release_freed_memory()

    batcher: MicroBatcher[tuple[str, str], Article] = MicroBatcher(
        run_model, limits.max_batch, limits.max_wait_ms / 1000, limits.max_queue
    )
    summary = model_summary(extractor, run_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="news-extract", summary="Entities and relations of news articles, with character offsets and scores",
                  version="0.1.0", lifespan=lifespan)

    @app.post("/extract")
    async def extract(request: ExtractRequest) -> dict[str, Any]:
        """Entities and relations of one article (the article's JSON) or several (`{"articles": [...]}`)."""
        items = request.items()
        try:
            floor = extractor.score_floor(request.min_score)  # checked before any work
        except ValueError as err:
            raise HTTPException(422, str(err)) from None
        if len(items) > limits.max_articles:
            raise HTTPException(413, f"{len(items)} articles in one request; the limit is {limits.max_articles}")
        for text, article_id in items:
            if len(text) > limits.max_chars:
                raise HTTPException(413, f"article {article_id!r} has {len(text)} characters; the limit is {limits.max_chars}")
        try:
            articles = await asyncio.wait_for(batcher.submit(items), limits.timeout_s)
        except asyncio.TimeoutError:
            raise HTTPException(504, f"extraction took over {limits.timeout_s:g} s; send fewer or shorter articles") from None
        except QueueFull as err:
            raise HTTPException(503, str(err), headers={"Retry-After": "1"}) from None
        if floor is not None:
            articles = [keep_confident(a, floor, keep_related=request.min_score is None) for a in articles]
        out = [a.to_dict() for a in articles]
        return out[0] if request.articles is None else {"articles": out}

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness, the batching counters and what is waiting."""
        return {"status": "ok", "waiting": batcher.waiting, "batching": asdict(batcher.stats), "limits": asdict(limits)}

    @app.get("/model")
    async def model() -> dict[str, Any]:
        """Labels, encoder, calibration summary and the run's metrics (from metrics.json, if evaluated)."""
        return summary

    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    return app


def serve(run_dir: Path, host: str, port: int, limits: ServerLimits) -> None:
    """Load the run, then serve it with uvicorn until interrupted."""
    import uvicorn

    extractor = NewsExtractor.from_pretrained(run_dir)
    uvicorn.run(create_app(extractor, run_dir, limits), host=host, port=port, log_level="info")
