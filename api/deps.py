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


def unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"})


def bearer_key(request: Request) -> str | None:
    """The key of `Authorization: Bearer <key>`, as `bearer` reads it (for a route that reads the key
    itself to save the dependencies' thread hops)."""
    scheme, _, key = (request.headers.get("authorization") or "").partition(" ")
    return key or None if scheme.lower() == "bearer" else None


def known(principal: Principal | None) -> Principal:
    if principal is None:
        raise unauthorized("invalid or revoked API key")
    return principal


def check_role(principal: Principal, roles: tuple[Role, ...]) -> Principal:
    if principal.role not in roles:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"this operation needs the role {' or '.join(roles)}")
    return principal


def get_principal(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise unauthorized("missing API key")
    principal = authenticate(session, credentials.credentials)
    session.rollback()  # end the read transaction; the route starts its own
    return known(principal)


def require(*roles: Role) -> Callable[[Principal], Principal]:
    def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        return check_role(principal, roles)

    return check


Dispatcher = Annotated[Principal, Depends(require(Role.DISPATCHER, Role.ADMIN))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


def current_technician(principal: Annotated[Principal, Depends(require(Role.TECHNICIAN))]) -> str:
    assert principal.technician_id is not None
    return principal.technician_id


CurrentTechnician = Annotated[str, Depends(current_technician)]
