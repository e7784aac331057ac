"""The dispatch board: the page (`/board`) and the `/v1` endpoints it reads and writes through.

The page is static (HTML, our script and style, Leaflet vendored with its licence) and served with a
Content-Security-Policy that lets it load and connect to this service only (and images from the
tile server a user configured, when one is). It holds no second way into the data: every value it
shows comes from the endpoints below, documented in OpenAPI like the rest.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

from api import audit, dispatch
from api.deps import Dispatcher, ServiceDep, SessionDep, get_principal
from api.errors import NotFound
from api.routes.requests import public
from api.schemas import (
    PROTECTED,
    BoardDay,
    DayDiff,
    EvaluateRequest,
    PinBody,
    PinResult,
    RowId,
    Waiting,
    WhoAmI,
)
from api.security import Principal
from api.settings import Settings
from models import Kpis
from optimizer.evaluate import Evaluation

STATIC = Path(__file__).resolve().parent.parent / "static" / "board"

router = APIRouter(tags=["board"], responses=PROTECTED)
page = APIRouter(include_in_schema=False)

Which = Annotated[
    Literal["newest", "published"],
    Query(description="newest: the proposal when one waits, else the plan; published: what technicians see"),
]


def content_security_policy(settings: Settings) -> str:
    """Scripts, styles and connections from the service only; images also from a configured tile
    server (its origin, never a wildcard)."""
    images = "'self' data: blob:"  # blob: the maintenance chart, fetched with the key
    if settings.board_tile_url:
        parts = urlsplit(settings.board_tile_url.replace("{s}", "a"))
        images += f" {parts.scheme}://{parts.netloc.split('@')[-1]}"
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        f"img-src {images}; connect-src 'self'; font-src 'self'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


def _secured(response: Response, settings: Settings) -> Response:
    response.headers["Content-Security-Policy"] = content_security_policy(settings)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-cache"
    return response


@page.get("/board")
def board_page(service: ServiceDep) -> Response:
    """The page itself: no sign-in needed to load it; the API key is asked for on the page."""
    return _secured(FileResponse(STATIC / "index.html", media_type="text/html"), service.settings)


class BoardFiles(StaticFiles):
    """The page's own files, with the page's security headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        service = scope["app"].state.service
        return _secured(response, service.settings)


@page.get("/board/config.json")
def board_config(service: ServiceDep) -> dict[str, str | None]:
    """What the page needs before sign-in: the optional tile server, the zone and the service's day."""
    return {
        "tile_url": service.settings.board_tile_url,
        "timezone": service.settings.timezone,
        "today": service.today().isoformat(),
    }


@router.get("/v1/me", response_model=WhoAmI)
def who_am_i(p: Annotated[Principal, Depends(get_principal)]) -> WhoAmI:
    """The key's role (and technician): the board opens the dispatcher's board or the technician's day."""
    return WhoAmI(role=p.role, technician_id=p.technician_id)


@router.get("/v1/days/{day}/board", response_model=BoardDay)
def day_board(
    day: date, session: SessionDep, service: ServiceDep, _: Dispatcher, version: Which = "newest"
) -> BoardDay:
    """Everything the board draws for a day in one answer (routes, jobs, waiting list, KPIs)."""
    return dispatch.board_day(session, service, day, version)


@router.get("/v1/days/{day}/kpis", response_model=Kpis)
def day_kpis(
    day: date, session: SessionDep, service: ServiceDep, _: Dispatcher, version: Which = "newest"
) -> Kpis:
    """The KPIs of one day (a version's KPIs cover its whole horizon)."""
    kpis = dispatch.day_kpis(session, service, day, version)
    if kpis is None:
        raise NotFound(f"no plan for {day}")
    return kpis


@router.get("/v1/days/{day}/unassigned", response_model=list[Waiting])
def day_waiting(
    day: date, session: SessionDep, service: ServiceDep, _: Dispatcher, version: Which = "newest"
) -> list[Waiting]:
    """The jobs left out that could be done this day, with their reasons (the board's waiting list)."""
    return dispatch.board_day(session, service, day, version).waiting


@router.get("/v1/days/{day}/diff", response_model=DayDiff)
def day_diff(day: date, session: SessionDep, service: ServiceDep, _: Dispatcher) -> DayDiff:
    """What publishing the day's proposal would change: jobs moved to another technician or day,
    re-timed, new, dropped (empty when no proposal waits)."""
    return dispatch.day_diff(session, service, day)


@router.post("/v1/plans/{version_id:int}/evaluate", response_model=Evaluation)
def evaluate(
    version_id: RowId, body: EvaluateRequest, session: SessionDep, service: ServiceDep, _: Dispatcher
) -> Evaluation:
    """What placing a job on a technician's day (at a time) would do, before the drop: feasible or
    why not, added travel, overtime, lateness, which visits shift. Nothing is stored."""
    return dispatch.evaluate_placing(session, service, version_id, body)


@router.put(
    "/v1/requests/{request_id}/pin",
    response_model=PinResult,
    responses={409: {"description": "it cannot go there (the reason is in the detail)"}},
)
def pin_request(
    request_id: str, body: PinBody, session: SessionDep, service: ServiceDep, who: Dispatcher
) -> PinResult:
    """Pin a request to a technician and day (and a start): placed at once into the day's newest
    version (a proposal on a published day: publish the day to tell the technicians), and kept
    there by every re-plan until unpinned."""
    with session.begin():
        row, version, result = dispatch.pin(session, service, request_id, body, audit.actor_of(who))
    return PinResult(request=public(row), plan_version=version, evaluation=result)


@router.delete("/v1/requests/{request_id}/pin", response_model=PinResult)
def unpin_request(request_id: str, session: SessionDep, service: ServiceDep, who: Dispatcher) -> PinResult:
    """Unpin: the visit stays where it is until the next re-plan, which may move it."""
    with session.begin():
        row = dispatch.unpin(session, service, request_id, audit.actor_of(who))
    return PinResult(request=public(row))
