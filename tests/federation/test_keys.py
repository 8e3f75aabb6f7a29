"""The key hierarchy: what chains to the root key is trusted, within each certifier's area,
and a revocation ends a key at a log position."""

from federation.envelope import GENESIS, parse, seal
from federation.keys import ROOT, build_trust, certify, revoke
from federation.suite import SigningKey
from federation.verify import verify_origin

ROOT_KEY = SigningKey.generate()
HEBEI, SHANXI, COUNTY = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()


def chain(*extra: bytes) -> list[bytes]:
    return [
        certify(
            ROOT_KEY, ROOT, origin="130000", region="130000", tier="province", public=HEBEI.public
        ),
        certify(
            ROOT_KEY, ROOT, origin="140000", region="140000", tier="province", public=SHANXI.public
        ),
        *extra,
    ]


def county_log(key: SigningKey, n: int, origin: str = "130102") -> list[bytes]:
    raws, prev = [], GENESIS
    for seq in range(1, n + 1):
        raw = seal(
            key,
            origin=origin,
            seq=seq,
            prev=prev,
            at=1_795_939_200_000 + seq,
            type="x.y/1",
            aggregate="a",
            version=seq,
            actor={"user": "u", "node": origin},
            payload={"n": seq},
        )
        raws.append(raw)
        prev = parse(raw).hash
    return raws


def test_a_county_certified_by_its_province_verifies():
    docs = chain(
        certify(
            HEBEI, "130000", origin="130102", region="130102", tier="county", public=COUNTY.public
        )
    )
    trust, problems = build_trust(ROOT_KEY.public, list(reversed(docs)))  # any order
    assert problems == []
    report = verify_origin("130102", county_log(COUNTY, 5), [], trust)
    assert report.ok and report.envelopes == 5


def test_a_county_certified_by_a_different_province_is_rejected():
    docs = chain(
        certify(
            SHANXI, "140000", origin="130102", region="130102", tier="county", public=COUNTY.public
        )
    )
    trust, problems = build_trust(ROOT_KEY.public, docs)
    assert [p.reason for p in problems] == ["out_of_subtree"]
    report = verify_origin("130102", county_log(COUNTY, 3), [], trust)
    assert (report.failure.reason, report.failure.seq) == ("unknown_key", 1)


def test_a_revoked_key_fails_after_its_last_valid_sequence_only():
    docs = chain(
        certify(
            HEBEI, "130000", origin="130102", region="130102", tier="county", public=COUNTY.public
        ),
        revoke(HEBEI, "130000", origin="130102", key=COUNTY.key_id, last_seq=3),
    )
    trust, problems = build_trust(ROOT_KEY.public, docs)
    assert problems == []
    assert verify_origin("130102", county_log(COUNTY, 3), [], trust).ok
    report = verify_origin("130102", county_log(COUNTY, 5), [], trust)
    assert (report.failure.reason, report.failure.seq, report.envelopes) == ("revoked_key", 4, 3)


def test_a_rotated_key_takes_over_at_its_first_sequence():
    new = SigningKey.generate()
    docs = chain(
        certify(
            HEBEI, "130000", origin="130102", region="130102", tier="county", public=COUNTY.public
        ),
        revoke(HEBEI, "130000", origin="130102", key=COUNTY.key_id, last_seq=2),
        certify(
            HEBEI,
            "130000",
            origin="130102",
            region="130102",
            tier="county",
            public=new.public,
            from_seq=3,
        ),
    )
    trust, _ = build_trust(ROOT_KEY.public, docs)
    old_part = county_log(COUNTY, 2)
    prev = parse(old_part[-1]).hash  # the new key continues the same chain from sequence 3
    rechained = []
    for seq in (3, 4):
        raw = seal(
            new,
            origin="130102",
            seq=seq,
            prev=prev,
            at=1,
            type="x.y/1",
            aggregate="a",
            version=seq,
            actor={"user": "u", "node": "130102"},
            payload={"n": seq},
        )
        rechained.append(raw)
        prev = parse(raw).hash
    assert verify_origin("130102", old_part + rechained, [], trust).ok
    report = verify_origin("130102", county_log(COUNTY, 3), [], trust)  # old key past its end
    assert (report.failure.reason, report.failure.seq) == ("revoked_key", 3)


def test_what_does_not_chain_to_the_root_is_refused():
    stranger = SigningKey.generate()
    docs = [
        certify(
            stranger, ROOT, origin="130000", region="130000", tier="province", public=HEBEI.public
        ),
        certify(
            ROOT_KEY, ROOT, origin="130102", region="130102", tier="county", public=COUNTY.public
        ),
        certify(
            HEBEI, "130000", origin="130102", region="130102", tier="county", public=COUNTY.public
        ),
        b"\x81\xa3doc\xa3bad",
    ]
    trust, problems = build_trust(ROOT_KEY.public, docs)
    assert trust.grants == []
    assert sorted(p.reason for p in problems) == [
        "malformed_document",
        "out_of_subtree",
        "unknown_certifier",
        "unknown_certifier",
    ]


def test_a_certifier_cannot_take_over_another_areas_origin():
    rogue = SigningKey.generate()
    for region in ("130102", "110101"):  # Hebei naming a Beijing county, with either area
        docs = chain(
            certify(
                HEBEI, "130000", origin="110101", region=region, tier="county", public=rogue.public
            )
        )
        trust, problems = build_trust(ROOT_KEY.public, docs)
        assert trust.keys_of("110101") == []
        assert problems[0].reason in ("origin_mismatch", "out_of_subtree")
    beijing = SigningKey.generate()
    docs = [
        certify(
            ROOT_KEY, ROOT, origin="110000", region="110000", tier="province", public=beijing.public
        ),
        certify(
            beijing, "110000", origin="110101", region="110101", tier="county", public=COUNTY.public
        ),
        *chain(revoke(HEBEI, "130000", origin="110101", key=COUNTY.key_id, last_seq=0)),
    ]
    trust, problems = build_trust(ROOT_KEY.public, docs)
    assert [p.reason for p in problems] == ["out_of_subtree"]  # Hebei may not revoke it either
    assert verify_origin("110101", county_log(COUNTY, 2, "110101"), [], trust).ok


def test_a_revocation_ends_every_copy_of_a_grant():
    cert = certify(
        HEBEI, "130000", origin="130102", region="130102", tier="county", public=COUNTY.public
    )
    again = certify(
        HEBEI, "130000", origin="130102", region="130102", tier="county", public=COUNTY.public, at=5
    )
    docs = chain(
        cert, again, revoke(HEBEI, "130000", origin="130102", key=COUNTY.key_id, last_seq=2)
    )
    trust, _ = build_trust(ROOT_KEY.public, [*docs, cert])
    report = verify_origin("130102", county_log(COUNTY, 3), [], trust)
    assert (report.failure.reason, report.failure.seq) == ("revoked_key", 3)


def test_a_revoked_certifier_cannot_certify_after_its_last_position():
    docs = chain(
        revoke(ROOT_KEY, ROOT, origin="130000", key=HEBEI.key_id, last_seq=10),
        certify(
            HEBEI,
            "130000",
            origin="130102",
            region="130102",
            tier="county",
            public=COUNTY.public,
            at_seq=11,
        ),
        certify(
            HEBEI,
            "130000",
            origin="130104",
            region="130104",
            tier="county",
            public=SHANXI.public,
            at_seq=10,
        ),
    )
    trust, problems = build_trust(ROOT_KEY.public, docs)
    assert trust.keys_of("130102") == [] and len(trust.keys_of("130104")) == 1
    assert [p.reason for p in problems] == ["unknown_certifier"]
