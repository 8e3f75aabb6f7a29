"""NATS identities in the key hierarchy (federation.nkey, federation.keys): a certification
carries the node's NATS user key under its signature, old certifications without one still
verify, a revocation keeps what the grant was; and the downward subjects a node's area
filters."""

from __future__ import annotations

import pytest

from domain.codes import in_subtree
from federation.canonical import decode, encode
from federation.errors import FederationError
from federation.keys import ROOT, build_trust, certify, revoke
from federation.memory import matches
from federation.nkey import check_public, generate_seed, public_of
from federation.suite import SigningKey
from federation.transport import DOWN_ALL, Credentials, down_area, down_subject


def test_a_seed_gives_a_user_key_and_a_bad_key_is_named():
    seed = generate_seed()
    assert seed.startswith(b"SU")
    public = public_of(seed)
    assert public.startswith("U") and check_public(public) == public
    flipped = public[:-1] + ("A" if public[-1] != "A" else "B")
    for bad in (flipped, public[:-1], "N" + public[1:], 42, public.lower()):
        with pytest.raises(FederationError):
            check_public(bad)
    with pytest.raises(FederationError):
        public_of(b"SAnotaseed")


def test_a_certification_carries_the_nats_key_signed_and_old_ones_still_verify():
    root, province = SigningKey.generate(), SigningKey.generate()
    nats = public_of(generate_seed())
    with_nats = certify(
        root,
        ROOT,
        origin="130000",
        region="130000",
        tier="province",
        public=province.public,
        nats=nats,
    )
    assert decode(decode(with_nats)["body"])["subject"]["nats"] == nats
    trust, problems = build_trust(root.public, [with_nats])
    assert problems == []
    (grant,) = trust.grants
    assert (grant.nats, grant.tier, grant.revoked) == (nats, "province", False)
    old = certify(
        root, ROOT, origin="130000", region="130000", tier="province", public=province.public
    )
    trust, problems = build_trust(root.public, [old])
    assert problems == [] and trust.grants[0].nats is None  # verifies; no NATS identity
    with pytest.raises(FederationError):
        certify(
            root,
            ROOT,
            origin="130000",
            region="130000",
            tier="province",
            public=province.public,
            nats="Unot-a-key",
        )
    # the NATS key is signed with the rest: changed afterwards, the document does not verify
    outer = decode(with_nats)
    body = decode(outer["body"])
    body["subject"]["nats"] = public_of(generate_seed())
    forged = encode({"body": encode(body), "sig": outer["sig"]})
    trust, problems = build_trust(root.public, [forged])
    assert trust.grants == [] and [p.reason for p in problems] == ["bad_document_signature"]


def test_a_revoked_grant_keeps_its_nats_key_and_tier():
    root, province = SigningKey.generate(), SigningKey.generate()
    nats = public_of(generate_seed())
    docs = [
        certify(
            root,
            ROOT,
            origin="130000",
            region="130000",
            tier="province",
            public=province.public,
            nats=nats,
        ),
        revoke(root, ROOT, origin="130000", key=province.key_id, last_seq=5),
    ]
    trust, problems = build_trust(root.public, docs)
    assert problems == []
    (grant,) = trust.grants
    assert (grant.nats, grant.tier, grant.until_seq, grant.revoked) == (nats, "province", 5, True)


@pytest.mark.parametrize(
    ("region", "inside", "outside"),
    [
        ("440305", ["440305"], ["440304", "440300", "440000", "450305"]),
        ("440300", ["440300", "440305", "440399"], ["440400", "440000", "450305"]),
        ("440000", ["440000", "440305", "449001"], ["450000", "450305"]),
    ],
)
def test_a_nodes_area_is_one_filter_of_the_downward_subjects(region, inside, outside):
    area = down_area(region)
    for division in inside + outside:
        subject = down_subject("130000", division)
        assert subject.rsplit(".", 1)[-1] == division  # the division stays the last token
        assert matches(area, subject) == in_subtree(region, division) == (division in inside)
        assert not matches(DOWN_ALL, subject)
    assert down_subject("440000", "all") == "anjian.down.env.440000.all"
    assert matches(DOWN_ALL, down_subject("440000", "all")) and not matches(
        area, "anjian.down.env.440000.all"
    )
    assert down_subject("440000", "12") == "anjian.down.env.440000.all"  # no six-digit division


def test_credentials_never_show_the_seed():
    seed = generate_seed()
    assert seed.decode() not in repr(Credentials(seed=seed, inbox="_INBOX.x"))


def test_the_tls_close_warning_of_asyncio_is_left_out(caplog):
    """Each time a TLS server goes away asyncio warns of something no operator can act on."""
    import logging

    import federation.jetstream  # noqa: F401 (installs the filter)

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        logging.getLogger("asyncio").warning(
            "returning true from eof_received() has no effect when using ssl"
        )
        logging.getLogger("asyncio").warning("another warning")
    assert [r.getMessage() for r in caplog.records] == ["another warning"]
