"""The event store with envelopes: every event the node records gets its signed, chained
envelope in the same transaction (DESIGN.md §4), with the origin's Merkle tree advanced
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

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteFactory

from federation.envelope import GENESIS, no_float, parse, seal_sorted, sorted_map
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
)


class EnvelopeWriter:
    """Seals the envelopes of events this node records, and files the verified envelopes of
    events imported from other origins, advancing each origin's Merkle tree."""

    def __init__(self, key: SigningKey, origin: str, placeholder: str) -> None:
        self.key, self.origin, self.p = key, origin, placeholder

    def append(
        self,
        cursor: Any,
        stored_events: Sequence[StoredEvent],
        imported: Sequence[bytes] | None = None,
    ) -> None:
        """``imported``: the envelopes of ``stored_events`` when they came from another
        origin (verified, next in that origin's sequence); otherwise seal new ones."""
        p, execute, fetchone, executemany = (
            self.p,
            cursor.execute,
            cursor.fetchone,
            cursor.executemany,
        )
        origin = self.origin if imported is None else parse(imported[0]).origin
        execute(f"SELECT size, peaks FROM merkle WHERE origin = {p}", (origin,))
        row = fetchone()
        size, peaks = (int(row["size"]), bytes(row["peaks"])) if row else (0, b"")
        tree = CompactRange(size, [peaks[i : i + 32] for i in range(0, len(peaks), 32)])
        prev = GENESIS
        if size:
            execute(f"SELECT hash FROM envelopes WHERE origin = {p} AND seq = {p}", (origin, size))
            prev = bytes(fetchone()["hash"])
        raws = list(imported) if imported is not None else []
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
                raws.append(raw)
                prev = hashlib.sha256(raw).digest()
        rows = []
        for raw in raws:
            tree.append(leaf_hash(raw))
            rows.append((origin, tree.size, hashlib.sha256(raw).digest(), raw))
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


def writer_from_env(env: Any, placeholder: str) -> EnvelopeWriter:
    key_file, origin = env.get(KEY_FILE), env.get(ORIGIN)
    if not key_file or not origin:
        raise OSError(f"{KEY_FILE} and {ORIGIN} must be set for the signed event store")
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
        self.writer.append(c, stored_events, kwargs.get("imported"))
        return ids


class SignedSQLiteFactory(SQLiteFactory):
    def application_recorder(self) -> SignedSQLiteRecorder:
        recorder = SignedSQLiteRecorder(self.datastore)
        recorder.writer = writer_from_env(self.env, "?")
        if self.env_create_table():
            recorder.create_table()
        return recorder
