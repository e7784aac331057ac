"""The FastAPI application: routes, error mapping, body limit, start-up (migrate, keys, catch-up)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import outbox, replan_job, scheduler
from api.context import Service
from api.db import warm_pool
from api.errors import install_handlers
from api.routes import (
    appointments,
    audit,
    board,
    calendar,
    health,
    intraday,
    keys,
    maintenance,
    me,
    plans,
    requests,
    technicians,
    travel,
)
from api.security import Role, ensure_key
from api.settings import Settings, get_settings

log = logging.getLogger("fieldplan.api")

DESCRIPTION = """
fieldplan plans after-sales field service: who goes where, when.

Authenticate with an API key: `Authorization: Bearer fp_...`. Roles: **dispatcher** (technicians,
requests, plans), **technician** (own route and visits only), **admin** (keys, and what a dispatcher
may do). Errors are JSON: `{"detail": ...}`; invalid bodies answer 422 with one entry per field.
"""


class InsecureConfiguration(RuntimeError):
    pass


class BodyLimit:
    """413 for bodies over the limit, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._reject(send)
            return
        seen = 0
        too_big = False
        replied = False

        async def counted() -> Message:
            # Past the limit the body ends there for the app (whatever it makes of it, the answer is
            # replaced below): an exception here would reach the framework's own body parser,
            # which turns every failure into a 400.
            nonlocal seen, too_big
            if too_big:
                return {"type": "http.request", "body": b"", "more_body": False}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    too_big = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def answer(message: Message) -> None:
            nonlocal replied
            if not too_big:
                await send(message)
            elif not replied:
                replied = True
                await self._reject(send)

        await self.app(scope, counted, answer)

    async def _reject(self, send: Send) -> None:
        body = (
            b'{"detail":"request body larger than the limit of %d bytes (FIELDPLAN_MAX_BODY_BYTES)",'
            b'"code":"payload_too_large"}' % self.limit
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def create_app(
    service: Service | None = None, *, settings: Settings | None = None, demo: bool = False
) -> FastAPI:
    """An app over `service` (tests, demo) or over the database the settings name."""
    settings = settings or (service.settings if service else get_settings())
    if not demo and settings.admin_key is None:
        raise InsecureConfiguration(
            "FIELDPLAN_ADMIN_KEY is not set: the service refuses to start without an admin key "
            "(at least 24 characters); `fieldplan serve --demo` makes a throw-away demo instead"
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = app.state.service is None
        if own:
            app.state.service = Service.open(settings)
        svc: Service = app.state.service
        warm_pool(svc.engine)
        if settings.admin_key:
            with svc.sessions.begin() as session:
                ensure_key(session, settings.admin_key, role=Role.ADMIN, label="FIELDPLAN_ADMIN_KEY")
        sched = None
        deliverer = outbox.Deliverer(svc).start() if settings.webhook_urls else None
        if settings.scheduler:
            scheduler.on_startup(svc)
            sched = scheduler.start(svc)
        try:
            yield
        finally:
            if sched is not None:
                sched.shutdown(wait=False)
            if deliverer is not None:
                deliverer.stop()
            if own:
                replan_job.shutdown_pool()
                svc.close()

    # Swagger UI and ReDoc from assets shipped in a package: /docs works with no network.
    app = FastAPIOffline(
        title="fieldplan",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "technicians", "description": "dispatcher: the field force and its shifts"},
            {"name": "service requests", "description": "dispatcher: jobs to plan"},
            {"name": "plans", "description": "dispatcher: re-plan, read and publish plans"},
            {"name": "technician", "description": "a technician's own route and visits"},
            {"name": "the day", "description": "dispatcher: events of today and in-day re-optimisation"},
            {"name": "keys", "description": "admin: API keys"},
            {"name": "audit", "description": "dispatcher: who did what, and what must be told"},
            {
                "name": "board",
                "description": "dispatcher: what the dispatch board (/board) reads and changes",
            },
        ],
    )
    app.state.service = service
    install_handlers(app)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route matching the path; every method of the path is allowed.
            allowed: set[str] = set()
            for route in app.router.routes:
                match, _ = route.matches(request.scope)
                if match != Match.NONE and isinstance(route, APIRoute) and route.methods:
                    allowed |= route.methods
            headers["Allow"] = ", ".join(sorted(allowed))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    for module in (
        technicians,
        requests,
        plans,
        appointments,
        intraday,
        travel,
        me,
        calendar,
        audit,
        keys,
        health,
        board,
        maintenance,
    ):
        app.include_router(module.router)
    app.include_router(board.page)
    app.mount("/board/static", board.BoardFiles(directory=board.STATIC), name="board-static")
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        )
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app


def factory() -> Any:
    """Entry point for `uvicorn --factory api.app:factory` (several workers)."""
    return create_app()
