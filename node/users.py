"""Users of the HTTP API, kept in the node directory's ``users.toml`` (0600): a name, a role, a
bearer token with its expiry, and optionally a password for the web console's login.

Only SHA-256 digests of tokens are stored (a token is random, 256 bits: a digest suffices);
passwords are stored as argon2id hashes. A token expires ``[http] token_days`` after it is
issued (``anjian users add`` / ``rotate``). An entry written before tokens expired (no
``token_expires``) is refused like an expired token: its holder asks for a new one with
``anjian users rotate`` (a token that never expires is what made the reported weakness)."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import secrets
import time
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import tomli_w
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from domain.base import CHINA
from domain.i18n import _
from node.errors import ConfigError, NotFound, said

DAY_MS = 86_400_000
MIN_PASSWORD = 12  # characters
MAX_PASSWORD = 1024
_hasher = PasswordHasher()  # argon2id, RFC 9106's second recommended parameters


@functools.cache
def _nobody() -> str:
    """What an unknown name (or a user without a password) is checked against: the same work
    as a real check, so the time of the answer does not tell which names exist."""
    return _hasher.hash(secrets.token_urlsafe(16))


class Role(StrEnum):
    READER = "reader"  # reads records, status and the log
    WRITER = "writer"  # also records commands


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    expires_ms: int | None = None  # the token's expiry; None: issued before tokens expired
    password: str | None = field(default=None, repr=False)  # argon2 hash, if one is set

    def can_write(self) -> bool:
        return self.role == Role.WRITER

    def token_expired(self, now_ms: int) -> bool:
        return self.expires_ms is None or now_ms >= self.expires_ms


_NAME = re.compile(r"^[\w.@-]{1,64}$")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def read_table(path: Path) -> dict[str, User]:
    """Token digest → user. A missing file means no users (every API call is refused)."""
    return {entry["token_sha256"]: _user(entry) for entry in _entries(path)}


def _user(entry: dict[str, Any]) -> User:
    expires = entry.get("token_expires")
    return User(
        entry["name"],
        Role(entry["role"]),
        None if expires is None else int(expires.timestamp() * 1000),
        entry.get("password_argon2"),
    )


def _entries(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    try:
        entries = list(tomllib.loads(path.read_text(encoding="utf-8")).get("users", []))
        for entry in entries:
            _user(entry)  # validates
    except (tomllib.TOMLDecodeError, KeyError, ValueError, TypeError, AttributeError) as e:
        raise ConfigError(
            _("{file}: not a valid users file ({error})", file=path, error=said(e))
        ) from None
    return entries


def _write(path: Path, entries: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a .tmp left by a crash keeps its mode through O_CREAT
    with os.fdopen(fd, "wb") as f:
        f.write(
            b"# anjian users: token digests and password hashes only. Manage with `anjian users`.\n"
        )
        tomli_w.dump({"users": entries}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _now(now_ms: int | None) -> int:
    return time.time_ns() // 1_000_000 if now_ms is None else now_ms


def _new_token(entry: dict[str, Any], days: int, now_ms: int | None) -> str:
    token = "ajt_" + secrets.token_urlsafe(32)
    entry["token_sha256"] = digest(token)
    expires = (_now(now_ms) + days * DAY_MS) // 1000
    entry["token_expires"] = datetime.fromtimestamp(expires, CHINA)
    return token


def _find(entries: list[dict[str, Any]], name: str) -> dict[str, Any]:
    for entry in entries:
        if entry["name"] == name:
            return entry
    raise NotFound(_("no user {name!r} (`anjian users list` shows who there is)", name=name))


def add_user(
    path: Path, name: str, role: Role, *, days: int = 90, now_ms: int | None = None
) -> str:
    """Add a user and return their new token (shown once, never stored), valid ``days``."""
    if not _NAME.match(name):
        raise ConfigError(
            _("user name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-'", name=name)
        )
    entries = _entries(path)
    if any(e["name"] == name for e in entries):
        raise ConfigError(
            _(
                "user {name!r} already exists; `anjian users rotate` issues them a new token",
                name=name,
            )
        )
    entry: dict[str, Any] = {"name": name, "role": role.value}
    token = _new_token(entry, days, now_ms)
    entries.append(entry)
    _write(path, entries)
    return token


def rotate_token(path: Path, name: str, *, days: int = 90, now_ms: int | None = None) -> str:
    """Issue a user a new token valid ``days`` (the old one stops working) and return it."""
    entries = _entries(path)
    token = _new_token(_find(entries, name), days, now_ms)
    _write(path, entries)
    return token


def set_password(path: Path, name: str, password: str) -> None:
    """Set a user's console password (argon2id); their open console sessions end."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ConfigError(
            _(
                "a password has {least} to {most} characters; this one has {length}",
                least=MIN_PASSWORD,
                most=MAX_PASSWORD,
                length=len(password),
            )
        )
    entries = _entries(path)
    _find(entries, name)["password_argon2"] = _hasher.hash(password)
    _write(path, entries)


def check_password(user: User | None, password: str) -> bool:
    """Whether ``password`` is the user's. Slow on purpose (argon2, tens of milliseconds):
    call it off the event loop. An unknown user costs the same time and answers False."""
    stored = user.password if user is not None and user.password else None
    try:
        return _hasher.verify(stored or _nobody(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def remove_user(path: Path, name: str) -> None:
    entries = _entries(path)
    _find(entries, name)
    _write(path, [e for e in entries if e["name"] != name])


def list_users(path: Path, now_ms: int | None = None) -> list[dict[str, Any]]:
    now = _now(now_ms)
    out = []
    for entry in _entries(path):
        user = _user(entry)
        out.append(
            {
                "name": user.name,
                "role": user.role.value,
                "token_expires": None if user.expires_ms is None else iso_s(user.expires_ms),
                "token_expired": user.token_expired(now),
                "password": user.password is not None,
            }
        )
    return out


def iso_s(ms: int) -> str:
    """A moment to the second in China time (+08:00), as users and errors show it."""
    return datetime.fromtimestamp(ms // 1000, CHINA).isoformat()
