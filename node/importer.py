"""Verified import (DESIGN.md §6 "In", without NATS): envelopes, checkpoints and key documents
of other origins are verified and applied to this node's store in each origin's sequence,
exactly once. A gap holds that origin (others go on) until it is filled; an envelope whose key
cannot be judged yet is held like a gap; anything forged, altered or from outside this node's
area goes to the quarantine with its reason, never applied and never silently dropped."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent

from domain.codes import in_subtree
from federation.checkpoint import parse_checkpoint, verify_checkpoint
from federation.envelope import GENESIS, Envelope, check_signature, parse
from federation.errors import VerificationError
from federation.keys import build_trust
from federation.suite import load_public
from federation.verify import Trust
from node.audit import key_documents
from node.service import Node

TABLES = (
    "CREATE TABLE IF NOT EXISTS import_pending ("
    " origin TEXT NOT NULL, seq BIGINT NOT NULL, hash {blob} NOT NULL, raw {blob} NOT NULL,"
    " PRIMARY KEY (origin, seq, hash))",
    "CREATE TABLE IF NOT EXISTS quarantine ("
    " origin TEXT NOT NULL, seq BIGINT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL,"
    " raw {blob} NOT NULL, at BIGINT NOT NULL)",
)


class Importer:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.log = node.log
        blob = "BLOB" if self.log.placeholder == "?" else "BYTEA"
        for ddl in TABLES:
            self.log.write(ddl.format(blob=blob))

    # -- trust --------------------------------------------------------------------------------
    def trust(self, extra_documents: list[bytes]) -> Trust:
        config = self.node.config
        if not config.root_key_file.exists():
            raise VerificationError(
                "no_root_key", "install the trust chain first (anjian keys install ... --root-key)"
            )
        docs = key_documents(config) + extra_documents
        if config.store.backend != "sqlite":
            docs += [bytes(d) for d in _documents_in_log(self.log)]
        trust, _ = build_trust(load_public(config.root_key_file), docs)
        return trust

    # -- taking a bundle ----------------------------------------------------------------------
    def take(self, items: Iterable[tuple[str, bytes]]) -> dict[str, Any]:
        envelopes: list[bytes] = []
        notes: list[bytes] = []
        documents: list[bytes] = []
        for kind, data in items:
            {"envelope": envelopes, "checkpoint": notes, "document": documents}.get(
                kind, []
            ).append(data)
        trust = self.trust(documents)
        summary: dict[str, Any] = {"applied": 0, "duplicates": 0, "quarantined": []}
        touched = set()
        for raw in envelopes:
            origin = self._receive(raw, trust, summary)
            if origin:
                touched.add(origin)
        for origin in sorted(touched | set(self._pending_origins())):
            self._apply(origin, trust, summary)
        for text in notes:
            self._receive_checkpoint(text, trust, summary)
        summary["held"] = self.held()
        return summary

    def _receive(self, raw: bytes, trust: Trust, summary: dict[str, Any]) -> str | None:
        try:
            env = parse(raw)
        except VerificationError as e:
            self._quarantine("?", 0, e, raw, summary)
            return None
        own = self.node.config.node
        if env.origin == own.origin:
            if env.seq > self._applied(env.origin)[0]:
                self._quarantine(
                    env.origin,
                    env.seq,
                    VerificationError(
                        "own_origin", "an envelope in this node's own name that it never signed"
                    ),
                    raw,
                    summary,
                )
            else:
                summary["duplicates"] += 1
            return None
        region = trust.regions.get(env.origin)
        if region is not None and (region == own.region or not in_subtree(own.region, region)):
            self._quarantine(
                env.origin,
                env.seq,
                VerificationError(
                    "out_of_subtree", f"origin {env.origin} ({region}) is outside {own.region}"
                ),
                raw,
                summary,
            )
            return None
        if env.seq <= self._applied(env.origin)[0]:
            self._settle_behind(env, raw, trust, summary)
            return None
        self.log.write(
            "INSERT INTO import_pending (origin, seq, hash, raw) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (origin, seq, hash) DO NOTHING",
            (env.origin, env.seq, env.hash, raw),
        )
        return env.origin

    def _settle_behind(
        self, env: Envelope, raw: bytes, trust: Trust, summary: dict[str, Any]
    ) -> None:
        """An envelope at a position already applied: the same one again is a duplicate,
        acknowledged and ignored; a different one is quarantined with what is wrong with it
        (a bad or unknown signature, or the origin signing two envelopes for one position)."""
        rows = self.log.query(
            "SELECT hash FROM envelopes WHERE origin = ? AND seq = ?", (env.origin, env.seq)
        )
        if rows and bytes(rows[0]["hash"]) == env.hash:
            summary["duplicates"] += 1
            return
        try:
            check_signature(env, trust.key_for(env.origin, env.key, env.seq))
            error = VerificationError(
                "duplicate_sequence",
                f"another envelope is already applied at {env.origin}:{env.seq}",
            )
        except VerificationError as e:
            error = e
        self._quarantine(env.origin, env.seq, error, raw, summary)

    def _apply(self, origin: str, trust: Trust, summary: dict[str, Any]) -> None:
        """Apply this origin's pending envelopes while they are the next in sequence."""
        applied, prev = self._applied(origin)
        for row in self.log.query(
            "SELECT raw FROM import_pending WHERE origin = ? AND seq <= ?", (origin, applied)
        ):
            raw = bytes(row["raw"])
            self._drop_pending(parse(raw))
            self._settle_behind(parse(raw), raw, trust, summary)
        while True:
            candidates = [
                parse(bytes(r["raw"]))
                for r in self.log.query(
                    "SELECT raw FROM import_pending WHERE origin = ? AND seq = ?",
                    (origin, applied + 1),
                )
            ]
            if not candidates:
                return  # a gap (or nothing more): the origin waits
            chosen = None
            settled: set[bytes] = set()
            for env in candidates:
                try:
                    if env.prev != prev:
                        raise VerificationError(
                            "broken_chain", "prev is not the hash of the envelope before"
                        )
                    public = trust.key_for(origin, env.key, env.seq)
                    check_signature(env, public)
                    chosen = env
                    break
                except VerificationError as e:
                    if e.reason == "unknown_key":
                        continue  # its certification may still come: held like a gap
                    self._drop_pending(env)
                    self._quarantine(origin, env.seq, e, env.raw, summary)
                    settled.add(env.hash)
            if chosen is None:
                return
            try:
                self._store(chosen)
            except VerificationError as e:
                self._drop_pending(chosen)
                self._quarantine(origin, chosen.seq, e, chosen.raw, summary)
                return
            self._drop_pending(chosen)
            for other in candidates:
                if other.hash != chosen.hash and other.hash not in settled:
                    self._drop_pending(other)
                    self._settle_behind(other, other.raw, trust, summary)
            applied, prev = chosen.seq, chosen.hash
            summary["applied"] += 1

    def _drop_pending(self, env: Envelope) -> None:
        self.log.write(
            "DELETE FROM import_pending WHERE origin = ? AND seq = ? AND hash = ?",
            (env.origin, env.seq, env.hash),
        )

    def _store(self, env: Envelope) -> None:
        state = {"recorded_at": env.at, "actor": env.actor, **env.payload}
        stored = StoredEvent(
            originator_id=UUID(env.aggregate),
            originator_version=env.version,
            topic=env.type,
            state=json.dumps(state, ensure_ascii=False, separators=(",", ":")).encode(),
        )
        try:
            self.log.app.recorder.insert_events([stored], imported=[env.raw])
        except IntegrityError:
            raise VerificationError(
                "conflict", f"aggregate {env.aggregate} version {env.version} is already stored"
            ) from None
        except ValueError:
            raise VerificationError(
                "malformed_envelope", f"aggregate {env.aggregate!r} is not an id"
            ) from None

    def _receive_checkpoint(self, text: bytes, trust: Trust, summary: dict[str, Any]) -> None:
        note = text.decode(errors="replace")
        try:
            cp, _ = parse_checkpoint(note)
            for grant in trust.keys_of(cp.origin):
                try:
                    verify_checkpoint(note, grant.public, grant.suite)
                    break
                except VerificationError:
                    continue
            else:
                raise VerificationError(
                    "bad_checkpoint_signature", f"no key of {cp.origin} signed it"
                )
        except VerificationError as e:
            self._quarantine("?", 0, e, text, summary)
            return
        self.log.write(
            "INSERT INTO checkpoints (origin, size, root, note) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (origin, size) DO NOTHING",
            (cp.origin, cp.size, cp.root, note),
        )

    # -- state --------------------------------------------------------------------------------
    def _applied(self, origin: str) -> tuple[int, bytes]:
        rows = self.log.query(
            "SELECT seq, hash FROM envelopes WHERE origin = ? ORDER BY seq DESC LIMIT 1", (origin,)
        )
        return (int(rows[0]["seq"]), bytes(rows[0]["hash"])) if rows else (0, GENESIS)

    def _pending_origins(self) -> list[str]:
        return [
            str(r["origin"]) for r in self.log.query("SELECT DISTINCT origin FROM import_pending")
        ]

    def held(self) -> dict[str, dict[str, int]]:
        """Per origin with envelopes waiting: the applied sequence and how many wait."""
        rows = self.log.query(
            "SELECT origin, COUNT(*) AS n FROM import_pending GROUP BY origin ORDER BY origin"
        )
        return {
            str(r["origin"]): {
                "applied": self._applied(str(r["origin"]))[0],
                "pending": int(r["n"]),
            }
            for r in rows
        }

    def quarantined(self) -> list[dict[str, Any]]:
        rows = self.log.query(
            "SELECT origin, seq, reason, message FROM quarantine ORDER BY at, origin, seq"
        )
        return [
            dict(origin=r["origin"], seq=r["seq"], reason=r["reason"], message=r["message"])
            for r in rows
        ]

    def _quarantine(
        self, origin: str, seq: int, error: VerificationError, raw: bytes, summary: dict[str, Any]
    ) -> None:
        self.log.write(
            "INSERT INTO quarantine (origin, seq, reason, message, raw, at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (origin, seq, error.reason, str(error), raw, self.node.clock()),
        )
        summary["quarantined"].append({"origin": origin, "seq": seq, "reason": error.reason})


def _documents_in_log(log: Any) -> list[bytes]:
    return [base64.b64decode(e["document"]) for e in log.read_topic("keys.document_recorded/1")]
