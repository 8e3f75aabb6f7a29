"""Auditing a node directory: every origin's envelopes and checkpoints through the shared
verification library, and every stored event held against its envelope, so a change in either
the log or the store is named. Reads the store read-only (SQLite or PostgreSQL) and needs no
private key."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from typing import Any
from uuid import UUID

from federation.envelope import Envelope, check_signature, parse
from federation.errors import VerificationError
from federation.verify import Failure, OriginReport, Trust, verify_origin
from node.config import Config
from node.errors import ConfigError

Rows = Callable[..., list[Any]]  # (sql with ? placeholders, *params) -> rows by column name


@contextmanager
def read_only(config: Config) -> Iterator[tuple[Rows, str]]:
    """A query function on the node's store, and the column that orders stored events."""
    if config.store.backend == "sqlite":
        if not config.sqlite_file.exists():
            raise ConfigError(f"{config.sqlite_file}: no event store to audit")
        db = sqlite3.connect(f"file:{config.sqlite_file}?mode=ro", uri=True)
        db.row_factory = sqlite3.Row
        with closing(db):
            yield (lambda sql, *params: db.execute(sql, params).fetchall()), "rowid"
        return
    try:
        import psycopg
        from psycopg.rows import dict_row
    except ImportError:
        raise ConfigError("the PostgreSQL store needs: pip install 'anjian[postgres]'") from None
    pg = config.store.postgres
    try:
        conn = psycopg.connect(
            dbname=pg.dbname,
            host=pg.host,
            port=pg.port,
            user=pg.user,
            password=pg.password,
            row_factory=dict_row,
            autocommit=True,
        )
    except psycopg.Error as e:
        raise ConfigError(f"cannot reach the PostgreSQL store: {e}") from None
    with conn:
        yield (
            (lambda sql, *params: conn.execute(sql.replace("?", "%s"), params).fetchall()),
            "notification_id",
        )


def envelope_count(config: Config) -> int:
    with read_only(config) as (rows, _):
        return int(rows("SELECT COUNT(*) AS n FROM envelopes")[0]["n"])


def key_documents(config: Config) -> list[bytes]:
    """Key documents in the node's trust chain directory and recorded in its log (read-only)."""
    docs = [p.read_bytes() for p in sorted(config.trust_dir.glob("*.doc"))]
    if config.store.backend == "sqlite" and not config.sqlite_file.exists():
        return docs
    with read_only(config) as (rows, order):
        for row in rows(
            "SELECT state FROM stored_events"
            f" WHERE topic = 'keys.document_recorded/1' ORDER BY {order}"
        ):
            docs.append(base64.b64decode(json.loads(bytes(row["state"]))["document"]))
    return docs


def audit_node(
    config: Config,
    trust: Trust,
    *,
    signatures: bool = True,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    reports: list[OriginReport] = []
    signed: dict[tuple[str, int], Envelope] = {}  # every origin's, by aggregate and version

    def seen(env: Envelope) -> None:
        signed[(env.aggregate, env.version)] = env
        if progress is not None:
            progress(1)

    with read_only(config) as (rows, order):
        for r in rows("SELECT DISTINCT origin FROM envelopes ORDER BY origin"):
            origin = str(r["origin"])
            raws = [
                bytes(e["raw"])
                for e in rows("SELECT raw FROM envelopes WHERE origin = ? ORDER BY seq", origin)
            ]
            notes = [
                str(n["note"])
                for n in rows("SELECT note FROM checkpoints WHERE origin = ? ORDER BY size", origin)
            ]
            reports.append(
                verify_origin(origin, raws, notes, trust, signatures=signatures, on_envelope=seen)
            )
        above = _from_above(rows, trust, seen, signatures)
        if above is not None:
            reports.append(above)
        all_ok = all(r.ok for r in reports)
        store_failure = _check_store(rows, order, signed, config.node.origin) if all_ok else None
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


def _from_above(
    rows: Rows, trust: Trust, seen: Callable[[Envelope], None], signatures: bool
) -> OriginReport | None:
    """Licence events that came down from the tiers above: a selection of their logs, each
    envelope standing on its own signature (no chain to follow here)."""
    report = OriginReport("above")
    for r in rows(
        "SELECT raw FROM downward WHERE verified > 0 AND type LIKE ? ORDER BY verified",
        "licence.%",
    ):
        env = parse(bytes(r["raw"]))
        try:
            public = trust.key_for(env.origin, env.key, env.seq)
            if signatures:
                check_signature(env, public)
        except VerificationError as e:
            report.failure = Failure(env.origin, env.seq, e.reason, str(e))
            return report
        report.envelopes += 1
        seen(env)
    return report if report.envelopes else None


def _check_store(
    rows: Rows, order: str, signed: dict[tuple[str, int], Envelope], origin: str
) -> Failure | None:
    """Every stored event (recorded here or imported) has its envelope with the same content,
    and every envelope its stored event."""
    seen = set()
    for row in rows(
        "SELECT originator_id, originator_version, topic, state FROM stored_events"
        f" ORDER BY {order}"
    ):
        key = (str(UUID(str(row["originator_id"]))), int(row["originator_version"]))
        env = signed.get(key)
        if env is None:
            return Failure(
                origin, 0, "unsigned_event", f"stored event {key[0]} v{key[1]} has no envelope"
            )
        state = json.loads(bytes(row["state"]))
        expected = {"recorded_at": env.at, "actor": env.actor, **env.payload}
        if row["topic"] != env.type or state != expected:
            return Failure(
                origin,
                env.seq,
                "event_differs",
                f"stored event {key[0]} v{key[1]} differs from its signed envelope",
            )
        seen.add(key)
    missing = sorted(set(signed) - seen, key=lambda k: signed[k].seq)
    if missing:
        env = signed[missing[0]]
        return Failure(
            env.origin,
            env.seq,
            "missing_event",
            f"envelope {env.origin}:{env.seq} has no stored event",
        )
    return None
