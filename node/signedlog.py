"""The event store with envelopes: every event the node records gets its signed, chained
envelope in the same transaction (docs/architecture.md §4), with the origin's Merkle tree advanced
alongside. Nothing is recorded unsigned, and no envelope exists for an event not recorded.

The eventsourcing recorders are extended at the one place that sees the final stored events
inside the insert transaction; the writer serialises on the store's own write lock (SQLite's
single writer, PostgreSQL's table lock)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteFactory

from domain.base import EVENT_TYPES
from domain.i18n import _
from federation.envelope import GENESIS, Envelope, no_float, seal_sorted, sorted_map
from federation.errors import VerificationError
from federation.merkle import CompactRange, leaf_hash
from federation.suite import SigningKey, load_key

KEY_FILE = "ANJIAN_KEY_FILE"
ORIGIN = "ANJIAN_ORIGIN"

TABLES = (
    "CREATE TABLE IF NOT EXISTS envelopes ("
    " origin TEXT NOT NULL, seq BIGINT NOT NULL, hash {blob} NOT NULL, raw {blob} NOT NULL,"
    " PRIMARY KEY (origin, seq))",
    "CREATE TABLE IF NOT EXISTS merkle ("
    " origin TEXT PRIMARY KEY, size BIGINT NOT NULL, peaks {blob} NOT NULL)",
    "CREATE TABLE IF NOT EXISTS checkpoints ("
    " origin TEXT NOT NULL, size BIGINT NOT NULL, root {blob} NOT NULL, note TEXT NOT NULL,"
    " PRIMARY KEY (origin, size))",
    # per imported origin: envelopes of types this node does not know, last recording time
    "CREATE TABLE IF NOT EXISTS origin_stats ("
    " origin TEXT PRIMARY KEY, unknown BIGINT NOT NULL, last_at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS stored_events_topic ON stored_events (topic)",
    # verified import (node.replication.importer): envelopes waiting for their turn,
    # checkpoints waiting for their envelopes, and what was refused with the reason
    "CREATE TABLE IF NOT EXISTS import_pending ("
    " origin TEXT NOT NULL, seq BIGINT NOT NULL, hash {blob} NOT NULL, raw {blob} NOT NULL,"
    " PRIMARY KEY (origin, seq, hash))",
    "CREATE TABLE IF NOT EXISTS import_checkpoints ("
    " origin TEXT NOT NULL, size BIGINT NOT NULL, note TEXT NOT NULL,"
    " PRIMARY KEY (origin, size, note))",
    "CREATE TABLE IF NOT EXISTS quarantine ("
    " origin TEXT NOT NULL, seq BIGINT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL,"
    " raw {blob} NOT NULL, at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS quarantine_position ON quarantine (origin, seq)",
    # envelopes not kept because the bounds on waiting (or on the quarantine) were reached
    "CREATE TABLE IF NOT EXISTS import_dropped ("
    " origin TEXT PRIMARY KEY, n BIGINT NOT NULL, last_at BIGINT NOT NULL)",
    # federation (node.replication): what came down from the tiers above (verified, each
    # envelope on its own signature; those whose signer is not known yet wait apart), and
    # which child relays which origin
    "CREATE TABLE IF NOT EXISTS downward ("
    " origin TEXT NOT NULL, seq BIGINT NOT NULL, type TEXT NOT NULL, raw {blob} NOT NULL,"
    " division TEXT NOT NULL, verified BIGINT NOT NULL, PRIMARY KEY (origin, seq))",
    # the order things came down in: numbered and relayed by it (MAX, ORDER BY, > ?)
    "CREATE INDEX IF NOT EXISTS downward_verified ON downward (verified)",
    "CREATE TABLE IF NOT EXISTS downward_pending ("
    " origin TEXT NOT NULL, seq BIGINT NOT NULL, hash {blob} NOT NULL, raw {blob} NOT NULL,"
    " division TEXT NOT NULL, PRIMARY KEY (origin, seq, hash))",
    "CREATE TABLE IF NOT EXISTS routes ("
    " origin TEXT PRIMARY KEY, child TEXT NOT NULL, messages BIGINT NOT NULL,"
    " last_seen BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS down_published ( origin TEXT PRIMARY KEY, scanned BIGINT NOT NULL)",
    # `anjian backup restore`: how far each archive stream has been taken (to go on from there)
    "CREATE TABLE IF NOT EXISTS restore_positions (source TEXT PRIMARY KEY, seq BIGINT NOT NULL)",
)


class Oversized(ValueError):
    """An event whose envelope would be larger than the federation carries: refused whole (the
    transaction that would have stored it is rolled back)."""


class EnvelopeWriter:
    """Seals the envelopes of events this node records, and files the verified envelopes of
    events imported from other origins, advancing each origin's Merkle tree."""

    max_bytes: int | None = None  # the largest envelope sealed ([federation] max_envelope)

    def __init__(self, key: SigningKey, origin: str, placeholder: str) -> None:
        self.key, self.origin, self.p = key, origin, placeholder

    def append(
        self,
        cursor: Any,
        stored_events: Sequence[StoredEvent],
        imported: Sequence[Envelope] | None = None,
    ) -> None:
        """``imported``: the envelopes of ``stored_events`` when they came from another
        origin (verified, one origin's next run in sequence); otherwise seal new ones."""
        p, execute, fetchone, executemany = (
            self.p,
            cursor.execute,
            cursor.fetchone,
            cursor.executemany,
        )
        origin = self.origin if imported is None else imported[0].origin
        execute(f"SELECT size, peaks FROM merkle WHERE origin = {p}", (origin,))
        row = fetchone()
        size, peaks = (int(row["size"]), bytes(row["peaks"])) if row else (0, b"")
        tree = CompactRange(size, [peaks[i : i + 32] for i in range(0, len(peaks), 32)])
        prev = GENESIS
        if size:
            execute(f"SELECT hash FROM envelopes WHERE origin = {p} AND seq = {p}", (origin, size))
            prev = bytes(fetchone()["hash"])
        raws = [env.raw for env in imported] if imported is not None else []
        if imported is None:
            for s in stored_events:
                state = json.loads(s.state, object_pairs_hook=sorted_map, parse_float=no_float)
                at, actor = state.pop("recorded_at"), state.pop("actor")
                raw = seal_sorted(
                    self.key,
                    origin=origin,
                    seq=tree.size + len(raws) + 1,
                    prev=prev,
                    at=at,
                    type=s.topic,
                    aggregate=str(s.originator_id),
                    version=s.originator_version,
                    actor=actor,
                    payload=state,
                )
                if self.max_bytes is not None and len(raw) > self.max_bytes:
                    raise Oversized(
                        _(
                            "the {event} event would make an envelope of {size} bytes, more "
                            "than the {limit} the federation carries ([federation] "
                            "max_envelope): record less at once (a long text as several records)",
                            event=s.topic,
                            size=len(raw),
                            limit=self.max_bytes,
                        )
                    )
                raws.append(raw)
                prev = hashlib.sha256(raw).digest()
        rows = []
        hashes = (
            [env.hash for env in imported]
            if imported is not None
            else [hashlib.sha256(raw).digest() for raw in raws]
        )
        leaves = (
            [env.leaf for env in imported]
            if imported is not None
            else [leaf_hash(raw) for raw in raws]
        )
        for raw, digest, leaf in zip(raws, hashes, leaves, strict=True):
            tree.append(leaf)
            rows.append((origin, tree.size, digest, raw))
        executemany(
            f"INSERT INTO envelopes (origin, seq, hash, raw) VALUES ({p}, {p}, {p}, {p})", rows
        )
        blob = b"".join(tree.peaks)
        if size:
            execute(
                f"UPDATE merkle SET size = {p}, peaks = {p} WHERE origin = {p}",
                (tree.size, blob, origin),
            )
        else:
            execute(
                f"INSERT INTO merkle (origin, size, peaks) VALUES ({p}, {p}, {p})",
                (origin, tree.size, blob),
            )
        if imported is not None:
            unknown = sum(1 for env in imported if env.type not in EVENT_TYPES)
            execute(
                f"INSERT INTO origin_stats (origin, unknown, last_at) VALUES ({p}, {p}, {p})"
                " ON CONFLICT (origin) DO UPDATE SET unknown = origin_stats.unknown +"
                " excluded.unknown, last_at = excluded.last_at",
                (origin, unknown, imported[-1].at),
            )


def writer_from_env(env: Any, placeholder: str) -> EnvelopeWriter:
    key_file, origin = env.get(KEY_FILE), env.get(ORIGIN)
    if not key_file or not origin:
        raise OSError(
            _(
                "{key_file} and {origin} must be set for the signed event store",
                key_file=KEY_FILE,
                origin=ORIGIN,
            )
        )
    return EnvelopeWriter(load_key(Path(key_file)), origin, placeholder)


class SignedSQLiteRecorder(SQLiteApplicationRecorder):
    writer: EnvelopeWriter

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            *(t.format(blob="BLOB") for t in TABLES),
        ]

    def _insert_events(self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        ids = super()._insert_events(c, stored_events, **kwargs)
        if not kwargs.get("from_above"):  # those keep their envelopes in ``downward``
            self.writer.append(c, stored_events, kwargs.get("imported"))
        return ids


class SignedSQLiteFactory(SQLiteFactory):
    def application_recorder(self) -> SignedSQLiteRecorder:
        recorder = SignedSQLiteRecorder(self.datastore)
        recorder.writer = writer_from_env(self.env, "?")
        if self.env_create_table():
            recorder.create_table()
        return recorder


# -- an envelope's event as the store keeps it (import, replay, what comes down) ------------
STORED_CACHE = 20_000  # envelopes whose stored event is kept made (checked once, stored from it)


def stored_event(env: Envelope) -> StoredEvent:
    """The event as the store keeps it; VerificationError if it cannot be kept (an aggregate id
    that is not canonical, bytes in the payload). Made once per envelope (cached on it)."""
    cached = _STORED.get(env.hash)
    if cached is not None:
        return cached
    try:
        aggregate = UUID(env.aggregate)
    except ValueError:
        aggregate = None
    if aggregate is None or str(aggregate) != env.aggregate:
        raise VerificationError(
            "malformed_envelope",
            _("aggregate {aggregate!r} is not a canonical id", aggregate=env.aggregate),
        )
    state = {"recorded_at": env.at, "actor": env.actor, **env.payload}
    try:
        text = _JSON.encode(state)
    except TypeError:
        raise VerificationError(
            "unsupported_payload",
            _("the payload holds values this store cannot keep (bytes)"),
        ) from None
    stored = StoredEvent(
        originator_id=aggregate,
        originator_version=env.version,
        topic=env.type,
        state=text.encode(),
    )
    if len(_STORED) >= STORED_CACHE:
        _STORED.clear()
    _STORED[env.hash] = stored
    return stored


def storable(env: Envelope) -> None:
    """Raise VerificationError if the event store cannot keep the envelope's event."""
    stored_event(env)


_STORED: dict[bytes, StoredEvent] = {}  # by envelope hash: checked once, stored from it
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # as the store keeps states
