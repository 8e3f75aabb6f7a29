"""Verified import without NATS: envelopes of three counties fed to their city in shuffled
order, with duplicates, a gap filled later and forgeries mixed in, are applied exactly once
in each origin's order, and every forgery is quarantined with its reason."""

import random

import pytest

from federation.bundle import pack, unpack
from federation.canonical import decode, encode
from federation.checkpoint import sign_checkpoint
from federation.envelope import parse, seal
from federation.errors import VerificationError
from federation.keys import ROOT, build_trust, certify, revoke
from federation.suite import SigningKey, load_key, load_public, public_pem
from node import config as config_mod
from node.audit.verify import audit_node
from node.replication.importer import Importer
from node.service import Node
from tests.conftest import make_node_dir
from tests.factories import credit_code, enterprise, js

COUNTIES = ("130102", "130104", "130105")


def setup(tmp_path, clock):
    root, province = SigningKey.generate(), SigningKey.generate()
    city_dir = make_node_dir(tmp_path / "city", tier="city", region="130100")
    city_pub = load_public(city_dir / "node.pub")
    docs = province_and_city(root, province, city_pub)
    city_key = load_key(city_dir / "node.key")
    logs = {}
    for n, origin in enumerate(COUNTIES):
        d = make_node_dir(tmp_path / origin, tier="county", region=origin)
        docs.append(
            certify(
                city_key,
                "130100",
                origin=origin,
                region=origin,
                tier="county",
                public=load_public(d / "node.pub"),
            )
        )
        node = Node(config_mod.load(d, environ={}), clock=clock)
        for i in range(4 + n):
            node.execute(
                "enterprise.register",
                js(enterprise(credit_code=credit_code(100 * n + i, origin), division=origin)),
                user="clerk",
            )
        node.close()
        node = Node(config_mod.load(d, environ={}), clock=clock)
        logs[origin] = (node.log.envelopes(0, 100), node.log.checkpoints())
        node.close()
    # a county of another city, properly certified by the province: outside this city's area
    other = SigningKey.generate()
    docs.append(
        certify(
            province, "130000", origin="130203", region="130203", tier="county", public=other.public
        )
    )
    install_trust(city_dir, root, docs)
    return city_dir, logs, other


def province_and_city(root, province, city_public):
    """The chain of a city 130100: the root certifies the province 130000 (key ``province``),
    the province the city."""
    return [
        certify(
            root, ROOT, origin="130000", region="130000", tier="province", public=province.public
        ),
        certify(
            province, "130000", origin="130100", region="130100", tier="city", public=city_public
        ),
    ]


def install_trust(directory, root, docs):
    """A node's trust chain as `anjian keys install` leaves it: the root public key and the
    documents that chain to it."""
    trust = directory / "trust"
    trust.mkdir()
    (trust / "root.pub").write_bytes(public_pem(root.public))
    for i, doc in enumerate(docs):
        (trust / f"{i}.doc").write_bytes(doc)


def forge(raw, key, **change):
    env = parse(raw)
    fields = dict(
        origin=env.origin,
        seq=env.seq,
        prev=env.prev,
        at=env.at,
        type=env.type,
        aggregate=env.aggregate,
        version=env.version,
        actor=env.actor,
        payload=env.payload,
    )
    fields.update(change)
    return seal(key, **fields)


def as_outsider(raw, key):
    """An envelope re-signed as the first of 130203, a county outside the city."""
    return forge(
        raw, key, origin="130203", actor={"user": "u", "node": "130203"}, seq=1, prev=bytes(32)
    )


def test_shuffled_duplicated_gapped_and_forged_imports(tmp_path, clock):
    city_dir, logs, outsider = setup(tmp_path, clock)
    a, b, c = COUNTIES
    rng = random.Random(7)
    altered = decode(logs[a][0][1])  # {body, sig}: change the body, keep the signature
    body = decode(altered["body"])
    body["payload"] = {**body["payload"], "name": "篡改后的名称"}
    altered["body"] = encode(body)
    forgeries = [
        encode(altered),  # a:2 with its payload changed after signing
        forge(logs[b][0][3], SigningKey.generate()),  # b:4 signed by a key nobody certified
        as_outsider(logs[c][0][0], outsider),  # outside the city
        b"\x92\x01\x02",  # not an envelope
    ]
    withheld = logs[a][0][2]  # a:3 arrives later: a gap
    first = [e for o in COUNTIES for e in logs[o][0] if e != withheld]
    first += rng.sample(first, 5) + forgeries  # duplicates and forgeries
    rng.shuffle(first)
    checkpoints = [n for o in COUNTIES for n in logs[o][1]]

    city = Node(config_mod.load(city_dir, environ={}), clock=clock)
    importer = Importer(city)
    items = list(
        unpack(
            pack(
                [("envelope", e) for e in first] + [("checkpoint", n.encode()) for n in checkpoints]
            )
        )
    )
    one = importer.take(items)
    assert one["held"] == {a: {"applied": 2, "pending": 1}}  # a:4 waits for a:3
    assert one["applied"] == 2 + 5 + 6
    assert sorted((q["origin"], q["seq"], q["reason"]) for q in one["quarantined"]) == [
        ("130102", 2, "bad_signature"),
        ("130104", 4, "unknown_key"),
        ("130203", 1, "out_of_subtree"),
        ("?", 0, "malformed_envelope"),
    ]

    two = importer.take([("envelope", withheld), ("envelope", logs[b][0][0])])
    assert two["applied"] == 2 and two["duplicates"] == 1 and two["held"] == {}
    for origin in COUNTIES:  # byte-identical to what each county signed, each exactly once
        assert city.log.envelopes(0, 100, origin) == logs[origin][0]
    assert city.status()["event_count"] == sum(len(logs[o][0]) for o in COUNTIES)
    city.close()

    trust, _ = build_trust(
        load_public(city_dir / "trust" / "root.pub"),
        [p.read_bytes() for p in (city_dir / "trust").glob("*.doc")],
    )
    report = audit_node(config_mod.load(city_dir, environ={}), trust)
    assert report["ok"], report["failures"]
    assert {o["origin"]: o["checkpoints"] for o in report["origins"]} == {a: 1, b: 1, c: 1}


def test_revocations_late_certifications_and_forged_checkpoints(tmp_path, clock):
    city_dir, logs, outsider = setup(tmp_path, clock)
    a, b, c = COUNTIES
    city_key = load_key(city_dir / "node.key")
    county_key = parse(logs[a][0][0]).key
    revoked = revoke(city_key, "130100", origin=a, key=county_key, last_seq=2, at_seq=1)
    # the outsider's certification is withheld: its envelopes wait, then are quarantined
    outsider_doc = next(
        p for p in (city_dir / "trust").glob("*.doc") if b"130203" in p.read_bytes()
    )
    late_doc = outsider_doc.read_bytes()
    outsider_doc.unlink()
    outsider_env = as_outsider(logs[c][0][0], outsider)
    county = load_key(tmp_path / b / "node.key")
    bogus_note = sign_checkpoint(county, b, 1, bytes(32)).text.encode()
    deep = b"\x91" * 600 + b"\xc0"
    with_bytes = forge(
        logs[c][0][0],
        load_key(tmp_path / c / "node.key"),
        seq=7,
        prev=parse(logs[c][0][5]).hash,
        payload={"blob": b"\x00\x01"},
    )
    odd_id = forge(
        logs[b][0][4],
        county,
        seq=6,
        prev=parse(logs[b][0][4]).hash,
        aggregate="{" + parse(logs[b][0][4]).aggregate + "}",
        version=2,
    )

    city = Node(config_mod.load(city_dir, environ={}), clock=clock)
    importer = Importer(city)
    items = [
        ("document", revoked),
        ("checkpoint", bogus_note),
        ("envelope", outsider_env),
        ("envelope", deep),
    ]
    items += [("envelope", e) for o in COUNTIES for e in logs[o][0]] + [
        ("envelope", with_bytes),
        ("envelope", odd_id),
    ]
    items += [("checkpoint", n.encode()) for o in COUNTIES for n in logs[o][1]]
    one = importer.take(items)
    reasons = sorted((q["origin"], q["seq"], q["reason"]) for q in one["quarantined"])
    assert reasons == [
        (a, 3, "revoked_key"),  # signed after the key's last valid position
        (a, 4, "bad_checkpoint_signature"),  # so is its checkpoint at size 4
        (a, 4, "revoked_key"),  # refused at once too, though it waits behind a gap
        (b, 1, "checkpoint_mismatch"),  # a signed root its envelopes do not give
        (b, 6, "malformed_envelope"),  # not a canonical aggregate id
        (c, 7, "unsupported_payload"),  # bytes in the payload
        ("?", 0, "non_canonical"),  # nested past any sensible depth
    ]
    assert one["held"] == {"130203": {"applied": 0, "pending": 1}}
    assert city.log.envelopes(0, 100, b) == logs[b][0]  # the forged checkpoint did not block b
    assert [n for n in city.log.checkpoints(b)] == logs[b][1]

    two = importer.take([("document", late_doc)])
    assert [(q["origin"], q["reason"]) for q in two["quarantined"]] == [
        ("130203", "out_of_subtree")
    ]
    assert two["held"] == {}
    city.close()


def test_an_envelope_whose_actor_is_another_node_is_malformed(tmp_path, clock):
    """The actor's node must be the origin that signed: one origin cannot record in another's
    name, even with a valid key of its own."""
    _, logs, _ = setup(tmp_path, clock)
    a, b, _ = COUNTIES
    key = SigningKey.generate()
    env = parse(logs[a][0][0])
    with pytest.raises(VerificationError) as e:
        parse(forge(logs[a][0][0], key, actor={**env.actor, "node": b}))
    assert e.value.reason == "malformed_envelope" and b in str(e.value)
    with pytest.raises(VerificationError, match="actor is"):
        parse(forge(logs[a][0][0], key, actor={"node": a}))
