"""The key hierarchy (docs/architecture.md §5): certifications and revocations, signed documents in
canonical msgpack, and the trust they add up to under one national root key.

The root certifies the national, backup and provincial nodes' keys; every other node's key is
certified by a node whose area contains it (a province for its cities and counties, a city for
its counties). A revocation names the last sequence the key was valid for, so validity is
judged by log position, never by clocks."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from domain.codes import NATIONAL_REGION, in_subtree
from domain.i18n import Text, _
from federation.canonical import decode, encode
from federation.errors import FederationError, VerificationError
from federation.nkey import check_public
from federation.suite import SUITES, SigningKey, key_id
from federation.verify import Grant, Trust

ROOT = "root"
ROOT_TIERS = ("national", "backup", "province")


@dataclass(frozen=True)
class Document:
    kind: str  # "certification" | "revocation"
    body: dict[str, Any]
    signed: bytes  # the body bytes the signature is over, verbatim
    sig: bytes
    raw: bytes

    @property
    def certifier(self) -> str:
        return str(self.body["certifier"]["origin"])


def certify(
    certifier: SigningKey,
    certifier_origin: str,
    *,
    origin: str,
    region: str,
    tier: str,
    public: bytes,
    from_seq: int = 1,
    at: int = 0,
    at_seq: int = 0,
    nats: str | None = None,
) -> bytes:
    """A certification of ``public`` for ``origin``; with ``nats`` (the node's NATS user public
    key, "U...") the node's NATS identity is certified with it, under the same signature."""
    subject: dict[str, Any] = {
        "origin": origin,
        "region": region,
        "tier": tier,
        "key": public,
        "suite": "ed25519",
    }
    if nats is not None:
        subject["nats"] = check_public(nats)
    body = {
        "doc": "certification",
        "v": 1,
        "subject": subject,
        "from_seq": from_seq,
        "at": at,
        "certifier": {"origin": certifier_origin, "key": certifier.key_id, "at_seq": at_seq},
    }
    return _sign(certifier, body)


def revoke(
    certifier: SigningKey,
    certifier_origin: str,
    *,
    origin: str,
    key: str,
    last_seq: int,
    at: int = 0,
    at_seq: int = 0,
) -> bytes:
    body = {
        "doc": "revocation",
        "v": 1,
        "subject": {"origin": origin, "key": key},
        "last_seq": last_seq,
        "at": at,
        "certifier": {"origin": certifier_origin, "key": certifier.key_id, "at_seq": at_seq},
    }
    return _sign(certifier, body)


def _sign(certifier: SigningKey, body: dict[str, Any]) -> bytes:
    """``{body, sig}`` as in envelopes: the signature over the body bytes, carried verbatim."""
    signed = encode(body)
    return encode({"body": signed, "sig": certifier.sign(signed)})


def parse_document(raw: bytes) -> Document:
    outer = decode(raw)
    if (
        not isinstance(outer, dict)
        or set(outer) != {"body", "sig"}
        or not all(isinstance(outer[k], bytes) for k in ("body", "sig"))
    ):
        raise VerificationError("malformed_document", _("a key document is {{body, sig}}"))
    body = decode(outer["body"])
    if not isinstance(body, dict) or body.get("doc") not in ("certification", "revocation"):
        raise VerificationError("malformed_document", _("not a certification or revocation"))
    try:
        body["certifier"]["origin"], body["certifier"]["key"], body["subject"]["origin"]
    except (KeyError, TypeError):
        raise VerificationError(
            "malformed_document", _("fields missing or of the wrong type")
        ) from None
    return Document(body["doc"], body, outer["body"], outer["sig"], raw)


def verify_document(doc: Document, public: bytes) -> bool:
    return SUITES["ed25519"].verify(public, doc.signed, doc.sig)


def chaining(root_public: bytes, documents: list[bytes]) -> list[bytes]:
    """The documents signed by the root or by a key that chains to it (what a node may keep
    in its trust directory); the others left out."""
    trust, _problems = build_trust(root_public, documents)
    kept = []
    for raw in dict.fromkeys(documents):
        try:
            doc = parse_document(raw)
        except VerificationError:
            continue
        signer = doc.body["certifier"]
        if signer["origin"] == ROOT:
            keys = [root_public]
        else:
            keys = [
                g.public for g in trust.keys_of(str(signer["origin"])) if g.key_id == signer["key"]
            ]
        if any(verify_document(doc, k) for k in keys):
            kept.append(raw)
    return kept


def build_trust(
    root_public: bytes, documents: list[bytes]
) -> tuple[Trust, list[VerificationError]]:
    """The grants that chain to the root key, and why each other document was refused.

    A document counts only if its signer's key was valid at the log position the document
    names (``certifier.at_seq``), so a revoked certifier cannot certify afterwards. As a
    revocation may withdraw a certifier's authority, the grants are recomputed until the
    revocations in force no longer change."""
    builder = TrustBuilder(root_public)
    builder.add(documents)
    return builder.trust, builder.problems


class TrustBuilder:
    """The trust of a growing set of key documents, kept up to date as documents arrive, at a
    cost that grows with what arrives, not with what is known: certifications are applied at
    once when their signer is known (and those that waited for it after them); only a
    revocation, which may withdraw a certifier's authority over what it certified since, has the
    trust computed again from every document (each signature is checked once, ever)."""

    def __init__(self, root_public: bytes) -> None:
        self.root = root_public
        self.docs: dict[bytes, Document] = {}  # every readable document, in arrival order
        self.trust = Trust()
        self.version = 0  # changes whenever the trust may have
        self._unreadable: dict[bytes, VerificationError] = {}
        self._found: list[VerificationError] = []  # refusals of documents that were judged
        self._regions: dict[str, str] = {ROOT: NATIONAL_REGION}
        self._waiting: list[Document] = []  # documents whose signer is not known (yet)
        self._verified: dict[tuple[bytes, bytes], bool] = {}  # (document, signer) -> verifies

    def __contains__(self, raw: bytes) -> bool:
        return raw in self.docs or raw in self._unreadable

    @property
    def problems(self) -> list[VerificationError]:
        """Why each document not in the trust was refused (or waits for its signer)."""
        return (
            list(self._unreadable.values())
            + self._found
            + [_unknown_certifier(d) for d in self._waiting]
        )

    def add(self, documents: Iterable[bytes]) -> bool:
        """Take documents (known ones are skipped); True if the trust may have changed."""
        new: list[Document] = []
        for raw in documents:
            if raw in self:
                continue
            try:
                doc = parse_document(raw)
            except VerificationError as e:
                self._unreadable[raw] = e
                continue
            self.docs[raw] = doc
            new.append(doc)
        if not new:
            return False
        if any(d.kind == "revocation" for d in new + self._waiting):
            self._rebuild()  # a revocation applied, or one that may now be
        else:
            self._place(new)
        self.version += 1
        return True

    def _rebuild(self) -> None:
        ended: dict[tuple[str, str], int] = {}  # (origin, key id) -> last valid sequence
        docs = list(self.docs.values())
        for _round in range(len(docs) + 1):
            trust, found, waiting = _settle(self.root, docs, ended, self._verify)
            now = {(g.origin, g.key_id): g.until_seq for g in trust.grants if g.until_seq}
            if now == ended:
                break
            ended = {k: v for k, v in now.items() if v is not None}
        self.trust, self._found, self._waiting = trust, found, waiting
        self._regions = {ROOT: NATIONAL_REGION, **trust.regions}

    def _place(self, new: list[Document]) -> None:
        """Certifications only (none waits to revoke): apply those whose signer is known, to a
        fixpoint, judging signers by the revocations in force; the others wait for theirs."""
        ended = {(g.origin, g.key_id): g.until_seq for g in self.trust.grants if g.until_seq}
        waiting = self._waiting + new
        while waiting:
            still = []
            for doc in waiting:
                signer = _signer(doc, self.root, self.trust, ended)
                if signer is None:
                    still.append(doc)
                elif not self._verify(doc, signer):
                    self._found.append(_bad_signature(doc))
                else:
                    _apply_certification(doc, self.trust, self._regions, self._found)
            if len(still) == len(waiting):
                break
            waiting = still
        arrival = {id(d): i for i, d in enumerate(self.docs.values())}
        self._waiting = sorted(waiting, key=lambda d: arrival[id(d)])

    def _verify(self, doc: Document, signer: bytes) -> bool:
        key = (doc.raw, signer)
        result = self._verified.get(key)
        if result is None:
            result = self._verified[key] = verify_document(doc, signer)
        return result


def _settle(
    root_public: bytes,
    docs: list[Document],
    ended: dict[tuple[str, str], int],
    verify: Callable[[Document, bytes], bool] = verify_document,
) -> tuple[Trust, list[VerificationError], list[Document]]:
    """One pass: certifications to a fixpoint (they may arrive in any order), judging each
    signer by ``ended``, then revocations. Returns the trust, the refusals, and the documents
    whose signer is not known, in the order given."""
    trust = Trust()
    problems: list[VerificationError] = []
    regions: dict[str, str] = {ROOT: NATIONAL_REGION}
    unplaced: set[int] = set()
    for kind in ("certification", "revocation"):
        waiting = [d for d in docs if d.kind == kind]
        while waiting:
            still = []
            for doc in waiting:
                signer = _signer(doc, root_public, trust, ended)
                if signer is None:
                    still.append(doc)
                elif not verify(doc, signer):
                    problems.append(_bad_signature(doc))
                elif kind == "certification":
                    _apply_certification(doc, trust, regions, problems)
                else:
                    _apply_revocation(doc, trust, regions, problems)
            if len(still) == len(waiting):
                break
            waiting = still
        unplaced |= {id(d) for d in waiting}
    return trust, problems, [d for d in docs if id(d) in unplaced]


def _bad_signature(doc: Document) -> VerificationError:
    return VerificationError(
        "bad_document_signature",
        _("a certification by {certifier} does not verify", certifier=doc.certifier)
        if doc.kind == "certification"
        else _("a revocation by {certifier} does not verify", certifier=doc.certifier),
    )


def _unknown_certifier(doc: Document) -> VerificationError:
    return VerificationError(
        "unknown_certifier",
        _(
            "a certification by {certifier}, whose key was not certified at that position",
            certifier=doc.certifier,
        )
        if doc.kind == "certification"
        else _(
            "a revocation by {certifier}, whose key was not certified at that position",
            certifier=doc.certifier,
        ),
    )


def _apply_certification(
    doc: Document, trust: Trust, regions: dict[str, str], problems: list[VerificationError]
) -> None:
    problem = _check_subtree(doc, regions)
    if problem:
        problems.append(problem)
        return
    s = doc.body["subject"]
    regions[s["origin"]] = s["region"]
    trust.regions[s["origin"]] = s["region"]
    nats = s.get("nats")
    if nats is not None:
        try:
            check_public(nats)
        except FederationError as e:
            problems.append(
                VerificationError(
                    "bad_nats_key", _("{origin}: {error}", origin=s["origin"], error=e)
                )
            )
            nats = None
    grant = Grant(
        s["origin"],
        s["key"],
        key_id(s["key"]),
        int(doc.body["from_seq"]),
        nats=nats,
        tier=str(s["tier"]),
    )
    trust.add(grant)


def _signer(
    doc: Document, root_public: bytes, trust: Trust, ended: dict[tuple[str, str], int]
) -> bytes | None:
    """The signer's public key if it was valid where the document says it was signed."""
    c = doc.body["certifier"]
    if c["origin"] == ROOT:
        return root_public if c["key"] == key_id(root_public) else None
    at_seq = int(c.get("at_seq", 0))
    for g in trust.keys_of(c["origin"]):
        last = ended.get((g.origin, g.key_id))
        if (
            g.key_id == c["key"]
            and g.from_seq <= max(at_seq, 1)
            and (last is None or at_seq <= last)
        ):
            return g.public
    return None


def _check_subtree(doc: Document, regions: dict[str, str]) -> VerificationError | None:
    s, certifier = doc.body["subject"], doc.certifier
    origin, region = s["origin"], s["region"]
    # An origin is named by its division code (the national centre 000000): a certifier can
    # only name origins of its own area, never take over another area's origin id.
    bound = region == NATIONAL_REGION if s["tier"] == "backup" else origin == region
    if not bound:
        return VerificationError(
            "origin_mismatch",
            _(
                "origin {origin} is not the division code of its area {region}",
                origin=origin,
                region=region,
            ),
        )
    if regions.get(origin, region) != region:
        return VerificationError(
            "conflicting_certification",
            _(
                "{origin} is already certified for area {region}",
                origin=origin,
                region=regions[origin],
            ),
        )
    if certifier == ROOT:
        if s["tier"] not in ROOT_TIERS:
            return VerificationError(
                "out_of_subtree",
                _root_refuses(str(s["tier"]), origin),
            )
        return None
    area = regions.get(certifier)
    if area is None or region == area or not in_subtree(area, region):
        return VerificationError(
            "out_of_subtree",
            _(
                "{certifier} (area {area}) may not certify {origin} (area {region})",
                certifier=certifier,
                area=area,
                origin=origin,
                region=region,
            ),
        )
    return None


def _root_refuses(tier: str, origin: str) -> Text:
    if tier == "city":
        return _(
            "the root certifies national, backup and provincial keys, not the city {origin}",
            origin=origin,
        )
    if tier == "county":
        return _(
            "the root certifies national, backup and provincial keys, not the county {origin}",
            origin=origin,
        )
    return _(
        "the root certifies national, backup and provincial keys, not the {tier} {origin}",
        tier=tier,
        origin=origin,
    )


def _apply_revocation(
    doc: Document, trust: Trust, regions: dict[str, str], problems: list[VerificationError]
) -> None:
    s = doc.body["subject"]
    subject_region = regions.get(s["origin"])
    revoker_region = regions.get(doc.certifier)
    if doc.certifier != ROOT and (
        subject_region is None
        or revoker_region is None
        or revoker_region == subject_region
        or not in_subtree(revoker_region, subject_region)
    ):
        problems.append(
            VerificationError(
                "out_of_subtree",
                _(
                    "{certifier} may not revoke keys of {origin}",
                    certifier=doc.certifier,
                    origin=s["origin"],
                ),
            )
        )
        return
    if not trust.end(s["origin"], s["key"], int(doc.body["last_seq"])):
        problems.append(
            VerificationError(
                "unknown_key",
                _(
                    "a revocation of {origin} key {key}, which is not certified",
                    origin=s["origin"],
                    key=s["key"],
                ),
            )
        )
