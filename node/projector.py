"""Feeding the projections from the node's log: batches of notifications decoded into log
events and applied with their positions, continuously while the node runs, and rebuilt from
zero into a new file that replaces the old one only when complete."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from node.config import Config
from node.errors import ConfigError
from node.store import EventLog
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
        self.store = ProjectionStore(config.projections_file)

    def catch_up(
        self, progress: Callable[[int], None] | None = None, limit: int | None = None
    ) -> int:
        """Apply everything recorded since the projections' position; returns how many."""
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
        self.store = ProjectionStore(self.config.projections_file)

    def close(self) -> None:
        self.store.close()


def rebuild(
    config: Config,
    log: EventLog,
    name: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Build the projections from zero into a new file and swap it in when complete: readers
    keep the old tables until then. With a name, the other projections are carried over."""
    if name is not None and name not in BY_NAME:
        raise ConfigError(f"no projection {name!r}; known: {', '.join(BY_NAME)}")
    target = config.projections_file
    fresh = target.with_suffix(".rebuilding")
    for stale in (fresh, Path(f"{fresh}-wal"), Path(f"{fresh}-shm")):
        stale.unlink(missing_ok=True)
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
    os.replace(fresh, target)
    return {"rebuilt": name or "all", "events": total}
