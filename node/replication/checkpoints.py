"""Checkpoint intake of the verified import: a checkpoint of another origin is kept once its
signature (by a key valid at its size) and its root (against the envelopes applied, when they
reach its size) hold; one that contradicts the applied envelopes is quarantined, never kept."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from domain.i18n import _
from federation.checkpoint import parse_checkpoint, verify_checkpoint
from federation.errors import VerificationError
from federation.merkle import CompactRange, leaf_hash
from federation.merkle import root as merkle_root
from federation.verify import Trust
from node.store import EventLog

WAITING = 200  # checkpoints of one origin kept waiting for their envelopes
Quarantine = Callable[[str, int, VerificationError, bytes, dict[str, Any]], None]


class Checkpoints:
    """The checkpoints of other origins, as the importer receives them."""

    def __init__(
        self,
        log: EventLog,
        quarantine: Quarantine,
        applied: Callable[[str], tuple[int, bytes]],
        *,
        ahead: int,
        dropped: Callable[[str, int, dict[str, Any]], None],
    ) -> None:
        """``ahead``: how far beyond an origin's applied position a checkpoint may wait for its
        envelopes; ``dropped(origin, n, summary)`` counts checkpoints not kept."""
        self.log, self.quarantine, self.applied = log, quarantine, applied
        self.ahead, self.dropped = ahead, dropped

    def tree(self, origin: str) -> CompactRange:
        rows = self.log.query("SELECT size, peaks FROM merkle WHERE origin = ?", (origin,))
        if not rows:
            return CompactRange()
        peaks = bytes(rows[0]["peaks"])
        return CompactRange(
            int(rows[0]["size"]), [peaks[i : i + 32] for i in range(0, len(peaks), 32)]
        )

    def receive(
        self,
        text: bytes,
        trust: Trust,
        summary: dict[str, Any],
        later: list[bytes] | None = None,
    ) -> str:
        """Keep a checkpoint of another origin once its signature (by a key valid at its size)
        and its root (against the envelopes applied, when they reach its size) hold; one that
        contradicts the applied envelopes is quarantined, never kept. With ``later``, one whose
        signature no key known yet verifies goes there instead, to be judged again once the
        take's envelopes (which may certify its signer) are applied. Returns the checkpoint's
        origin ("?" when it cannot be read)."""
        note = text.decode(errors="replace")
        where: tuple[str, int] = ("?", 0)
        try:
            cp, _sig = parse_checkpoint(note)
            where = (cp.origin, cp.size)
            if not signed_by_valid_key(note, cp.origin, cp.size, trust):
                if later is not None:
                    later.append(text)
                    return cp.origin
                raise VerificationError(
                    "bad_checkpoint_signature",
                    _(
                        "no key of {origin} valid at {size} signed it",
                        origin=cp.origin,
                        size=cp.size,
                    ),
                )
            applied = self.applied(cp.origin)[0]
            if cp.size > applied:
                if cp.size > applied + self.ahead or self._waiting(cp.origin) >= WAITING:
                    # beyond the bound: not kept, counted (its origin signs others as it goes)
                    self.dropped(cp.origin, 1, summary)
                    return cp.origin
                self.log.write(
                    "INSERT INTO import_checkpoints (origin, size, note) VALUES (?, ?, ?)"
                    " ON CONFLICT (origin, size, note) DO NOTHING",
                    (cp.origin, cp.size, note),
                )
                return cp.origin
            if cp.size and self.root(cp.origin, cp.size, applied) != cp.root:
                raise VerificationError(
                    "checkpoint_mismatch",
                    _(
                        "{origin} signed a root at size {size} that its envelopes do not give",
                        origin=cp.origin,
                        size=cp.size,
                    ),
                )
        except VerificationError as e:
            self.quarantine(*where, e, text, summary)
            return where[0]
        self.log.write(
            "INSERT INTO checkpoints (origin, size, root, note) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (origin, size) DO NOTHING",
            (cp.origin, cp.size, cp.root, note),
        )
        return cp.origin

    def _waiting(self, origin: str) -> int:
        rows = self.log.query(
            "SELECT COUNT(*) AS n FROM import_checkpoints WHERE origin = ?", (origin,)
        )
        return int(rows[0]["n"])

    def root(self, origin: str, size: int, applied: int) -> bytes:
        if size == applied:
            return self.tree(origin).root()
        rows = self.log.query(
            "SELECT raw FROM envelopes WHERE origin = ? AND seq <= ? ORDER BY seq", (origin, size)
        )
        return merkle_root([leaf_hash(bytes(r["raw"])) for r in rows])

    def recheck(self, trust: Trust, summary: dict[str, Any], origins: Iterable[str]) -> None:
        """Checkpoints of ``origins`` that waited for their envelopes, now that more are
        applied."""
        for row in self.log.query_in(
            "SELECT origin, size, note FROM import_checkpoints WHERE origin IN ({values})", origins
        ):
            if int(row["size"]) <= self.applied(str(row["origin"]))[0]:
                self.log.write(
                    "DELETE FROM import_checkpoints WHERE origin = ? AND size = ? AND note = ?",
                    (row["origin"], row["size"], row["note"]),
                )
                self.receive(str(row["note"]).encode(), trust, summary)


def signed_by_valid_key(note: str, origin: str, size: int, trust: Trust) -> bool:
    for grant in trust.valid_at(origin, size):
        try:
            verify_checkpoint(note, grant.public, grant.suite)
            return True
        except VerificationError:
            continue
    return False
