"""The node's append-only event log: an eventsourcing Application on SQLite (one file in the
node directory) or PostgreSQL, chosen by configuration. Events are stored under their stable
wire names (``accident.reported/1``), never Python paths."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, PersistenceError
from eventsourcing.utils import Environment, EnvType, register_topic

import domain.commands  # defines every event type before the registration below
import domain.keys  # noqa: F401
from domain.base import EVENT_TYPES, Aggregate, Event
from domain.i18n import _
from federation.errors import FederationError
from federation.merkle import CompactRange
from node.access import private_store, tighten
from node.config import Config
from node.errors import ConfigError, Conflict, said
from node.signedlog import KEY_FILE, ORIGIN

for _name, _cls in EVENT_TYPES.items():
    register_topic(_name, _cls)


def persistence_env(config: Config) -> dict[str, str]:
    store = config.store
    signing = {KEY_FILE: str(config.key_file), ORIGIN: config.node.origin}
    if store.backend == "sqlite":
        return {
            "PERSISTENCE_MODULE": "node.signedlog:SignedSQLiteFactory",
            "SQLITE_DBNAME": str(config.sqlite_file),
            "SQLITE_LOCK_TIMEOUT": "30",
            **signing,
        }
    pg = store.postgres
    return {
        **signing,
        "PERSISTENCE_MODULE": "node.signedlog_pg:SignedPostgresFactory",
        "POSTGRES_DBNAME": pg.dbname,
        "POSTGRES_HOST": pg.host,
        "POSTGRES_PORT": str(pg.port),
        "POSTGRES_USER": pg.user,
        "POSTGRES_PASSWORD": pg.password,
    }


class _Store(Application[UUID]):
    """eventsourcing's Application configured by the node alone: its own ``construct_env``
    lays the whole process environment (COMPRESSOR_TOPIC, CIPHER_TOPIC, PERSISTENCE_MODULE,
    SQLITE_DBNAME, IS_SNAPSHOTTING_ENABLED, ...) over the settings it is given, so a variable
    left in an operator's shell would change how, or where, the log is written. The node's
    settings come from node.toml and its ANJIAN_ overrides only (:func:`persistence_env`)."""

    name = "Application"  # the name it had before (eventsourcing prefixes setting names with it)

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        return Environment(name, dict(env or {}))


def _check_sqlite(path: Path) -> None:
    """Refuse a file that is not an SQLite database before the event store opens it."""
    if not path.exists():
        return
    try:
        with closing(sqlite3.connect(path)) as db:
            db.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as e:
        raise ConfigError(
            _("cannot open the event store ({where}): {error}", where=path, error=said(e))
        ) from None


class EventLog:
    """Loads aggregates by folding their events and appends new events atomically."""

    def __init__(self, config: Config) -> None:
        if not config.key_file.exists():
            raise ConfigError(
                _(
                    "{file} is missing: the node signs every event it records; "
                    "create the key with `anjian keys generate {directory}`",
                    file=config.key_file,
                    directory=config.directory,
                )
            )
        tighten(config.directory)  # files an earlier version left readable by others
        if config.store.backend == "sqlite":
            _check_sqlite(config.sqlite_file)
            try:
                private_store(config.sqlite_file)  # events.db and its -wal, -shm: 0600
            except OSError as e:
                raise ConfigError(
                    _(
                        "cannot open the event store ({where}): {error}",
                        where=config.sqlite_file,
                        error=e.strerror,
                    )
                ) from None
        self.origin = config.node.origin
        self.placeholder = "?" if config.store.backend == "sqlite" else "%s"
        try:
            self.app: Application[UUID] = _Store(env=persistence_env(config))
        except (PersistenceError, OSError, sqlite3.Error, FederationError) as e:
            where = config.sqlite_file if config.store.backend == "sqlite" else "PostgreSQL"
            raise ConfigError(
                _("cannot open the event store ({where}): {error}", where=where, error=said(e))
            ) from None

    def load(self, aggregate_id: UUID) -> Aggregate | None:
        return Aggregate.replay(cast(Iterator[Event], self.app.events.get(aggregate_id)))

    def version_of(self, aggregate_id: UUID) -> int:
        """The version of the aggregate's last stored event (0 if none)."""
        last = list(self.app.events.get(aggregate_id, desc=True, limit=1))
        return int(last[0].originator_version) if last else 0

    def catch_up(self, aggregate: Aggregate) -> None:
        """Apply events recorded since the aggregate was loaded (by another process)."""
        for event in cast(Iterator[Event], self.app.events.get(aggregate.id, gt=aggregate.version)):
            aggregate._mutate(event)

    def accidents_of(self, enterprise_id: str) -> list[UUID]:
        """Ids of accidents whose report or a correction named this enterprise."""
        topics = ["accident.reported/1", "accident.corrected/1"]
        found: dict[UUID, None] = {}
        after = 0
        while page := self.app.recorder.select_notifications(
            after, 1000, topics=topics, inclusive_of_start=False
        ):
            for n in page:
                event = cast(Event, self.app.mapper.to_domain_event(n))
                named = getattr(event, "enterprise_id", None) or event.payload().get(
                    "changes", {}
                ).get("enterprise_id")
                if named == enterprise_id:
                    found[UUID(str(n.originator_id))] = None
            after = page[-1].id
        return list(found)

    def append(self, *aggregates: Aggregate) -> int:
        """Store the aggregates' new events in one transaction; return the last log position."""
        try:
            recordings = self.app.save(*aggregates)  # type: ignore[arg-type]
        except IntegrityError:
            names = ", ".join(f"{a.KIND} {a.id}" for a in aggregates)
            raise Conflict(
                _(
                    "{records} was written by someone else at the same moment; "
                    "nothing of yours was recorded: reload it and try again",
                    records=names,
                )
            ) from None
        return int(recordings[-1].notification.id)

    def last_position(self) -> int:
        return int(self.app.recorder.max_notification_id() or 0)

    def count(self) -> int:
        table = self.app.recorder.events_table_name  # type: ignore[attr-defined]
        return int(self._query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"])

    def read(self, after: int, limit: int) -> list[dict[str, Any]]:
        """Log entries after a position, oldest first, as the API shows them."""
        notifications = self.app.recorder.select_notifications(
            after, limit, inclusive_of_start=False
        )
        mapper = self.app.mapper
        entries = []
        for n in notifications:
            event = cast(Event, mapper.to_domain_event(n))
            entries.append(
                {
                    "position": n.id,
                    "event": n.topic,
                    "aggregate_id": str(n.originator_id),
                    "version": n.originator_version,
                    "recorded_at": event.recorded_at,
                    "actor": event.actor,
                    "payload": event.payload(),
                }
            )
        return entries

    def read_topic(self, topic: str) -> list[dict[str, Any]]:
        """The payloads of every stored event of one type, in log order."""
        found, after = [], 0
        while page := self.app.recorder.select_notifications(
            after, 1000, topics=[topic], inclusive_of_start=False
        ):
            for n in page:
                found.append(cast(Event, self.app.mapper.to_domain_event(n)).payload())
            after = page[-1].id
        return found

    def site_events(self, aggregate_id: UUID, topic: str) -> list[Any]:
        """The stored events of one type of one aggregate (along the store's primary key)."""
        key: Any = aggregate_id if self.placeholder != "?" else aggregate_id.hex
        return self._query(
            "SELECT originator_version, state FROM stored_events"
            " WHERE originator_id = ? AND topic = ? ORDER BY originator_version",
            (key, topic),
        )

    # -- the signed log ---------------------------------------------------------------------
    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return self._query(sql, params)

    def query_in(self, sql: str, values: Iterable[str], part: int = 500) -> list[Any]:
        """The rows of ``sql`` whose ``{values}`` is the list of ``values`` (an IN list), in
        statements of at most ``part`` bound values each; no statement for no values."""
        wanted = sorted(set(values))
        rows: list[Any] = []
        for start in range(0, len(wanted), part):
            chunk = wanted[start : start + part]
            rows += self._query(sql.format(values=", ".join("?" * len(chunk))), tuple(chunk))
        return rows

    def write(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        """One statement in its own committed transaction (import bookkeeping)."""
        recorder: Any = self.app.recorder
        if self.placeholder != "?":
            sql = sql.replace("?", self.placeholder)
        with recorder.datastore.transaction(commit=True) as cursor:
            cursor.execute(sql, params)

    def write_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """One statement for many rows, in one committed transaction."""
        if not rows:
            return
        recorder: Any = self.app.recorder
        if self.placeholder != "?":
            sql = sql.replace("?", self.placeholder)
        with recorder.datastore.transaction(commit=True) as cursor:
            cursor.executemany(sql, rows)

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        recorder: Any = self.app.recorder
        if self.placeholder != "?":
            sql = sql.replace("?", self.placeholder)
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def envelopes(
        self, after: int = 0, limit: int = 1000, origin: str | None = None
    ) -> list[bytes]:
        """Envelope bytes of one origin (default: this node's) in sequence order."""
        rows = self._query(
            "SELECT raw FROM envelopes WHERE origin = ? AND seq > ? ORDER BY seq LIMIT ?",
            (origin or self.origin, after, limit),
        )
        return [bytes(r["raw"]) for r in rows]

    def tree(self) -> tuple[int, bytes]:
        """Size and root of this node's Merkle tree of envelopes."""
        rows = self._query("SELECT size, peaks FROM merkle WHERE origin = ?", (self.origin,))
        if not rows:
            return 0, CompactRange().root()
        peaks = bytes(rows[0]["peaks"])
        tree = CompactRange(
            int(rows[0]["size"]), [peaks[i : i + 32] for i in range(0, len(peaks), 32)]
        )
        return tree.size, tree.root()

    def checkpoints(self, origin: str | None = None) -> list[str]:
        rows = self._query(
            "SELECT note FROM checkpoints WHERE origin = ? ORDER BY size", (origin or self.origin,)
        )
        return [str(r["note"]) for r in rows]

    def last_checkpoint_size(self) -> int:
        rows = self._query(
            "SELECT MAX(size) AS n FROM checkpoints WHERE origin = ?", (self.origin,)
        )
        return int(rows[0]["n"] or 0)

    def add_checkpoint(self, size: int, root: bytes, note: str) -> None:
        recorder: Any = self.app.recorder
        # another process of the same node (a server, a CLI command) may sign the same size
        # at the same moment: the one stored first stands, the other is the same statement
        sql = (
            "INSERT INTO checkpoints (origin, size, root, note) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (origin, size) DO NOTHING"
        )
        with recorder.datastore.transaction(commit=True) as cursor:
            cursor.execute(sql.replace("?", self.placeholder), (self.origin, size, root, note))

    def close(self) -> None:
        self.app.close()
