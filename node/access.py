"""Access to a node: its files are private to the node's own OS user (files 0600, directories
0700: created so, and tightened with a logged line when the node opens its directory), and the
access log records who did what.

The access log (``access.log`` in the node directory, 0600, opened ``O_APPEND`` for every line)
holds one JSON object a line: ``at`` (ISO 8601, China time +08:00), ``user``, ``action``,
``target``, ``result``, ``remote`` (the peer's address over HTTP, ``local`` for the command
line), and details of the action. Actions: ``record``, ``export``, ``login``, ``logout``,
``user.add``, ``user.remove``, ``user.rotate``, ``user.password``. Nothing ever rewrites it."""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from domain.base import CHINA
from domain.i18n import _
from node.errors import said

log = logging.getLogger("anjian.access")

ACCESS_LOG = "access.log"
TRUST_DIR = "trust"  # the node's key documents: tightened with the directory's own files


# -- private files ----------------------------------------------------------------------------
def private_dir(path: Path) -> Path:
    """Create a directory 0700 (its missing parents too); an existing one is left as it is
    (it may be the operator's), except by :func:`tighten` for the node directory."""
    path = Path(path)
    if not path.exists():
        path.mkdir(parents=True, mode=0o700)
        path.chmod(0o700)  # mkdir's mode passes through the umask; this does not
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write a new file readable by its owner only (0600); an existing file is refused."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def private_store(path: Path) -> None:
    """Before SQLite opens ``path``: create it 0600 if it is missing (SQLite gives its -wal,
    -shm and -journal files the database file's mode) and make it and those files private if
    they are not."""
    path = Path(path)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for p in (path, *(Path(f"{path}{s}") for s in ("-wal", "-shm", "-journal"))):
        _make_private(p)


def tighten(directory: Path) -> list[str]:
    """Make the node directory, the files in it and its trust directory private to their
    owner, logging what was readable by others. Other subdirectories (a drop folder another
    system writes into, a NATS server's data) are left as they are. Returns what changed."""
    directory = Path(directory)
    changed = []
    for path in _node_paths(directory):
        before = _make_private(path)
        if before is not None:
            changed.append(f"{path.relative_to(directory).as_posix() or '.'} ({before:04o})")
    if changed:
        log.warning(
            _(
                "node files readable by other users of this machine were made private to the "
                "node's user (files 0600, directories 0700) in {directory}: {files}",
                directory=directory,
                files=", ".join(changed),
            )
        )
    return changed


def _node_paths(directory: Path) -> Iterator[Path]:
    yield directory
    for parent in (directory, directory / TRUST_DIR):
        try:
            entries = list(os.scandir(parent))
        except (FileNotFoundError, NotADirectoryError):
            continue
        if parent != directory:
            yield parent
        for entry in entries:
            if entry.is_file(follow_symlinks=False):
                yield Path(entry.path)


def _make_private(path: Path) -> int | None:
    """Drop group and other permissions; the mode before if it changed, else None."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    mode = stat.S_IMODE(st.st_mode)
    if not mode & 0o077 or stat.S_ISLNK(st.st_mode):
        return None
    try:
        os.chmod(path, mode & 0o700)
    except OSError as e:  # another user's file: say so, the node still starts
        log.warning(
            _(
                "{file} is readable by other users and cannot be made private: {error}",
                file=path,
                error=said(e),
            )
        )
        return None
    return mode


# -- the access log ---------------------------------------------------------------------------
# line and paragraph separators, C1 controls, zero-width and direction marks: escaped in the log
_INVISIBLE = re.compile("[\u0080-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")
BOUND = 128  # characters of a user name, target or detail kept in a line (an id is 36)


def readable_json(data: Any, **options: Any) -> str:
    """JSON with Chinese as it is, and what could break a line or fool a terminal (separators,
    C1 controls, zero-width and direction marks) escaped: what people read of the node."""
    text = json.dumps(data, ensure_ascii=False, **options)
    return _INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _bounded(value: Any) -> Any:
    """Text cut to BOUND characters (a request may carry kilobytes in a name or an id)."""
    if isinstance(value, str) and len(value) > BOUND:
        return value[:BOUND] + "…"
    return value


def record(
    directory: Path,
    user: str | None,
    action: str,
    target: str | None = None,
    result: str = "ok",
    remote: str = "local",
    at_ms: int | None = None,
    **detail: Any,
) -> dict[str, Any]:
    """Append one line to ``DIR/access.log`` (created 0600) and return it. One call per
    action, e.g. for a command recorded from the command line::

        access.record(directory, "zhang", "record", target=result["id"], kind=kind)
    """
    if at_ms is None:
        at_ms = time.time_ns() // 1_000_000
    entry = {
        "at": iso(at_ms),
        "user": _bounded(user),
        "action": action,
        "target": _bounded(target),
        "result": result,
        "remote": _bounded(remote),
        **{k: _bounded(v) for k, v in detail.items()},
    }
    line = (readable_json(entry, separators=(",", ":")) + "\n").encode()
    fd = os.open(Path(directory) / ACCESS_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        view = memoryview(line)
        while view:  # one write for a line, as a rule: O_APPEND keeps lines whole
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    return entry


def read(
    directory: Path,
    since_ms: int | None = None,
    user: str | None = None,
    action: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """The access log's lines, oldest first, filtered; and how many lines were unreadable
    (a line cut short by a crash)."""
    path = Path(directory) / ACCESS_LOG
    if not path.exists():
        return [], 0
    found, bad = [], 0
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                entry = json.loads(line)
                at = datetime.fromisoformat(entry["at"])
            except (ValueError, KeyError, TypeError):
                bad += 1
                continue
            if since_ms is not None and at.timestamp() * 1000 < since_ms:
                continue
            if user is not None and entry.get("user") != user:
                continue
            if action is not None and entry.get("action") != action:
                continue
            found.append(entry)
    return found, bad


def iso(ms: int) -> str:
    """A moment as the node shows it to people: ISO 8601 in China time (+08:00)."""
    return datetime.fromtimestamp(ms / 1000, CHINA).isoformat(timespec="milliseconds")
