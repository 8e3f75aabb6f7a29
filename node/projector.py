"""Feeding the projections from the node's log: batches of notifications decoded into log
events and applied with their positions, continuously while the node runs, and rebuilt from
zero into a new file that replaces the old one only when complete."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from domain.i18n import _, process_language
from node import access, logs
from node.config import Config
from node.errors import ConfigError
from node.store import EventLog
from node.tuning import collect_less
from projections.base import LogEvent, well_formed
from projections.store import ALL, BY_NAME, ProjectionStore

BATCH = 2000


def log_events(log: EventLog, after: int, limit: int = BATCH) -> list[LogEvent]:
    """Log events after a position, decoded from the stored JSON (types this node does not
    know, and events lacking fields their type requires, included and marked: the projections
    count them)."""
    events = []
    for n in log.app.recorder.select_notifications(after, limit, inclusive_of_start=False):
        state = json.loads(n.state)
        at, actor = state.pop("recorded_at"), state.pop("actor")
        events.append(
            LogEvent(
                n.id,
                actor["node"],
                str(n.originator_id),
                n.originator_version,
                n.topic,
                at,
                state,
                well_formed(n.topic, state),
            )
        )
    return events


class Projector:
    def __init__(self, config: Config, log: EventLog) -> None:
        self.config = config
        self.log = log
        access.private_store(config.projections_file)
        self.store = ProjectionStore(config.projections_file)
        self.inode = _inode(config.projections_file)

    def catch_up(
        self, progress: Callable[[int], None] | None = None, limit: int | None = None
    ) -> int:
        """Apply everything recorded since the projections' position; returns how many. A
        rebuild that replaced the file meanwhile is picked up first."""
        if _inode(self.config.projections_file) != self.inode:
            self.reopen()
        applied = 0
        while limit is None or applied < limit:
            events = log_events(self.log, self.store.position())
            if not events:
                break
            self.store.apply(events)
            applied += len(events)
            if progress is not None:
                progress(len(events))
        return applied

    def reopen(self) -> None:
        """After a rebuild replaced the file: read the new tables."""
        self.store.close()
        access.private_store(self.config.projections_file)
        self.store = ProjectionStore(self.config.projections_file)
        self.inode = _inode(self.config.projections_file)

    def close(self) -> None:
        self.store.close()


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


# -- a serving node's projections, in a process of their own --------------------------------
# Views are derived work: in their own process they take a core of their own instead of the
# importing and relaying threads' share of one interpreter (a busy tier applies and relays
# faster, and the views follow on a second core).
_following: Projector | None = None


def _open_following(config: Config, level: int, fmt: str, parent: int, lang: str) -> None:
    global _following
    # Ctrl-C reaches the whole process group: the serving parent stops this process itself
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_end_with, args=(parent,), daemon=True).start()
    collect_less()
    logs.configure(level, fmt, lang)
    _following = Projector(config, EventLog(config))


def _end_with(parent: int) -> None:
    """End this process when the node that started it is gone (killed, say, even before this
    process got going): a pass cut short leaves nothing half-applied, as rows and positions
    commit together."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def follow_pass() -> int:
    """One pass of the projections process: catch up with the log; returns how many."""
    assert _following is not None, "the projections process was not opened"
    return _following.catch_up()


def projections_process(config: Config) -> ProcessPoolExecutor:
    """A process that keeps ``config``'s projections up to its log, one ``follow_pass`` at a
    time; it logs as this process does."""
    root = logging.getLogger()
    fmt = next(
        (h.formatter._fmt for h in root.handlers if h.formatter and h.formatter._fmt),
        logging.BASIC_FORMAT,
    )
    return ProcessPoolExecutor(
        1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_open_following,
        initargs=(config, root.getEffectiveLevel(), fmt, os.getpid(), process_language()),
    )


def rebuild(
    config: Config,
    log: EventLog,
    name: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Build the projections from zero into a new file and swap it in when complete: readers
    keep the old tables until then. With a name, the other projections are carried over."""
    if name is not None and name not in BY_NAME:
        raise ConfigError(
            _("no projection {name!r}; known: {names}", name=name, names=", ".join(BY_NAME))
        )
    target = config.projections_file
    fresh = target.with_suffix(".rebuilding")
    for stale in (fresh, Path(f"{fresh}-wal"), Path(f"{fresh}-shm")):
        stale.unlink(missing_ok=True)
    access.private_store(fresh)
    store = ProjectionStore(fresh)
    if name is not None and target.exists():  # the others' tables and positions carry over
        store.db.execute("ATTACH DATABASE ? AS old", [str(target)])
        with store.db.atomic():
            for other in ALL:
                if other.name == name:
                    continue
                for table in other.tables:
                    store.db.execute(f"INSERT INTO [{table}] SELECT * FROM old.[{table}]")
                store.db.execute(
                    "INSERT INTO _positions SELECT * FROM old._positions WHERE name = ?",
                    [other.name],
                )
        store.db.execute("DETACH DATABASE old")
    total = 0
    while events := log_events(log, store.position()):
        store.apply(events)
        total += len(events)
        if progress is not None:
            progress(len(events))
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    swap_in(fresh, target)
    return {"rebuilt": name or "all", "events": total}


def swap_in(fresh: Path, target: Path) -> None:
    """Make ``fresh``'s tables ``target``'s. A file nobody has yet is renamed; into one in use
    the pages are copied through SQLite (its backup, in one write transaction): readers go on
    with the old tables until it commits and with the new ones after, and no write-ahead log
    of the old file, which a reader elsewhere may keep alive, is taken for the new one's (as
    it would be if the file were renamed over)."""
    if not target.exists():
        os.replace(fresh, target)
        return
    source = sqlite3.connect(fresh)
    into = sqlite3.connect(target, timeout=60)
    try:
        source.backup(into)
        # the copy went through the file's write-ahead log: back to its size if no reader holds it
        into.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        into.close()
        source.close()
    for made in (fresh, Path(f"{fresh}-wal"), Path(f"{fresh}-shm")):
        made.unlink(missing_ok=True)
