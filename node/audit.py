"""Auditing a node directory: every origin's envelopes and checkpoints through the shared
verification library, and every stored event held against its envelope, so a change in either
the log or the store is named. Reads the SQLite store read-only; needs no private key."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any
from uuid import UUID

from federation.envelope import Envelope
from federation.verify import Failure, OriginReport, Trust, verify_origin
from node.config import Config
from node.errors import ConfigError


def _connect(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise ConfigError(f"{path}: no event store to audit")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    return db


def envelope_count(config: Config) -> int:
    if config.store.backend != "sqlite" or not config.sqlite_file.exists():
        return 0
    with closing(_connect(config.sqlite_file)) as db:
        return int(db.execute("SELECT COUNT(*) FROM envelopes").fetchone()[0])


def key_documents(config: Config) -> list[bytes]:
    """Key documents in the node's trust chain directory and recorded in its log (read-only)."""
    docs = [p.read_bytes() for p in sorted(config.trust_dir.glob("*.doc"))]
    if config.store.backend == "sqlite" and config.sqlite_file.exists():
        with closing(_connect(config.sqlite_file)) as db:
            for (state,) in db.execute(
                "SELECT state FROM stored_events"
                " WHERE topic = 'keys.document_recorded/1' ORDER BY rowid"
            ):
                docs.append(base64.b64decode(json.loads(state)["document"]))
    return docs


def audit_node(
    config: Config,
    trust: Trust,
    *,
    signatures: bool = True,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    if config.store.backend != "sqlite":
        raise ConfigError("auditing a PostgreSQL node goes through an export (anjian audit export)")
    with closing(_connect(config.sqlite_file)) as db:
        origins = [r[0] for r in db.execute("SELECT DISTINCT origin FROM envelopes ORDER BY 1")]
        reports: list[OriginReport] = []
        signed: dict[tuple[str, int], Envelope] = {}  # every origin's, by aggregate and version
        for origin in origins:

            def seen(env: Envelope) -> None:
                signed[(env.aggregate, env.version)] = env
                if progress is not None:
                    progress(1)

            raws = (
                bytes(r[0])
                for r in db.execute(
                    "SELECT raw FROM envelopes WHERE origin = ? ORDER BY seq", (origin,)
                )
            )
            notes = [
                r[0]
                for r in db.execute(
                    "SELECT note FROM checkpoints WHERE origin = ? ORDER BY size", (origin,)
                )
            ]
            reports.append(
                verify_origin(origin, raws, notes, trust, signatures=signatures, on_envelope=seen)
            )
        all_ok = all(r.ok for r in reports)
        store_failure = _check_store(db, signed, config.node.origin) if all_ok else None
    failures = [r.failure for r in reports if r.failure] + (
        [store_failure] if store_failure else []
    )
    return {
        "ok": not failures,
        "origins": [
            {
                "origin": r.origin,
                "envelopes": r.envelopes,
                "checkpoints": r.checkpoints,
                "root": r.root.hex(),
            }
            for r in reports
        ],
        "events_checked": sum(r.envelopes for r in reports),
        "signatures": "every envelope" if signatures else "by checkpoint only",
        "failures": [f.__dict__ for f in failures],
    }


def _check_store(
    db: sqlite3.Connection, own: dict[tuple[str, int], Envelope], origin: str
) -> Failure | None:
    """Every stored event (recorded here or imported) has its envelope with the same content,
    and every envelope its stored event."""
    seen = set()
    for row in db.execute(
        "SELECT originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid"
    ):
        key = (str(UUID(row[0])), int(row[1]))
        env = own.get(key)
        if env is None:
            return Failure(
                origin, 0, "unsigned_event", f"stored event {key[0]} v{key[1]} has no envelope"
            )
        state = json.loads(row[3])
        expected = {"recorded_at": env.at, "actor": env.actor, **env.payload}
        if row[2] != env.type or state != expected:
            return Failure(
                origin,
                env.seq,
                "event_differs",
                f"stored event {key[0]} v{key[1]} differs from its signed envelope",
            )
        seen.add(key)
    missing = sorted(set(own) - seen, key=lambda k: own[k].seq)
    if missing:
        env = own[missing[0]]
        return Failure(
            origin, env.seq, "missing_event", f"envelope {origin}:{env.seq} has no stored event"
        )
    return None
