"""Dependency aliases the routes declare: the session, the caller and their role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.context import Service
from api.security import Principal, Role, authenticate

bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer fp_...`")


DayQuery = Annotated[date | None, Query(alias="date", description="default: today")]


def get_service(request: Request) -> Service:
    return request.app.state.service  # type: ignore[no-any-return]


ServiceDep = Annotated[Service, Depends(get_service)]


def get_session(service: ServiceDep) -> Iterator[Session]:
    with service.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_principal(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing API key", headers={"WWW-Authenticate": "Bearer"}
        )
    principal = authenticate(session, credentials.credentials)
    session.rollback()  # end the read transaction; the route starts its own
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"}
        )
    return principal


def require(*roles: Role) -> Callable[[Principal], Principal]:
    def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this operation needs the role {' or '.join(roles)}"
            )
        return principal

    return check


Dispatcher = Annotated[Principal, Depends(require(Role.DISPATCHER, Role.ADMIN))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


def current_technician(principal: Annotated[Principal, Depends(require(Role.TECHNICIAN))]) -> str:
    assert principal.technician_id is not None
    return principal.technician_id


CurrentTechnician = Annotated[str, Depends(current_technician)]
TechnicianKey = Annotated[Principal, Depends(require(Role.TECHNICIAN))]
