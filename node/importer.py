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
from federation.merkle import leaf_hash
from federation.merkle import root as merkle_root
from federation.suite import load_public
from federation.verify import Trust
from node.audit import key_documents
from node.service import Node

TABLES = (
    "CREATE TABLE IF NOT EXISTS import_pending ("
    " origin TEXT NOT NULL, seq BIGINT NOT NULL, hash {blob} NOT NULL, raw {blob} NOT NULL,"
    " PRIMARY KEY (origin, seq, hash))",
    "CREATE TABLE IF NOT EXISTS import_checkpoints ("
    " origin TEXT NOT NULL, size BIGINT NOT NULL, note TEXT NOT NULL,"
    " PRIMARY KEY (origin, size, note))",
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
        self._recheck_checkpoints(trust, summary)
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
                error = VerificationError(
                    "own_origin", "an envelope in this node's own name that it never signed"
                )
                self._quarantine(env.origin, env.seq, error, raw, summary)
            else:
                self._settle_behind(env, raw, trust, summary)
            return None
        outside = self._outside(env.origin, trust)
        if outside is not None:
            self._quarantine(env.origin, env.seq, outside, raw, summary)
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

    def _outside(self, origin: str, trust: Trust) -> VerificationError | None:
        """Why an origin's envelopes do not belong here: certified for an area outside this
        node's (None while its certification is unknown: then it is held)."""
        own = self.node.config.node
        region = trust.regions.get(origin)
        if region is not None and (region == own.region or not in_subtree(own.region, region)):
            return VerificationError(
                "out_of_subtree", f"origin {origin} ({region}) is outside {own.region}"
            )
        return None

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
                    outside = self._outside(origin, trust)
                    if outside is not None:
                        raise outside
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
        try:
            aggregate = UUID(env.aggregate)
        except ValueError:
            aggregate = None
        if aggregate is None or str(aggregate) != env.aggregate:
            raise VerificationError(
                "malformed_envelope", f"aggregate {env.aggregate!r} is not a canonical id"
            )
        state = {"recorded_at": env.at, "actor": env.actor, **env.payload}
        try:
            text = json.dumps(state, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError):
            raise VerificationError(
                "unsupported_payload", "the payload holds values this store cannot keep (bytes)"
            ) from None
        stored = StoredEvent(
            originator_id=aggregate,
            originator_version=env.version,
            topic=env.type,
            state=text.encode(),
        )
        try:
            self.log.app.recorder.insert_events([stored], imported=[env.raw])
        except IntegrityError:
            raise VerificationError(
                "conflict", f"aggregate {env.aggregate} version {env.version} is already stored"
            ) from None

    def _receive_checkpoint(self, text: bytes, trust: Trust, summary: dict[str, Any]) -> None:
        """Keep a checkpoint of another origin once its signature (by a key valid at its size)
        and its root (against the envelopes applied, when they reach its size) hold; one that
        contradicts the applied envelopes is quarantined, never kept."""
        note = text.decode(errors="replace")
        where: tuple[str, int] = ("?", 0)
        try:
            cp, _ = parse_checkpoint(note)
            where = (cp.origin, cp.size)
            for grant in trust.valid_at(cp.origin, cp.size):
                try:
                    verify_checkpoint(note, grant.public, grant.suite)
                    break
                except VerificationError:
                    continue
            else:
                raise VerificationError(
                    "bad_checkpoint_signature",
                    f"no key of {cp.origin} valid at {cp.size} signed it",
                )
            applied = self._applied(cp.origin)[0]
            if cp.size > applied:
                self.log.write(
                    "INSERT INTO import_checkpoints (origin, size, note) VALUES (?, ?, ?)"
                    " ON CONFLICT (origin, size, note) DO NOTHING",
                    (cp.origin, cp.size, note),
                )
                return
            if cp.size and self._root(cp.origin, cp.size) != cp.root:
                raise VerificationError(
                    "checkpoint_mismatch",
                    f"{cp.origin} signed a root at size {cp.size} that its envelopes do not give",
                )
        except VerificationError as e:
            self._quarantine(*where, e, text, summary)
            return
        self.log.write(
            "INSERT INTO checkpoints (origin, size, root, note) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (origin, size) DO NOTHING",
            (cp.origin, cp.size, cp.root, note),
        )

    def _root(self, origin: str, size: int) -> bytes:
        rows = self.log.query(
            "SELECT raw FROM envelopes WHERE origin = ? AND seq <= ? ORDER BY seq", (origin, size)
        )
        return merkle_root([leaf_hash(bytes(r["raw"])) for r in rows])

    def _recheck_checkpoints(self, trust: Trust, summary: dict[str, Any]) -> None:
        """Checkpoints that waited for their envelopes, now that more are applied."""
        for row in self.log.query("SELECT origin, size, note FROM import_checkpoints"):
            if int(row["size"]) <= self._applied(str(row["origin"]))[0]:
                self.log.write(
                    "DELETE FROM import_checkpoints WHERE origin = ? AND size = ? AND note = ?",
                    (row["origin"], row["size"], row["note"]),
                )
                self._receive_checkpoint(str(row["note"]).encode(), trust, summary)

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
