"""Verified import (docs/architecture.md §6 "In"): envelopes, checkpoints and key documents
of other origins are verified and applied to this node's store in each origin's sequence,
exactly once. A gap holds that origin (others go on) until it is filled; an envelope whose key
cannot be judged yet is held like a gap; anything forged, altered or from outside this node's
area goes to the quarantine with its reason, never applied and never silently dropped."""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from eventsourcing.persistence import IntegrityError

from domain.codes import in_subtree
from domain.errors import DomainError
from domain.i18n import _
from federation.checkpoint import parse_checkpoint
from federation.envelope import GENESIS, Envelope, check_signature, parse
from federation.errors import VerificationError
from federation.keys import TrustBuilder
from federation.suite import load_public
from federation.verify import Trust
from node.keys import documents_from_above, key_documents
from node.replication.admit import Admission
from node.replication.checkpoints import Checkpoints, signed_by_valid_key
from node.replication.receipts import record_receipts
from node.service import Node
from node.signedlog import storable, stored_event

log = logging.getLogger("anjian.import")
RUN = 2000  # envelopes of one origin checked and stored per transaction
HOLD = 2000  # at most this many envelopes of one origin wait for a checkpoint to cover them
TAILS = 20_000  # and at most this many in all wait in memory (beyond: verified one by one)
PARSED = 20_000  # envelopes kept parsed between takes (those waiting for their turn)
QUARANTINED = 1000  # refused messages kept per origin (with their bytes, for inspection)
KEPT_BYTES = 16_384  # of a refused message, the first bytes kept (most envelopes are whole)
KEY_DOCUMENT = "keys.document_recorded/1"
REPORTS = ("accident.reported/1", "accident.near_miss_reported/1")


class Importer:
    """Verified import into one node. Not thread-safe: one importer per node, called from the
    node's writer thread."""

    def __init__(self, node: Node, *, restoring: bool = False) -> None:
        """``restoring``: taking back this node's own history (a restore or a recovery), so its
        own origin's envelopes are applied like any other's, and no receipts are recorded (the
        history holds them). A backup centre records no receipts either: it is no tier."""
        self.node = node
        self.restoring = restoring
        self.receipts = not restoring and node.config.node.tier.value != "backup"
        self.log = node.log
        self._builder: TrustBuilder | None = None
        self._trust_mark: tuple[Any, ...] = ()
        self._swept = -1  # the trust version the waiting envelopes were last judged by
        self.swept_above = -1  # the same for what waits from above
        self._parsed: dict[bytes, Envelope] = {}  # envelopes by their bytes, parsed once
        # while one origin is applied: what waits for its turn by hash, and which of it is
        # already kept in import_pending
        self._waiting: dict[bytes, Envelope] = {}
        self._proven: list[tuple[str, int, bytes, str]] = []  # checkpoints a run matched
        self._in_db: set[bytes] = set()
        # per origin, the next envelopes in sequence waiting (in memory) for a checkpoint, while
        # the caller keeps the messages that carried them unacknowledged
        self._tails: dict[str, dict[bytes, Envelope]] = {}
        self._tailed = 0  # envelopes in all those tails (at most TAILS)
        # per take: the applied position of each origin it looked at (read once, in one query
        # for the origins of what arrived, and followed as runs are stored)
        self._positions: dict[str, tuple[int, bytes]] = {}
        # origins whose waiting envelopes may go on without anything new of theirs: those held
        # for a checkpoint (they go on, signature by signature, once nothing more is arriving);
        # None: not known yet (after a start: every origin with envelopes waiting is looked at)
        self._awaiting: set[str] | None = None
        self.touched = 0  # origins looked at by the last take (a take costs what it touches)
        self.limits = node.config.federation
        self.checkpoints = Checkpoints(
            self.log,
            self.quarantine,
            self._applied,
            ahead=self.limits.hold_per_origin,
            dropped=self._dropped,
        )
        self.admission = Admission(self.log)

    # -- trust --------------------------------------------------------------------------------
    def trust(self, extra_documents: Sequence[bytes] = ()) -> Trust:
        """The grants chaining to the root, from the trust directory, the key documents in the
        log and from above, and ``extra_documents``; kept up to date as documents arrive
        (federation.keys.TrustBuilder), read again only when a document came another way (a
        command of this node, `anjian keys install`), and then only the new ones applied."""
        config = self.node.config
        if not config.root_key_file.exists():
            raise VerificationError(
                "no_root_key",
                _("install the trust chain first (anjian keys install ... --root-key)"),
            )
        mark = self._documents_mark()
        if self._builder is None or mark[1] != self._trust_mark[1]:
            # the trust directory changed (a new root, a chain installed): from the start
            self._builder = TrustBuilder(load_public(config.root_key_file))
            self._trust_mark = ()
        if mark != self._trust_mark:
            docs = key_documents(config) + self._documents_from_above()
            if config.store.backend != "sqlite":
                docs += [bytes(d) for d in _documents_in_log(self.log)]
            self._builder.add(docs)
            self._trust_mark = mark
        self._builder.add(extra_documents)
        return self._builder.trust

    def _current(self) -> Trust:
        """The trust as this take has kept it (key documents it stored included), without
        looking for documents that came another way."""
        assert self._builder is not None
        return self._builder.trust

    @property
    def trust_version(self) -> int:
        """Changes whenever the trust may have (for what judges waiting envelopes by it)."""
        self.trust()
        assert self._builder is not None
        return self._builder.version

    def _documents_mark(self) -> tuple[Any, ...]:
        """Changes whenever a key document is added anywhere this importer reads them: the
        counts in the log and from above, and the trust directory's files."""
        rows = self.log.query(
            "SELECT COUNT(*) AS n FROM stored_events WHERE topic = 'keys.document_recorded/1'"
            " UNION ALL SELECT COUNT(*) AS n FROM downward WHERE verified > 0"
            " AND type = 'keys.document_recorded/1'"
        )
        trust_dir = self.node.config.trust_dir
        files = tuple(
            sorted(
                (p.name, p.stat().st_mtime_ns)
                for p in [*trust_dir.glob("*.doc"), self.node.config.root_key_file]
                if p.exists()
            )
        )
        return (tuple(int(r["n"]) for r in rows), files)

    def _documents_from_above(self) -> list[bytes]:
        return documents_from_above(lambda sql, *params: self.log.query(sql, params))

    # -- taking a bundle ----------------------------------------------------------------------
    def take(
        self,
        items: Iterable[tuple[str, bytes]],
        *,
        hold_tail: bool = False,
        tail_in_memory: bool = False,
    ) -> dict[str, Any]:
        """Take envelopes, checkpoints and key documents (in any order, with duplicates) and
        apply what is next in each origin's sequence. With ``hold_tail`` (more is arriving),
        envelopes past an origin's last signed checkpoint may wait for the next checkpoint, so
        that a run is authenticated by its Merkle root and one signature instead of one
        signature per envelope; without it everything verifiable is applied now.

        What waits is kept in ``import_pending``, except, with ``tail_in_memory``, the next
        envelopes in sequence waiting for a checkpoint: they stay in memory, and
        ``summary["unsettled"]`` holds their bytes, which the caller must not acknowledge
        before a later take no longer names them (they come again after a crash)."""
        envelopes: list[bytes] = []
        notes: list[bytes] = []
        documents: list[bytes] = []
        strays: list[tuple[str, bytes]] = []
        for kind, data in items:
            target = {"envelope": envelopes, "checkpoint": notes, "document": documents}.get(kind)
            if target is None:
                strays.append((kind, data))
            else:
                target.append(data)
        trust = self.trust(documents)
        self._positions = {}
        summary: dict[str, Any] = {"applied": 0, "duplicates": 0, "quarantined": []}
        for kind, data in strays:
            error = VerificationError(
                "malformed_message",
                _("{kind!r} is not an envelope, checkpoint or key document", kind=kind),
            )
            self.quarantine("?", 0, error, data, summary)
        unjudged: list[bytes] = []  # signed by a key an envelope of this take may certify
        noted: set[str] = set()  # origins a checkpoint of this take may let go on
        for text in notes:
            noted.add(self.checkpoints.receive(text, trust, summary, later=unjudged))
        fresh = self._receive(envelopes, trust, summary)
        visit = set(fresh) | noted
        assert self._builder is not None  # (made by trust() above)
        changed = self._builder.version != self._swept
        if changed or self._awaiting is None:
            # new key documents may judge what waits, of any origin (and after a start, what
            # waits is not known yet)
            if changed:
                self._sweep_pending(trust, summary)
            visit |= set(self._pending_origins()) | set(self._tails)
            self._awaiting = set()
        elif not hold_tail:  # nothing more is arriving: what waits for a checkpoint goes on
            visit |= self._awaiting | set(self._tails)
        visit &= set(self._pending_origins_among(visit)) | set(fresh) | set(self._tails)
        self.touched = len(visit)
        self._load_positions(visit)
        for origin in sorted(visit):
            self._awaiting.discard(origin)
            # a run of key documents applied for one origin may judge the next origins
            self._apply(
                origin,
                self._current(),
                summary,
                hold_tail,
                [*self._untail(origin), *fresh.get(origin, [])],
                tail_in_memory,
            )
        current = self._current()
        for text in unjudged:  # with the take's key documents applied: kept or quarantined
            self.checkpoints.receive(text, current, summary)
        self.checkpoints.recheck(current, summary, visit | noted)
        summary["held"] = self.held(visit)
        if tail_in_memory:  # for the caller's acknowledgements only (not part of a report)
            summary["unsettled"] = {e.raw for tail in self._tails.values() for e in tail.values()}
        return summary

    def _parse(self, raw: bytes) -> Envelope:
        """Parsed once, also across takes (envelopes waiting for a checkpoint come back)."""
        env = self._parsed.get(raw)
        if env is None:
            if len(self._parsed) >= PARSED:
                self._parsed.clear()
            env = self._parsed[raw] = parse(raw)
        return env

    def _receive(
        self, raws: list[bytes], trust: Trust, summary: dict[str, Any]
    ) -> dict[str, list[Envelope]]:
        """Sort incoming envelopes: malformed, foreign or already applied ones are settled at
        once; the rest, per origin, go on to be applied or to wait for their turn."""
        own = self.node.config.node.origin
        ahead: dict[str, list[Envelope]] = {}
        applied: dict[str, int] = {}
        outside_of: dict[str, VerificationError | None] = {}  # per origin, for this take
        foreign: dict[tuple[str, str], VerificationError | None] = {}  # per origin and key
        for raw in raws:
            try:
                if len(raw) > self.limits.max_envelope:
                    raise VerificationError(
                        "oversized",
                        _(
                            "an envelope of {size} bytes, over the limit of {limit}"
                            " ([federation] max_envelope)",
                            size=len(raw),
                            limit=self.limits.max_envelope,
                        ),
                    )
                env = self._parse(raw)
            except VerificationError as e:
                self.quarantine("?", 0, e, raw, summary)
                continue
            if env.origin not in applied:
                applied[env.origin] = self._applied(env.origin)[0]
            if env.origin == own and env.seq > applied[own] and not self.restoring:
                error = VerificationError(
                    "own_origin", _("an envelope in this node's own name that it never signed")
                )
                self.quarantine(env.origin, env.seq, error, raw, summary)
                continue
            if env.origin not in outside_of:
                outside_of[env.origin] = self._outside(env.origin, trust)
            outside = outside_of[env.origin]
            if outside is None:
                if (env.origin, env.key) not in foreign:
                    foreign[env.origin, env.key] = _foreign_key(env, trust)
                outside = foreign[env.origin, env.key] or _revoked(env, trust)
            if outside is not None:
                self.quarantine(env.origin, env.seq, outside, raw, summary)
            elif env.seq <= applied[env.origin]:
                self._settle_behind(env, raw, trust, summary)
            else:
                ahead.setdefault(env.origin, []).append(env)
        return ahead

    def _sweep_pending(self, trust: Trust, summary: dict[str, Any]) -> None:
        """With new key documents: refuse what waits and can now be judged (a revoked key, an
        origin now known to be outside this area, a key of another origin)."""
        assert self._builder is not None
        self._swept = self._builder.version
        for row in self.log.query("SELECT raw FROM import_pending"):
            env = self._parse(bytes(row["raw"]))
            error = (
                self._outside(env.origin, trust) or _foreign_key(env, trust) or _revoked(env, trust)
            )
            if error is not None:
                self.log.write(
                    "DELETE FROM import_pending WHERE origin = ? AND seq = ? AND hash = ?",
                    (env.origin, env.seq, env.hash),
                )
                self.quarantine(env.origin, env.seq, error, env.raw, summary)

    def _outside(self, origin: str, trust: Trust) -> VerificationError | None:
        """Why an origin's envelopes do not belong here: certified for an area outside this
        node's (None while its certification is unknown: then it is held)."""
        own = self.node.config.node
        if origin == own.origin or own.tier.value == "backup":  # it holds the whole country
            return None
        region = trust.regions.get(origin)
        if region is not None and (region == own.region or not in_subtree(own.region, region)):
            return VerificationError(
                "out_of_subtree",
                _(
                    "origin {origin} ({region}) is outside {area}",
                    origin=origin,
                    region=region,
                    area=own.region,
                ),
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
                _(
                    "another envelope is already applied at {origin}:{seq}",
                    origin=env.origin,
                    seq=env.seq,
                ),
            )
        except VerificationError as e:
            error = e
        self.quarantine(env.origin, env.seq, error, raw, summary)

    def _apply(
        self,
        origin: str,
        trust: Trust,
        summary: dict[str, Any],
        hold_tail: bool,
        fresh: Sequence[Envelope] = (),
        tail_in_memory: bool = False,
    ) -> None:
        """Apply this origin's waiting envelopes (those of earlier takes and ``fresh`` ones)
        while they are the next in sequence: each contiguous run is checked (chain, keys, and
        its Merkle root against the origin's signed checkpoints, or else each signature) and
        stored in one transaction. What still waits afterwards is kept in ``import_pending``
        (before the caller acknowledges the messages that carried it), or, with
        ``tail_in_memory``, the next ones in sequence in memory."""
        applied, prev = self._applied(origin)
        self._waiting, self._in_db = {}, set()
        for row in self.log.query("SELECT raw FROM import_pending WHERE origin = ?", (origin,)):
            env = self._parse(bytes(row["raw"]))
            self._waiting[env.hash] = env
            self._in_db.add(env.hash)
        for env in fresh:
            self._waiting.setdefault(env.hash, env)
        try:
            for env in [e for e in self._waiting.values() if e.seq <= applied]:
                self._drop_pending([env])
                self._settle_behind(env, env.raw, trust, summary)
            self._apply_waiting(origin, trust, summary, hold_tail, applied, prev)
        finally:
            rest = [env for h, env in self._waiting.items() if h not in self._in_db]
            if tail_in_memory and hold_tail and rest and origin in trust.regions:
                tail = self._next_in_sequence(origin, rest)[: self.limits.hold_per_origin]
                self._tails[origin] = {env.hash: env for env in tail}
                self._tailed += len(tail)
                rest = [env for env in rest if env.hash not in self._tails[origin]]
            self._keep(origin, rest, trust, summary)
            self._waiting, self._in_db = {}, set()

    def _untail(self, origin: str) -> list[Envelope]:
        tail = self._tails.pop(origin, {})
        self._tailed -= len(tail)
        return list(tail.values())

    def _next_in_sequence(self, origin: str, envs: list[Envelope]) -> list[Envelope]:
        """Those of ``envs`` that follow the applied envelopes without a gap (one candidate
        per position)."""
        expected = self._applied(origin)[0] + 1
        found: list[Envelope] = []
        for env in sorted(envs, key=lambda e: (e.seq, e.hash)):
            if env.seq != expected:
                break
            found.append(env)
            expected += 1
        return found

    def _keep(
        self, origin: str, envs: list[Envelope], trust: Trust, summary: dict[str, Any]
    ) -> None:
        """Keep waiting envelopes in ``import_pending`` (acknowledged messages may carry them),
        within bounds: ``hold_per_origin`` per origin, counted from its applied position, and
        ``hold_unknown`` in all while the origin is not certified here. Beyond them envelopes
        are dropped and counted, not kept: an uplink publishes again what its parent does not
        advance on, so a genuine origin loses nothing, and a flood costs no more than the bound."""
        if not envs:
            return
        limits = self.limits
        applied = self._applied(origin)[0]
        count = "SELECT COUNT(*) AS n FROM import_pending"
        room = limits.hold_per_origin - int(
            self.log.query(count + " WHERE origin = ?", (origin,))[0]["n"]
        )
        if origin not in trust.regions:
            room = min(room, limits.hold_unknown - int(self.log.query(count)[0]["n"]))
        near = sorted(
            (env for env in envs if env.seq <= applied + limits.hold_per_origin),
            key=lambda e: (e.seq, e.hash),
        )
        kept = near[: max(room, 0)]
        self.log.write_many(
            "INSERT INTO import_pending (origin, seq, hash, raw) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (origin, seq, hash) DO NOTHING",
            [(env.origin, env.seq, env.hash, env.raw) for env in kept],
        )
        if len(envs) > len(kept):
            self._dropped(origin, len(envs) - len(kept), summary)

    def _dropped(self, origin: str, n: int, summary: dict[str, Any]) -> None:
        """Count messages not kept (beyond a bound), per origin; an origin not certified here
        is counted under "?" (anyone may make up origins)."""
        summary["dropped"] = summary.get("dropped", 0) + n
        self.log.write(
            "INSERT INTO import_dropped (origin, n, last_at) VALUES (?, ?, ?)"
            " ON CONFLICT (origin) DO UPDATE SET n = import_dropped.n + excluded.n,"
            " last_at = excluded.last_at",
            (self._accountable(origin), n, self.node.clock()),
        )

    def _accountable(self, origin: str) -> str:
        """The origin a refusal or a drop is filed under: itself when certified here (or while
        the trust is not known), else "?", so that made-up origins share one bound."""
        trust = self._builder.trust if self._builder is not None else None
        if trust is None or origin in trust.regions or origin == self.node.config.node.origin:
            return origin
        return "?"

    def _apply_waiting(
        self,
        origin: str,
        trust: Trust,
        summary: dict[str, Any],
        hold_tail: bool,
        applied: int,
        prev: bytes,
    ) -> None:
        while True:
            ordered = sorted(self._waiting.values(), key=lambda e: (e.seq, e.hash))[: RUN + 1]
            run: list[Envelope] = []
            for env in ordered:
                if env.seq != applied + len(run) + 1:
                    break  # a second candidate for one position, or a gap
                run.append(env)
            if not run:
                next_here = bool(ordered) and ordered[0].seq == applied + 1
                if next_here and self._apply_one(origin, ordered, trust, summary):
                    applied, prev = self._applied(origin)
                    continue
                return  # a gap (or nothing more): the origin waits
            if len(ordered) > len(run) and ordered[len(run)].seq == run[-1].seq:
                run.pop()  # two candidates for the last position: settled one at a time
                if not run:
                    if self._apply_one(origin, ordered, trust, summary):
                        applied, prev = self._applied(origin)
                        continue
                    return
            self._proven = []
            good, stop = self._check_run(origin, run, prev, trust, summary, hold_tail)
            if good:
                self._store_run(good, summary)
                self._keep_proven(origin, self._applied(origin)[0])
                applied, prev = good[-1].seq, good[-1].hash
            if stop:
                return

    def _check_run(
        self,
        origin: str,
        run: list[Envelope],
        prev: bytes,
        trust: Trust,
        summary: dict[str, Any],
        hold_tail: bool,
    ) -> tuple[list[Envelope], bool]:
        """The longest verified prefix of a contiguous run, and whether to stop after it
        (a held envelope). The first failing envelope is quarantined."""
        covered = self._covered(origin, run, trust)
        created: dict[str, str] = {}  # records created by the run so far
        good: list[Envelope] = []
        outside = self._outside(origin, trust)
        verified: _Ahead | None = None  # signatures checked ahead, on every core
        try:
            for index, env in enumerate(run):
                try:
                    if outside is not None:
                        raise outside
                    if env.prev != prev:
                        raise VerificationError(
                            "broken_chain", _("prev is not the hash of the envelope before")
                        )
                    public = trust.key_for(origin, env.key, env.seq)
                    if env.seq > covered:
                        rest = len(self._waiting) - len(good)
                        if hold_tail and rest <= HOLD and self._tailed + rest <= TAILS:
                            if self._awaiting is not None:
                                self._awaiting.add(origin)
                            return good, True  # waits for the checkpoint that will cover it
                        if verified is None:
                            verified = _verify_ahead(run[index:], trust)
                        if not verified.get(env.hash, False):
                            check_signature(env, public)  # (says why it fails)
                    storable(env)
                    self.admission.check(env, trust.regions.get(origin), created)
                except VerificationError as e:
                    if e.reason in ("unknown_key", "unknown_type"):
                        return good, True  # its certification (or an upgrade) may still come
                    self._drop_pending([env])
                    self.quarantine(origin, env.seq, e, env.raw, summary)
                    return good, False
                good.append(env)
                prev = env.hash
        finally:
            if verified is not None:
                verified.cancel()  # the run stopped early: the rest is not checked
        return good, False

    def _covered(self, origin: str, run: list[Envelope], trust: Trust) -> int:
        """The highest sequence of the run authenticated by a signed checkpoint: the Merkle
        root of the applied envelopes plus the run up to the checkpoint's size matches the root
        the origin signed (0 if none does)."""
        first, last = run[0].seq, run[-1].seq
        notes: dict[int, str] = {}
        for row in self.log.query(
            "SELECT size, note FROM import_checkpoints WHERE origin = ? AND size >= ?"
            " AND size <= ? ORDER BY size",
            (origin, first, last),
        ):
            notes.setdefault(int(row["size"]), str(row["note"]))
        if not notes:
            return 0
        tree = self.checkpoints.tree(origin)
        covered = 0
        for env in run:
            tree.append(env.leaf)
            note = notes.get(tree.size)
            if note is None:
                continue
            cp, _sig = parse_checkpoint(note)
            if cp.root != tree.root():
                break  # the envelopes or the checkpoint are wrong: check each signature
            if signed_by_valid_key(note, cp.origin, cp.size, trust):
                covered = tree.size
                self._proven.append((cp.origin, cp.size, cp.root, note))
        return covered

    def _keep_proven(self, origin: str, upto: int) -> None:
        """Checkpoints whose root a stored run proved: kept now, with no need to compute the
        root again from the whole log later."""
        done = [p for p in self._proven if p[0] == origin and p[1] <= upto]
        self._proven = [p for p in self._proven if p not in done]
        self.log.write_many(
            "INSERT INTO checkpoints (origin, size, root, note) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (origin, size) DO NOTHING",
            done,
        )
        self.log.write_many(
            "DELETE FROM import_checkpoints WHERE origin = ? AND size = ? AND note = ?",
            [(o, size, note) for o, size, _root, note in done],
        )

    def _apply_one(
        self, origin: str, waiting: list[Envelope], trust: Trust, summary: dict[str, Any]
    ) -> bool:
        """Several candidates for the next position: the first that verifies is applied, the
        others are settled against it. True if one was applied."""
        applied, prev = self._applied(origin)
        candidates = [env for env in waiting if env.seq == applied + 1]
        refused: set[bytes] = set()
        for env in candidates:
            before = len(summary["quarantined"])
            good, _stop = self._check_run(origin, [env], prev, trust, summary, hold_tail=False)
            if len(summary["quarantined"]) > before:
                refused.add(env.hash)
            if good:
                self._store_run(good, summary)
                for other in candidates:
                    if other.hash != env.hash and other.hash not in refused:
                        self._drop_pending([other])
                        self._settle_behind(other, other.raw, trust, summary)
                return True
        return False

    def _drop_pending(self, envs: list[Envelope]) -> None:
        """No longer waiting: applied, settled or quarantined."""
        for env in envs:
            self._waiting.pop(env.hash, None)
        self.log.write_many(
            "DELETE FROM import_pending WHERE origin = ? AND seq = ? AND hash = ?",
            [(env.origin, env.seq, env.hash) for env in envs if env.hash in self._in_db],
        )

    def _store_run(self, run: list[Envelope], summary: dict[str, Any]) -> None:
        """Store a verified run in one transaction; if the store refuses it (an aggregate
        version already taken), store one by one and quarantine the one refused."""
        try:
            self.log.app.recorder.insert_events([stored_event(env) for env in run], imported=run)
        except IntegrityError:
            self._positions.pop(run[0].origin, None)  # read again: someone else stored first
            if len(run) == 1:
                error = VerificationError(
                    "conflict",
                    _(
                        "aggregate {record} version {version} is taken",
                        record=run[0].aggregate,
                        version=run[0].version,
                    ),
                )
                self._drop_pending(run)
                self.quarantine(run[0].origin, run[0].seq, error, run[0].raw, summary)
                return
            for env in run:
                before = summary["applied"]
                self._store_run([env], summary)
                if summary["applied"] == before:
                    return  # the rest waits behind the refused one (a gap until repaired)
            return
        self._drop_pending(run)
        self.admission.stored(run)
        for env in run:  # applied: no longer kept parsed for its turn
            self._parsed.pop(env.raw, None)
        if run[-1].origin != self.node.config.node.origin:
            self._positions[run[-1].origin] = (run[-1].seq, run[-1].hash)
        summary["applied"] += len(run)
        documents = [
            base64.b64decode(env.payload["document"]) for env in run if env.type == KEY_DOCUMENT
        ]
        if documents and self._builder is not None:
            self._builder.add(documents)  # applied now; not read again from the log
            (in_log, *rest), files = self._trust_mark
            self._trust_mark = ((in_log + len(documents), *rest), files)
        reports = [
            (env.aggregate, env.origin, env.seq, env.at) for env in run if env.type in REPORTS
        ]
        if reports and self.receipts:  # this tier's signed receipt (docs/architecture.md §6)
            try:
                summary["receipts"] = summary.get("receipts", 0) + record_receipts(
                    self.node, reports
                )
            except DomainError as e:  # the reports are applied; only the receipt is missing
                log.error(_("no receipt recorded for {reports}: {error}", reports=reports, error=e))

    # -- state --------------------------------------------------------------------------------
    def _applied(self, origin: str) -> tuple[int, bytes]:
        """The origin's applied sequence and the hash of its last envelope (this node's own
        origin is read each time: the node records while it imports)."""
        position = self._positions.get(origin)
        if position is None:
            rows = self.log.query(
                "SELECT seq, hash FROM envelopes WHERE origin = ? ORDER BY seq DESC LIMIT 1",
                (origin,),
            )
            position = (int(rows[0]["seq"]), bytes(rows[0]["hash"])) if rows else (0, GENESIS)
            if origin != self.node.config.node.origin:
                self._positions[origin] = position
        return position

    def _load_positions(self, origins: Iterable[str]) -> None:
        """The applied positions of many origins, in a few queries (not one per origin)."""
        wanted = set(origins) - set(self._positions) - {self.node.config.node.origin}
        for r in self.log.query_in(
            "SELECT m.origin, m.size, e.hash FROM merkle m JOIN envelopes e"
            " ON e.origin = m.origin AND e.seq = m.size WHERE m.origin IN ({values})",
            wanted,
        ):
            self._positions[str(r["origin"])] = (int(r["size"]), bytes(r["hash"]))
        for origin in wanted:
            self._positions.setdefault(origin, (0, GENESIS))

    def _pending_origins(self) -> list[str]:
        return [
            str(r["origin"]) for r in self.log.query("SELECT DISTINCT origin FROM import_pending")
        ]

    def _pending_origins_among(self, origins: Iterable[str]) -> list[str]:
        sql = "SELECT DISTINCT origin FROM import_pending WHERE origin IN ({values})"
        return [str(r["origin"]) for r in self.log.query_in(sql, origins)]

    def held(self, origins: Iterable[str] | None = None) -> dict[str, dict[str, int]]:
        """Per origin with envelopes waiting (of ``origins``, by default all): the applied
        sequence and how many wait."""
        sql = (
            "SELECT p.origin, COUNT(*) AS n, COALESCE(MAX(m.size), 0) AS applied"
            " FROM import_pending p LEFT JOIN merkle m ON m.origin = p.origin {where}"
            " GROUP BY p.origin ORDER BY p.origin"
        )
        if origins is None:
            rows = self.log.query(sql.format(where=""))
        else:
            rows = self.log.query_in(sql.format(where="WHERE p.origin IN ({values})"), origins)
        return {
            str(r["origin"]): {"applied": int(r["applied"]), "pending": int(r["n"])}
            for r in sorted(rows, key=lambda r: str(r["origin"]))
        }

    def quarantined(self) -> list[dict[str, Any]]:
        rows = self.log.query(
            "SELECT origin, seq, reason, message FROM quarantine ORDER BY at, origin, seq"
        )
        return [
            dict(origin=r["origin"], seq=r["seq"], reason=r["reason"], message=r["message"])
            for r in rows
        ]

    def quarantine(
        self, origin: str, seq: int, error: VerificationError, raw: bytes, summary: dict[str, Any]
    ) -> None:
        """Keep a refused message with the reason (once: the same bytes again, e.g. published
        again by an uplink repairing what its parent holds, are not counted twice), at most
        QUARANTINED per origin, those of origins not certified here together under "?" (a flood
        is counted in ``import_dropped`` beyond that), and of each only its first KEPT_BYTES."""
        summary["quarantined"].append({"origin": origin, "seq": seq, "reason": error.reason})
        origin = self._accountable(origin)
        held = self.log.query("SELECT COUNT(*) AS n FROM quarantine WHERE origin = ?", (origin,))
        if int(held[0]["n"]) >= QUARANTINED:
            self._dropped(origin, 1, {})
            return
        raw = raw[:KEPT_BYTES]
        # the reason is the stable code; the message is kept as the node's operator reads it
        # (the process's language: a stored record, not read again through the catalogue)
        self.log.write(
            "INSERT INTO quarantine (origin, seq, reason, message, raw, at)"
            " SELECT ?, ?, ?, ?, ?, ? WHERE NOT EXISTS"
            " (SELECT 1 FROM quarantine WHERE origin = ? AND seq = ? AND raw = ?)",
            (origin, seq, error.reason, str(error), raw, self.node.clock(), origin, seq, raw),
        )


PARALLEL = 64  # signatures checked on all cores from this many on (fewer: in this thread)
_pool: ThreadPoolExecutor | None = None


def _verify_ahead(envs: list[Envelope], trust: Trust) -> _Ahead:
    """Whether each envelope's signature verifies by its key at its position (False also for
    a key not valid there), checked on every core while this thread goes on with the run: the
    Ed25519 library releases the GIL while it verifies. Envelopes are still applied one by one
    in their order, and the first that fails is refused as before; this only checks their
    signatures ahead. Nothing for fewer than PARALLEL envelopes."""
    global _pool
    if len(envs) < PARALLEL:
        return _Ahead({})
    if _pool is None:
        cores = os.cpu_count() or 1
        _pool = ThreadPoolExecutor(max_workers=cores, thread_name_prefix="anjian-verify")

    keyed: list[tuple[Envelope, bytes]] = []  # the keys looked up here, not in the threads
    for env in envs:
        try:
            keyed.append((env, trust.key_for(env.origin, env.key, env.seq)))
        except VerificationError:
            continue  # judged in order, with its reason
    owner: dict[bytes, Future[dict[bytes, bool]]] = {}
    for i in range(0, len(keyed), PARALLEL):  # in order: the first results come first
        part = keyed[i : i + PARALLEL]
        future = _pool.submit(_check_signatures, part)
        owner.update((env.hash, future) for env, _public in part)
    return _Ahead(owner)


def _check_signatures(part: list[tuple[Envelope, bytes]]) -> dict[bytes, bool]:
    out = {}
    for env, public in part:
        try:
            check_signature(env, public)
            out[env.hash] = True
        except VerificationError:
            out[env.hash] = False
    return out


class _Ahead:
    """Signatures being checked ahead: ``get`` waits for an envelope's part only."""

    def __init__(self, owner: dict[bytes, Future[dict[bytes, bool]]]) -> None:
        self.owner = owner
        self.known: dict[bytes, bool] = {}

    def __len__(self) -> int:
        return len(self.owner)

    def get(self, digest: bytes, default: bool = False) -> bool:
        future = self.owner.get(digest)
        if future is None:
            return default
        if digest not in self.known:
            self.known.update(future.result())
        return self.known.get(digest, default)

    def cancel(self) -> None:
        """The run stopped before its end: what was not started is not checked."""
        for future in set(self.owner.values()):
            future.cancel()


def _revoked(env: Envelope, trust: Trust) -> VerificationError | None:
    """An envelope signed with a key revoked at or before its sequence: refused at once, gap
    or not (nothing that comes before it can make it valid)."""
    try:
        trust.key_for(env.origin, env.key, env.seq)
    except VerificationError as e:
        return e if e.reason == "revoked_key" else None
    return None


def _foreign_key(env: Envelope, trust: Trust) -> VerificationError | None:
    """An envelope signed with a key certified for another origin (never for its own): one
    node posing as another, refused at once rather than held for a certification."""
    others = trust.origins_of_key(env.key)
    if others and env.origin not in others:
        return VerificationError(
            "foreign_key",
            _(
                "{origin}:{seq} is signed with key {key} of {owners}",
                origin=env.origin,
                seq=env.seq,
                key=env.key,
                owners=", ".join(sorted(others)),
            ),
        )
    return None


def _documents_in_log(log: Any) -> list[bytes]:
    return [base64.b64decode(e["document"]) for e in log.read_topic("keys.document_recorded/1")]
