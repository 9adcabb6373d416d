"""Station users: argon2id password hashes (argon2-cffi), roles, login sessions.

Roles: ``nurse`` (sees everything, acknowledges alarms, enters observations), ``viewer``
(read-only: a ward display or a visitor from another unit), ``admin`` (a nurse who may also add
users). A session is a random token in an HttpOnly cookie; the database keeps only its SHA-256,
so a copy of the database does not log anyone in.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select

from agent.errors import BedsideError
from agent.station.db import Database, SessionRow, UserRow

__all__ = [
    "ROLES",
    "Role",
    "User",
    "UserError",
    "add_user",
    "authenticate",
    "end_session",
    "session_user",
    "start_session",
]

Role = Literal["nurse", "viewer", "admin"]
ROLES: Final[tuple[Role, ...]] = ("nurse", "viewer", "admin")

PASSWORD_MIN_LEN: Final = 8
"""NIST SP 800-63B 5.1.1.1: memorized secrets of at least 8 characters."""

_HASHER = PasswordHasher()  # argon2id with the library's RFC 9106 defaults


class UserError(BedsideError):
    """A user cannot be added (bad name, short password, unknown role, already exists)."""


@dataclass(frozen=True)
class User:
    """A logged-in station user."""

    username: str
    role: Role

    @property
    def can_act(self) -> bool:
        """Whether the user may acknowledge alarms and enter observations."""
        return self.role != "viewer"


def add_user(db: Database, username: str, password: str, role: str) -> None:
    """Create a user with an argon2id hash of ``password``.

    Raises
    ------
    UserError
        If the name is not 1-64 of ``A-Za-z0-9_.-@``, the password is shorter than
        :data:`PASSWORD_MIN_LEN`, the role is unknown, or the user exists.
    """
    if not username or len(username) > 64 or not all(c.isalnum() or c in "_.-@" for c in username):
        msg = f"user name must be 1-64 letters, digits or _.-@, got {username!r}"
        raise UserError(msg)
    if len(password) < PASSWORD_MIN_LEN:
        msg = f"password must have at least {PASSWORD_MIN_LEN} characters"
        raise UserError(msg)
    if role not in ROLES:
        msg = f"role must be one of {', '.join(ROLES)}, got {role!r}"
        raise UserError(msg)
    with db.session() as s, s.begin():
        if s.scalar(select(UserRow).where(UserRow.username == username)) is not None:
            msg = f"user {username!r} exists"
            raise UserError(msg)
        s.add(
            UserRow(
                username=username,
                password_hash=_HASHER.hash(password),
                role=role,
                created_utc=datetime.now(UTC),
            )
        )


def authenticate(db: Database, username: str, password: str) -> User | None:
    """Return the user if ``password`` matches its stored hash, else None."""
    with db.session() as s:
        row = s.scalar(select(UserRow).where(UserRow.username == username))
    if row is None:
        _HASHER.hash(password)  # same cost whether or not the user exists
        return None
    try:
        _HASHER.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return User(row.username, _role(row.role))


def _role(value: str) -> Role:
    for role in ROLES:
        if value == role:
            return role
    return "viewer"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(db: Database, user: User, lifetime_h: float) -> str:
    """Create a session for ``user``; return the token for its cookie."""
    token = secrets.token_urlsafe(32)
    with db.session() as s, s.begin():
        s.add(
            SessionRow(
                token_sha256=_digest(token),
                username=user.username,
                expires_utc=datetime.now(UTC) + timedelta(hours=lifetime_h),
            )
        )
    return token


def session_user(db: Database, token: str) -> User | None:
    """Return the user of a live session token, or None (unknown or expired)."""
    with db.session() as s:
        sess = s.get(SessionRow, _digest(token))
        if sess is None:
            return None
        expires = sess.expires_utc
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        if expires < datetime.now(UTC):
            return None
        row = s.scalar(select(UserRow).where(UserRow.username == sess.username))
    return None if row is None else User(row.username, _role(row.role))


def end_session(db: Database, token: str) -> None:
    """Forget a session (log out)."""
    with db.session() as s, s.begin():
        s.execute(delete(SessionRow).where(SessionRow.token_sha256 == _digest(token)))
