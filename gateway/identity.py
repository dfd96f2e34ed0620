"""Who may sign in: users with argon2 password hashes, roles, tenants, short-lived JWTs.

Access tokens are JWTs (HS256, pyjwt) valid for ``ACCESS_MINUTES``; refresh tokens are random
strings stored only as their SHA-256, valid for ``REFRESH_DAYS`` and rotated on every use, so a
stolen refresh token works once. Logout revokes the refresh token and the access token's ``jti``.
The signing secret is ``PARKVPP_JWT_SECRET`` or, when unset, a random secret kept in the
database so every process of one installation shares it.

Roles: ``operator`` (review and approve), ``trader`` (market views), ``enterprise`` (one
enterprise's own data: the user's ``enterprise_id`` is the tenant), ``auditor`` (read
everything, audit log included), ``admin`` (users, and everything). A user may be bound to one
park (``park_id``) or see every park (``None``).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, delete, select, update

from gateway.tables import gateway_refresh_tokens, gateway_revoked_tokens, gateway_secrets, gateway_users
from infra.registry import audit
from infra.timeutil import now

ROLES = ("admin", "operator", "trader", "enterprise", "auditor")
ACCESS_MINUTES = 15
REFRESH_DAYS = 7
ALGORITHM = "HS256"
ISSUER = "parkvpp-gateway"
MIN_PASSWORD = 10
_HASHER = PasswordHasher()
# A hash to verify against when the user does not exist, so timing does not reveal user names.
_DUMMY_HASH = _HASHER.hash("parkvpp-no-such-user")


class IdentityError(ValueError):
    """A user cannot be created or changed as asked; the message names the field."""


class AuthError(Exception):
    """Sign-in or token refused; the message is safe to show (it never says which part was wrong)."""


@dataclass(frozen=True)
class Principal:
    """The signed-in user as every query sees it."""

    username: str
    role: str
    park_id: str | None = None
    enterprise_id: str | None = None
    display_name: str = ""
    token_id: str | None = None
    token_expires: datetime | None = None

    @property
    def is_enterprise(self) -> bool:
        return self.role == "enterprise"


def _audit(conn: Connection, actor: str, action: str, subject: str, before: Any, after: Any) -> None:
    audit.record(conn, actor, action, "*", f"user:{subject}", before=before, after=after)


def _public(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    data.pop("password_hash", None)
    return data


def add_user(
    engine: Engine,
    username: str,
    password: str,
    role: str,
    *,
    actor: str,
    park_id: str | None = None,
    enterprise_id: str | None = None,
    display_name: str = "",
) -> dict[str, Any]:
    problems = []
    if not username or len(username) > 64 or not all(c.isalnum() or c in "._-@" for c in username):
        problems.append(f"username: {username[:80]!r} must be 1-64 letters, digits or . _ - @")
    if role not in ROLES:
        problems.append(f"role: {role!r} must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        problems.append(f"password: must have at least {MIN_PASSWORD} characters")
    if role == "enterprise" and not (enterprise_id and park_id):
        problems.append("enterprise_id: an enterprise user needs its park and enterprise (the tenant)")
    if role != "enterprise" and enterprise_id:
        problems.append(f"enterprise_id: only enterprise users belong to an enterprise, not {role}")
    if problems:
        raise IdentityError("; ".join(problems))
    row = {
        "username": username,
        "password_hash": _HASHER.hash(password),
        "role": role,
        "park_id": park_id,
        "enterprise_id": enterprise_id,
        "display_name": display_name or username,
        "disabled": False,
        "created_by": actor,
        "created_at": now(),
    }
    with engine.begin() as conn:
        if conn.execute(select(gateway_users.c.username).where(gateway_users.c.username == username)).first():
            raise IdentityError(f"username: {username!r} exists already")
        conn.execute(gateway_users.insert().values(**row))
        public = {k: v for k, v in row.items() if k != "password_hash"}
        _audit(conn, actor, "user.add", username, None, public)
    return public


def list_users(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [_public(r) for r in conn.execute(select(gateway_users).order_by(gateway_users.c.username))]


def get_user(conn: Connection, username: str) -> dict[str, Any] | None:
    row = conn.execute(select(gateway_users).where(gateway_users.c.username == username)).first()
    return None if row is None else dict(row._mapping)


def set_disabled(engine: Engine, username: str, disabled: bool, *, actor: str) -> dict[str, Any]:
    with engine.begin() as conn:
        user = get_user(conn, username)
        if user is None:
            raise IdentityError(f"username: no user {username!r}")
        conn.execute(
            update(gateway_users).where(gateway_users.c.username == username).values(disabled=disabled)
        )
        if disabled:  # a disabled user's sessions end now
            conn.execute(
                update(gateway_refresh_tokens)
                .where(
                    gateway_refresh_tokens.c.username == username,
                    gateway_refresh_tokens.c.revoked_at.is_(None),
                )
                .values(revoked_at=now())
            )
        _audit(
            conn,
            actor,
            "user.disable" if disabled else "user.enable",
            username,
            {"disabled": user["disabled"]},
            {"disabled": disabled},
        )
        user["disabled"] = disabled
    user.pop("password_hash")
    return user


# --- tokens -------------------------------------------------------------------------------------

_secret_cache: dict[str, str] = {}


def signing_secret(engine: Engine) -> str:
    env = os.environ.get("PARKVPP_JWT_SECRET")
    if env:
        return env
    key = str(engine.url)
    if key in _secret_cache:
        return _secret_cache[key]
    with engine.begin() as conn:
        value = conn.execute(select(gateway_secrets.c.value).where(gateway_secrets.c.name == "jwt")).scalar()
        if value is None:
            value = secrets.token_urlsafe(48)
            conn.execute(gateway_secrets.insert().values(name="jwt", value=value))
    _secret_cache[key] = value
    return value


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _tokens(conn: Connection, secret: str, user: dict[str, Any]) -> dict[str, Any]:
    issued = now()
    jti = uuid.uuid4().hex
    claims = {
        "sub": user["username"],
        "role": user["role"],
        "park": user["park_id"],
        "ent": user["enterprise_id"],
        "name": user["display_name"],
        "iss": ISSUER,
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(minutes=ACCESS_MINUTES)).timestamp()),
        "jti": jti,
    }
    refresh = secrets.token_urlsafe(32)
    conn.execute(
        gateway_refresh_tokens.insert().values(
            token_sha256=_sha(refresh),
            username=user["username"],
            issued_at=issued,
            expires_at=issued + timedelta(days=REFRESH_DAYS),
            revoked_at=None,
        )
    )
    return {
        "access_token": jwt.encode(claims, secret, algorithm=ALGORITHM),
        "token_type": "bearer",
        "expires_in": ACCESS_MINUTES * 60,
        "refresh_token": refresh,
    }


def login(engine: Engine, username: str, password: str) -> dict[str, Any]:
    secret = signing_secret(engine)  # before the transaction: it may write the secret itself
    with engine.begin() as conn:
        user = get_user(conn, username[:64])
        try:
            _HASHER.verify(user["password_hash"] if user else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError) as exc:
            raise AuthError("wrong user name or password") from exc
        if user is None or user["disabled"]:
            raise AuthError("wrong user name or password")
        if _HASHER.check_needs_rehash(user["password_hash"]):
            conn.execute(
                update(gateway_users)
                .where(gateway_users.c.username == username)
                .values(password_hash=_HASHER.hash(password))
            )
        return _tokens(conn, secret, user)


def refresh(engine: Engine, refresh_token: str) -> dict[str, Any]:
    secret = signing_secret(engine)
    with engine.begin() as conn:
        row = conn.execute(
            select(gateway_refresh_tokens).where(gateway_refresh_tokens.c.token_sha256 == _sha(refresh_token))
        ).first()
        if row is None or row.revoked_at is not None or row.expires_at <= now():
            raise AuthError("refresh token is not valid (expired, used or revoked); sign in again")
        user = get_user(conn, row.username)
        if user is None or user["disabled"]:
            raise AuthError("refresh token is not valid (expired, used or revoked); sign in again")
        conn.execute(
            update(gateway_refresh_tokens)
            .where(gateway_refresh_tokens.c.token_sha256 == row.token_sha256)
            .values(revoked_at=now())
        )
        return _tokens(conn, secret, user)


def logout(engine: Engine, principal: Principal, refresh_token: str | None) -> None:
    with engine.begin() as conn:
        if principal.token_id and principal.token_expires:
            conn.execute(delete(gateway_revoked_tokens).where(gateway_revoked_tokens.c.expires_at < now()))
            conn.execute(
                gateway_revoked_tokens.insert().values(
                    jti=principal.token_id, expires_at=principal.token_expires
                )
            )
        if refresh_token:
            conn.execute(
                update(gateway_refresh_tokens)
                .where(
                    gateway_refresh_tokens.c.token_sha256 == _sha(refresh_token),
                    gateway_refresh_tokens.c.username == principal.username,
                )
                .values(revoked_at=now())
            )


def verify_access(engine: Engine, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            signing_secret(engine),
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "sub", "jti", "role"]},
        )
    except jwt.PyJWTError as exc:
        raise AuthError("access token is not valid (expired or malformed); sign in or refresh") from exc
    if claims["role"] not in ROLES:
        raise AuthError("access token is not valid")
    with engine.connect() as conn:
        if conn.execute(
            select(gateway_revoked_tokens.c.jti).where(gateway_revoked_tokens.c.jti == claims["jti"])
        ).first():
            raise AuthError("access token was revoked (logged out); sign in again")
        disabled = conn.execute(
            select(gateway_users.c.disabled).where(gateway_users.c.username == claims["sub"])
        ).scalar()
        if disabled is not False:
            raise AuthError("access token is not valid (user disabled or removed)")
    return Principal(
        username=claims["sub"],
        role=claims["role"],
        park_id=claims.get("park"),
        enterprise_id=claims.get("ent"),
        display_name=claims.get("name") or claims["sub"],
        token_id=claims["jti"],
        token_expires=datetime.fromtimestamp(claims["exp"]).astimezone(),
    )
