"""Dispatcher: assets, maintenance contracts and their occurrences; compliance and the forecast."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status
from fastapi.responses import Response
from pydantic import Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from api import audit, maintenance
from api.deps import Dispatcher, ServiceDep, SessionDep
from api.errors import Conflict, NotFound, Unprocessable
from api.geocode import geocode
from api.schemas import PROTECTED
from api.tables import AssetRow, ContractRow, TechnicianRow
from models import GeoPoint
from models.maintenance import Asset, MaintenanceContract

router = APIRouter(tags=["maintenance"], responses=PROTECTED)


class AssetCreate(Asset):
    """An asset as a dispatcher sends it: coordinates, or an address the service geocodes."""

    location: GeoPoint | None = None  # type: ignore[assignment]
    address: Annotated[str, Field(min_length=3, max_length=500)] | None = None

    @model_validator(mode="after")
    def _somewhere(self) -> AssetCreate:
        if self.location is None and self.address is None:
            raise ValueError("give `location` (lat/lon) or an `address` to geocode")
        return self


class AssetPublic(Asset):
    address: str | None = None


class ContractPublic(MaintenanceContract):
    status: Literal["active", "cancelled"]
    cancelled_on: date | None = None
    last_done_on: date | None = Field(None, description="the last completed visit the service recorded")
    generated: dict[str, list[str]] | None = Field(
        None, description="occurrences this call created, withdrew or updated"
    )


def _asset_public(row: AssetRow) -> AssetPublic:
    return AssetPublic(**maintenance.asset_model(row).model_dump(), address=row.address)


def _contract_public(row: ContractRow, generated: maintenance.Generated | None = None) -> ContractPublic:
    return ContractPublic(
        **maintenance.contract_model(row).model_dump(),
        status=row.status,  # type: ignore[arg-type]
        cancelled_on=row.cancelled_on,
        last_done_on=row.last_done,
        generated=generated.as_dict() if generated is not None else None,
    )


def _asset_row(session: Session, service: Any, body: AssetCreate, row: AssetRow | None) -> AssetRow:
    location = body.location or geocode(session, service.settings, body.address or "", ["body", "address"])
    asset = Asset.model_validate(
        {**body.model_dump(exclude={"address", "location"}), "location": location.model_dump()}
    )
    if row is None:
        row = AssetRow(id=asset.id, spec=asset.model_dump(mode="json"), address=body.address)
        session.add(row)
    else:
        row.spec, row.address = asset.model_dump(mode="json"), body.address
    return row


@router.post("/v1/assets", status_code=status.HTTP_201_CREATED, response_model=AssetPublic)
def create_asset(body: AssetCreate, session: SessionDep, service: ServiceDep, who: Dispatcher) -> AssetPublic:
    with session.begin():
        if session.get(AssetRow, body.id) is not None:
            raise Conflict(f"asset {body.id!r} exists; use PUT /v1/assets/{body.id} to change it")
        row = _asset_row(session, service, body, None)
        audit.record(
            session, now=service.now(), actor=audit.actor_of(who), action="asset.created", subject=body.id
        )
    return _asset_public(row)


@router.put("/v1/assets/{asset_id}", response_model=AssetPublic)
def put_asset(
    asset_id: str, body: AssetCreate, session: SessionDep, service: ServiceDep, who: Dispatcher
) -> AssetPublic:
    if body.id != asset_id:
        raise Unprocessable(["body", "id"], f"id {body.id!r} differs from the path's {asset_id!r}")
    with session.begin():
        row = _asset_row(session, service, body, session.get(AssetRow, asset_id))
        audit.record(
            session, now=service.now(), actor=audit.actor_of(who), action="asset.replaced", subject=asset_id
        )
    return _asset_public(row)


@router.get("/v1/assets", response_model=list[AssetPublic])
def list_assets(session: SessionDep, _: Dispatcher) -> list[AssetPublic]:
    return [_asset_public(r) for r in session.scalars(select(AssetRow).order_by(AssetRow.id))]


@router.get("/v1/assets/{asset_id}", response_model=AssetPublic)
def get_asset(asset_id: str, session: SessionDep, _: Dispatcher) -> AssetPublic:
    row = session.get(AssetRow, asset_id)
    if row is None:
        raise NotFound(f"no asset {asset_id!r}")
    return _asset_public(row)


def _check_references(session: Session, body: MaintenanceContract) -> None:
    for i, aid in enumerate(body.asset_ids):
        if session.get(AssetRow, aid) is None:
            raise Unprocessable(["body", "asset_ids", i], f"unknown asset {aid!r}; POST /v1/assets first")
    pref = body.preferred_technician_id
    if pref is not None and session.get(TechnicianRow, pref) is None:
        raise Unprocessable(["body", "preferred_technician_id"], f"unknown technician {pref!r}")


def _generate(session: Session, service: Any, who: Any, contract_id: str) -> maintenance.Generated:
    return maintenance.generate(
        session,
        today=service.today(),
        weeks=service.settings.maintenance_weeks,
        tz=service.tz,
        now=service.now(),
        actor=audit.actor_of(who),
        only=[contract_id],
    )


@router.post("/v1/contracts", status_code=status.HTTP_201_CREATED, response_model=ContractPublic)
def create_contract(
    body: MaintenanceContract, session: SessionDep, service: ServiceDep, who: Dispatcher
) -> ContractPublic:
    """Store a contract and generate its occurrences over the rolling horizon at once."""
    with session.begin():
        if session.get(ContractRow, body.id) is not None:
            raise Conflict(f"contract {body.id!r} exists; use PUT /v1/contracts/{body.id} to change it")
        _check_references(session, body)
        row = ContractRow(
            id=body.id, spec=body.model_dump(mode="json"), status="active", last_done=body.last_done
        )
        session.add(row)
        session.flush()
        audit.record(
            session, now=service.now(), actor=audit.actor_of(who), action="contract.created", subject=body.id
        )
        generated = _generate(session, service, who, body.id)
    return _contract_public(row, generated)


@router.put("/v1/contracts/{contract_id}", response_model=ContractPublic)
def put_contract(
    contract_id: str, body: MaintenanceContract, session: SessionDep, service: ServiceDep, who: Dispatcher
) -> ContractPublic:
    """Change a contract: future, unplanned occurrences follow; planned or done ones are kept."""
    if body.id != contract_id:
        raise Unprocessable(["body", "id"], f"id {body.id!r} differs from the path's {contract_id!r}")
    with session.begin():
        row = session.get(ContractRow, contract_id)
        if row is None:
            raise NotFound(f"no contract {contract_id!r}; POST /v1/contracts creates one")
        if row.status != "active":
            raise Conflict(f"contract {contract_id!r} was cancelled on {row.cancelled_on}")
        _check_references(session, body)
        row.spec = body.model_dump(mode="json")
        if body.last_done is not None and (row.last_done is None or body.last_done > row.last_done):
            row.last_done = body.last_done
        session.flush()
        audit.record(
            session,
            now=service.now(),
            actor=audit.actor_of(who),
            action="contract.replaced",
            subject=contract_id,
        )
        generated = _generate(session, service, who, contract_id)
    return _contract_public(row, generated)


@router.delete("/v1/contracts/{contract_id}", response_model=ContractPublic)
def cancel_contract(
    contract_id: str, session: SessionDep, service: ServiceDep, who: Dispatcher
) -> ContractPublic:
    """Cancel a contract: its future visits not yet started are withdrawn (cancelled)."""
    with session.begin():
        row = session.get(ContractRow, contract_id)
        if row is None:
            raise NotFound(f"no contract {contract_id!r}")
        withdrawn: list[str] = []
        if row.status == "active":
            row.status, row.cancelled_on = "cancelled", service.today()
            withdrawn = maintenance.withdraw_future(session, contract_id, today=service.today())
            audit.record(
                session,
                now=service.now(),
                actor=audit.actor_of(who),
                action="contract.cancelled",
                subject=contract_id,
                withdrawn=withdrawn[:100],
            )
    return _contract_public(row, maintenance.Generated(withdrawn=withdrawn))


@router.get("/v1/contracts", response_model=list[ContractPublic])
def list_contracts(session: SessionDep, _: Dispatcher) -> list[ContractPublic]:
    return [_contract_public(r) for r in session.scalars(select(ContractRow).order_by(ContractRow.id))]


@router.get("/v1/contracts/{contract_id}", response_model=ContractPublic)
def get_contract(contract_id: str, session: SessionDep, _: Dispatcher) -> ContractPublic:
    row = session.get(ContractRow, contract_id)
    if row is None:
        raise NotFound(f"no contract {contract_id!r}")
    return _contract_public(row)


@router.get("/v1/contracts/{contract_id}/occurrences")
def contract_occurrences(contract_id: str, session: SessionDep, _: Dispatcher) -> list[dict[str, Any]]:
    """Every occurrence generated for the contract, oldest first, with where its visit stands."""
    if session.get(ContractRow, contract_id) is None:
        raise NotFound(f"no contract {contract_id!r}")
    return maintenance.occurrence_list(session, contract_id)


@router.post("/v1/maintenance/generate")
def generate_now(session: SessionDep, service: ServiceDep, who: Dispatcher) -> dict[str, Any]:
    """Generate occurrences for every active contract now (the nightly job does it before planning)."""
    with session.begin():
        generated = maintenance.generate(
            session,
            today=service.today(),
            weeks=service.settings.maintenance_weeks,
            tz=service.tz,
            now=service.now(),
            actor=audit.actor_of(who),
        )
    return generated.as_dict()


@router.get("/v1/maintenance/compliance")
def get_compliance(
    session: SessionDep,
    service: ServiceDep,
    _: Dispatcher,
    risk_days: Annotated[int, Query(ge=0, le=366, description="at risk: window closing within N days")] = 14,
) -> dict[str, Any]:
    return maintenance.compliance(session, today=service.today(), risk_days=risk_days)


@router.get(
    "/v1/maintenance/forecast",
    responses={200: {"content": {"application/json": {}, "image/png": {}}}},
)
def get_forecast(
    session: SessionDep,
    service: ServiceDep,
    _: Dispatcher,
    weeks: Annotated[int, Query(ge=1, le=104)] = 12,
    format: Annotated[Literal["json", "png"], Query(description="json, or png for the chart")] = "json",
) -> Any:
    """Maintenance hours per skill per week against shift hours; beyond the generation horizon the
    occurrences are projected from the contracts' rules (nothing is created)."""
    data = maintenance.forecast(
        session, today=service.today(), weeks=weeks, generated_weeks=service.settings.maintenance_weeks
    )
    if format == "png":
        return Response(maintenance.forecast_png(data), media_type="image/png")
    return data
