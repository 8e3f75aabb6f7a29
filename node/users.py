"""Users of the HTTP API: bearer tokens mapped to a user name and a role, kept in the node
directory's ``users.toml`` (only SHA-256 digests of tokens are stored)."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import tomli_w

from node.errors import ConfigError


class Role(StrEnum):
    READER = "reader"  # reads records, status and the log
    WRITER = "writer"  # also records commands


@dataclass(frozen=True)
class User:
    name: str
    role: Role

    def can_write(self) -> bool:
        return self.role == Role.WRITER


_NAME = re.compile(r"^[\w.@-]{1,64}$")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def read_table(path: Path) -> dict[str, User]:
    """Token digest → user. A missing file means no users (every API call is refused)."""
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return {
            entry["token_sha256"]: User(entry["name"], Role(entry["role"]))
            for entry in data.get("users", [])
        }
    except (tomllib.TOMLDecodeError, KeyError, ValueError, TypeError) as e:
        raise ConfigError(f"{path}: not a valid users file ({e})") from None


def _entries(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    read_table(path)  # validates
    return list(tomllib.loads(path.read_text(encoding="utf-8")).get("users", []))


def _write(path: Path, entries: list[dict[str, str]]) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(b"# anjian users: token digests only. Manage with `anjian users`.\n")
        tomli_w.dump({"users": entries}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def add_user(path: Path, name: str, role: Role) -> str:
    """Add a user and return their new token (shown once, never stored)."""
    if not _NAME.match(name):
        raise ConfigError(f"user name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-'")
    entries = _entries(path)
    if any(e["name"] == name for e in entries):
        raise ConfigError(f"user {name!r} already exists; remove it first to issue a new token")
    token = "ajt_" + secrets.token_urlsafe(32)
    entries.append({"name": name, "role": role.value, "token_sha256": digest(token)})
    _write(path, entries)
    return token


def remove_user(path: Path, name: str) -> None:
    entries = _entries(path)
    kept = [e for e in entries if e["name"] != name]
    if len(kept) == len(entries):
        raise ConfigError(f"no user {name!r}")
    _write(path, kept)


def list_users(path: Path) -> list[dict[str, str]]:
    return [{"name": e["name"], "role": e["role"]} for e in _entries(path)]
