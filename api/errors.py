"""Domain exceptions of the service, turned into HTTP answers in one place (`install_handlers`)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError

log = logging.getLogger("fieldplan.api")


class ServiceError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, **extra: object) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class ReplanInProgress(Conflict):
    code = "replan_in_progress"


class Unprocessable(ServiceError):
    """A semantic problem with a field, reported like pydantic's 422 so clients parse one shape."""

    status_code = 422
    code = "unprocessable"

    def __init__(self, loc: list[str | int], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class GeocodingFailed(Unprocessable):
    code = "geocoding_failed"


class Unavailable(ServiceError):
    """Something the service depends on does not answer: retry after `retry_after` seconds."""

    status_code = 503
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class GeocoderUnavailable(Unavailable):
    code = "geocoder_unavailable"


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "payload_too_large"


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            # Not JSON at all is a malformed request (400), not a JSON value with a bad field (422).
            return JSONResponse(
                status_code=400, content={"detail": "the body is not valid JSON", "code": "bad_json"}
            )
        # FastAPI's default echoes every bad `input` back: NaN cannot be encoded (a 500), a 10,000-job
        # bulk would come back whole, and a pasted secret would be reflected. Field, reason, kind only.
        detail = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()[:50]
        ]
        return JSONResponse(status_code=422, content={"detail": detail})

    @app.exception_handler(Unprocessable)
    async def _unprocessable(_: Request, exc: Unprocessable) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content={"detail": [{"loc": exc.loc, "msg": exc.message, "type": exc.code}]},
        )

    @app.exception_handler(ServiceError)
    async def _service(_: Request, exc: ServiceError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Unavailable) else None
        return JSONResponse(
            status_code=exc.status_code,
            content={"detail": exc.message, "code": exc.code, **exc.extra},
            headers=headers,
        )

    @app.exception_handler(DBAPIError)
    async def _db(_: Request, exc: DBAPIError) -> JSONResponse:
        if not (isinstance(exc, OperationalError) or exc.connection_invalidated):
            raise exc
        # The message of a driver error can carry the connection string: log the class only.
        log.warning("database unavailable: %s", type(exc.orig).__name__ if exc.orig else type(exc).__name__)
        return JSONResponse(
            status_code=503,
            headers={"Retry-After": "5"},
            content={
                "detail": "the database is not reachable; retry shortly",
                "code": "database_unavailable",
            },
        )
