"""Request authentication: the bearer token (API) or the session cookie (web pages) to a principal.

Every API route depends on :func:`access` through ``Security(access, scopes=[permission])``, so
its permission is in the OpenAPI document (as an OAuth2 scope) and checked before the route
runs; the query layer (:mod:`gateway.access`) checks it again and applies tenant isolation.

An app built with ``auth=False`` (only ``parkvpp bench gateway`` does, to measure what the
auth layer costs) serves every request as an administrator without reading any token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Request, Security
from fastapi.security import OAuth2PasswordBearer, SecurityScopes

from gateway.access import PERMISSIONS, Access, allowed
from gateway.identity import AuthError, Principal, verify_access
from gateway.problems import Forbidden, Unauthorized

ACCESS_COOKIE = "parkvpp_access"
REFRESH_COOKIE = "parkvpp_refresh"
TOKEN_URL = "/api/v1/auth/token"

oauth2 = OAuth2PasswordBearer(
    tokenUrl=TOKEN_URL,
    auto_error=False,
    scopes={p: f"permission {p} (granted by the user's role)" for p in PERMISSIONS},
)
UNAUTHENTICATED = Principal(username="no-auth", role="admin", display_name="auth layer off (benchmark)")


def principal_from(request: Request, token: str | None) -> Principal:
    if not request.app.state.auth:
        return UNAUTHENTICATED
    token = token or request.cookies.get(ACCESS_COOKIE)
    if not token:
        raise Unauthorized("sign in first: POST /api/v1/auth/token, then send Authorization: Bearer <token>")
    try:
        who = verify_access(request.app.state.engine, token)
    except AuthError as exc:
        raise Unauthorized(str(exc)) from exc
    request.state.user = who.username
    return who


def access(
    request: Request, security: SecurityScopes, token: Annotated[str | None, Security(oauth2)]
) -> Access:
    who = principal_from(request, token)
    for permission in security.scopes:
        if not allowed(who, permission):
            raise Forbidden(f"role {who.role} lacks permission {permission}")
    return Access(request.app.state.engine, request.app.state.settings, who)
