"""The verification library that receivers, the backup centre and auditors share: strict
decoding, signatures, chain continuity, gapless sequence, checkpoint roots and signatures,
and whether the key was valid at that position. Every failure has a named reason."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from domain.i18n import _
from federation.checkpoint import parse_checkpoint, verify_checkpoint
from federation.envelope import GENESIS, Envelope, check_signature, parse
from federation.errors import VerificationError
from federation.merkle import CompactRange, leaf_hash


@dataclass(frozen=True)
class Grant:
    """Key ``key_id`` may sign for ``origin`` from ``from_seq`` up to ``until_seq`` (inclusive;
    None: not revoked); certified for a node of ``tier`` whose NATS identity is ``nats`` (an
    nkey user public key; None in certifications made before NATS identities)."""

    origin: str
    public: bytes
    key_id: str
    from_seq: int = 1
    until_seq: int | None = None
    suite: str = "ed25519"
    nats: str | None = None
    tier: str | None = None

    @property
    def revoked(self) -> bool:
        return self.until_seq is not None


@dataclass
class Trust:
    grants: list[Grant] = field(default_factory=list)
    regions: dict[str, str] = field(default_factory=dict)  # certified area of each origin
    # indexes of the grants (by origin and key, by key, by origin), built again only after the
    # grants changed: lookups cost the same with 30 origins or 3,000
    _pairs: dict[tuple[str, str], list[Grant]] = field(
        default_factory=dict, repr=False, compare=False
    )
    _by_key: dict[str, set[str]] = field(default_factory=dict, repr=False, compare=False)
    _by_origin: dict[str, list[Grant]] = field(default_factory=dict, repr=False, compare=False)
    _members: set[Grant] = field(default_factory=set, repr=False, compare=False)
    _indexed: tuple[int, int] = field(default=(-1, 0), repr=False, compare=False)
    _changes: int = field(default=0, repr=False, compare=False)

    def add(self, grant: Grant) -> bool:
        """Add a grant (once); False if it was there."""
        self._index()
        if grant in self._members:
            return False
        self.grants.append(grant)
        self._members.add(grant)
        self._pairs.setdefault((grant.origin, grant.key_id), []).append(grant)
        self._by_key.setdefault(grant.key_id, set()).add(grant.origin)
        self._by_origin.setdefault(grant.origin, []).append(grant)
        self._indexed = (len(self.grants), self._changes)
        return True

    def end(self, origin: str, key_id: str, last_seq: int) -> bool:
        """The grants of ``key_id`` for ``origin`` end at ``last_seq`` (a revocation); False if
        there are none."""
        found = False
        for i, g in enumerate(self.grants):
            if g.origin == origin and g.key_id == key_id:
                self.grants[i] = replace(g, until_seq=min(last_seq, g.until_seq or last_seq))
                found = True
        self._changes += 1
        return found

    def _index(self) -> None:
        if self._indexed == (len(self.grants), self._changes):
            return
        self._pairs, self._by_key, self._by_origin = {}, {}, {}
        for g in self.grants:
            self._pairs.setdefault((g.origin, g.key_id), []).append(g)
            self._by_key.setdefault(g.key_id, set()).add(g.origin)
            self._by_origin.setdefault(g.origin, []).append(g)
        self._members = set(self.grants)
        self._indexed = (len(self.grants), self._changes)

    def key_for(self, origin: str, key_id: str, seq: int) -> bytes:
        """The public key if ``key_id`` was valid for ``origin`` at ``seq``; else why not."""
        self._index()
        mine = self._pairs.get((origin, key_id), [])
        if not mine:
            raise VerificationError(
                "unknown_key",
                _("key {key} is not certified for origin {origin}", key=key_id, origin=origin),
            )
        for g in mine:
            if seq >= g.from_seq and (g.until_seq is None or seq <= g.until_seq):
                return g.public
        bounds = ", ".join(f"{g.from_seq}..{g.until_seq or ''}" for g in mine)
        raise VerificationError(
            "revoked_key",
            _(
                "key {key} of origin {origin} is not valid at sequence {seq} ({bounds})",
                key=key_id,
                origin=origin,
                seq=seq,
                bounds=bounds,
            ),
        )

    def origins_of_key(self, key_id: str) -> set[str]:
        """The origins a key is certified for (a key belongs to one node)."""
        self._index()
        return set(self._by_key.get(key_id, ()))

    def keys_of(self, origin: str) -> list[Grant]:
        self._index()
        return list(self._by_origin.get(origin, ()))

    def valid_at(self, origin: str, seq: int) -> list[Grant]:
        return [
            g
            for g in self.keys_of(origin)
            if g.from_seq <= seq and (g.until_seq is None or seq <= g.until_seq)
        ]


@dataclass(frozen=True)
class Failure:
    origin: str
    seq: int
    reason: str
    message: str


@dataclass
class OriginReport:
    origin: str
    envelopes: int = 0
    checkpoints: int = 0
    root: bytes = b""
    failure: Failure | None = None
    hashes: list[bytes] = field(default_factory=list)  # leaf hashes, for proofs

    @property
    def ok(self) -> bool:
        return self.failure is None


def verify_origin(
    origin: str,
    raws: Iterable[bytes],
    checkpoints: Iterable[str],
    trust: Trust,
    *,
    signatures: bool = True,
    on_envelope: Callable[[Envelope], None] | None = None,
) -> OriginReport:
    """Check one origin's envelopes in order, and its checkpoints against them. Stops at the
    first failure, which the report names with the sequence where it happened."""
    report = OriginReport(origin)
    notes = {}
    for text in checkpoints:
        try:
            cp, _lines = parse_checkpoint(text)
        except VerificationError as e:
            report.failure = Failure(origin, 0, e.reason, str(e))
            return report
        notes[cp.size] = text
    tree = CompactRange()
    prev = GENESIS
    seq = 0
    last_note = max(notes, default=0)
    try:
        for raw in raws:
            seq += 1
            try:
                # --fast: only what no checkpoint covers
                env = check_envelope(raw, origin, seq, prev, trust, signatures or seq > last_note)
            except VerificationError as e:
                raise _at(seq, e) from None
            prev = env.hash
            leaf = leaf_hash(raw)
            tree.append(leaf)
            report.hashes.append(leaf)
            report.envelopes = seq
            if on_envelope is not None:
                on_envelope(env)
            if seq in notes:
                try:
                    check_note(origin, notes.pop(seq), tree.root(), trust, seq)
                except VerificationError as e:
                    raise _at(seq, e) from None
                report.checkpoints += 1
        if 0 in notes:
            notes.pop(0)
        if notes:
            size = min(notes)
            raise _at(
                report.envelopes + 1,
                VerificationError(
                    "truncated",
                    _(
                        "a checkpoint covers {size} envelopes; only {count} are here",
                        size=size,
                        count=report.envelopes,
                    ),
                ),
            )
    except _Positioned as p:
        report.failure = Failure(origin, p.seq, p.error.reason, str(p.error))
    report.root = tree.root()
    return report


def check_envelope(
    raw: bytes, origin: str, seq: int, prev: bytes | None, trust: Trust, signature: bool
) -> Envelope:
    """The envelope at position ``seq`` of ``origin``: well-formed, in place, chained to
    ``prev`` (None: not known here), signed by a key valid there (the signature itself checked
    only if ``signature``)."""
    env = parse(raw)
    if env.origin != origin:
        raise VerificationError(
            "wrong_origin", _("an envelope of origin {origin}", origin=env.origin)
        )
    if env.seq != seq:
        reason = "sequence_gap" if env.seq > seq else "out_of_order"
        raise VerificationError(
            reason, _("expected sequence {seq}, found {found}", seq=seq, found=env.seq)
        )
    if prev is not None and env.prev != prev:
        raise VerificationError("broken_chain", _("prev is not the hash of the envelope before"))
    public = trust.key_for(origin, env.key, seq)
    if signature:
        check_signature(env, public)
    return env


def check_note(origin: str, text: str, root: bytes, trust: Trust, size: int) -> None:
    """The checkpoint at ``size`` is signed by a key of the origin valid at that position and
    commits to ``root``, the root of the envelopes verified up to there."""
    errors = []
    for grant in trust.valid_at(origin, size):
        try:
            cp = verify_checkpoint(text, grant.public, grant.suite)
        except VerificationError as e:
            errors.append(e)
            continue
        if cp.root != root:
            raise VerificationError(
                "checkpoint_mismatch",
                _("the signed root at size {size} differs from the envelopes", size=size),
            )
        return
    raise (
        errors[0]
        if errors
        else VerificationError("unknown_key", _("no key of {origin}", origin=origin))
    )


class _Positioned(Exception):
    def __init__(self, seq: int, error: VerificationError) -> None:
        self.seq, self.error = seq, error


def _at(seq: int, error: VerificationError) -> _Positioned:
    return _Positioned(seq, error)
