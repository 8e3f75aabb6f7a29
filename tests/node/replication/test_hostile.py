"""The verified import against hostile certified nodes and anonymous senders
(docs/architecture.md §6 "In"): a valid signature proves who wrote an envelope, not that its
writer may write that record, nor that it may cost the tier whatever it likes. Each attack is
refused with a named reason while the genuine traffic of every origin goes on."""

import asyncio
import dataclasses
import json
import tracemalloc
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.base import EVENT_TYPES
from domain.codes import enterprise_id, scoped_to
from domain.errors import Invalid
from domain.receipt import receipt_id
from federation.checkpoint import sign_checkpoint
from federation.envelope import parse, seal
from federation.keys import certify, revoke
from federation.memory import MemoryTransport
from federation.suite import SigningKey, load_key, load_public
from federation.transport import UP, Credentials, pack_positions, wants_limits
from node import config as config_mod
from node.errors import NotFound
from node.replication.above import take_from_above
from node.replication.admit import COMMON
from node.replication.checkpoints import WAITING
from node.replication.importer import KEPT_BYTES, QUARANTINED, Importer
from node.replication.outbox import Outbox
from node.replication.status import federation_view
from node.replication.uplink import Uplink, believable
from node.service import Node
from node.signedlog import stored_event
from projections.queries import Filters
from tests.conftest import make_node_dir
from tests.factories import accident, credit_code, enterprise, js
from tests.node.replication.test_import import (
    COUNTIES,
    forge,
    install_trust,
    province_and_city,
    setup,
)


def node_at(directory, clock, **settings):
    environ = {f"ANJIAN_FEDERATION_{k.upper()}": str(v) for k, v in settings.items()}
    return Node(config_mod.load(directory, environ=environ), clock=clock)


def next_of(raws, key, **fields):
    """A new envelope signed with ``key`` after the last of ``raws`` (same origin)."""
    last = parse(raws[-1])
    return forge(raws[-1], key, seq=last.seq + 1, prev=last.hash, **fields)


def quarantined(summary):
    return sorted((q["origin"], q["seq"], q["reason"]) for q in summary["quarantined"])


def test_a_county_cannot_write_another_countys_record(tmp_path, clock):
    """County A's valid key appends to county B's enterprise (B's id, the next version): the
    city refuses it as foreign_aggregate, B's record is untouched, and B goes on."""
    city_dir, logs, _ = setup(tmp_path, clock)
    a, b, _ = COUNTIES
    a_key = load_key(tmp_path / a / "node.key")
    b_first = parse(logs[b][0][0])
    hostile = next_of(
        logs[a][0],
        a_key,
        type="enterprise.corrected/1",
        aggregate=b_first.aggregate,
        version=2,
        payload={"changes": {"name": "被篡改的企业"}, "reason": "冒名修改"},
    )
    city = node_at(city_dir, clock)
    importer = Importer(city)
    items = [("envelope", e) for o in (a, b) for e in logs[o][0]] + [("envelope", hostile)]
    summary = importer.take(items)
    assert quarantined(summary) == [(a, len(logs[a][0]) + 1, "foreign_aggregate")]
    assert city.show(b_first.aggregate)["name"] == enterprise()["name"]
    assert city.show(b_first.aggregate)["version"] == 1
    # B's own next envelope on its record is applied: B is not held by A's act
    b_key = load_key(tmp_path / b / "node.key")
    genuine = next_of(
        logs[b][0],
        b_key,
        type="enterprise.corrected/1",
        aggregate=b_first.aggregate,
        version=2,
        payload={"changes": {"name": "更正后的名称"}, "reason": "名称更正"},
    )
    assert importer.take([("envelope", genuine)])["applied"] == 1
    assert city.show(b_first.aggregate)["name"] == "更正后的名称"
    city.close()


def test_a_squatted_derived_id_holds_no_one_but_the_squatter(tmp_path, clock):
    """County A registers B's enterprise first. With B's id (derived in B's scope) it is
    refused as foreign_aggregate; in its own scope it is a record of A's, applied, and the
    exceptions list names the credit code registered by two counties. B's genuine
    registration, arriving after, is applied either way and B is never held."""
    city_dir, logs, _ = setup(tmp_path, clock)
    a, b, _ = COUNTIES
    a_key = load_key(tmp_path / a / "node.key")
    b_dir = tmp_path / b
    b_node = node_at(b_dir, clock)
    code = credit_code(777, b)
    record = b_node.execute(
        "enterprise.register", js(enterprise(credit_code=code, division=b)), user="clerk"
    )
    b_envelopes = b_node.log.envelopes(0, 100)
    b_node.close()
    assert record["id"] == str(enterprise_id(code, b))
    registered = parse(b_envelopes[-1])
    as_b = next_of(  # B's id, signed by A
        logs[a][0],
        a_key,
        aggregate=registered.aggregate,
        version=1,
        type="enterprise.registered/1",
        payload=registered.payload,
    )
    city = node_at(city_dir, clock)
    importer = Importer(city)
    first = importer.take([("envelope", e) for e in logs[a][0]] + [("envelope", as_b)])
    assert quarantined(first) == [(a, len(logs[a][0]) + 1, "foreign_aggregate")]
    # A, refused, tries again in its own scope at the same position: a record of its own
    elsewhere = forge(as_b, a_key, aggregate=str(enterprise_id(code, a)))  # but located in b
    refused = importer.take([("envelope", elsewhere)])
    assert quarantined(refused) == [(a, len(logs[a][0]) + 1, "foreign_aggregate")]
    in_own_scope = forge(
        as_b,
        a_key,
        aggregate=str(enterprise_id(code, a)),
        payload={**registered.payload, "division": a},
    )
    assert importer.take([("envelope", in_own_scope)])["applied"] == 1
    second = importer.take([("envelope", e) for e in b_envelopes])
    assert second["applied"] == len(b_envelopes) and second["quarantined"] == []
    assert second["held"] == {}
    assert city.show(registered.aggregate)["division"] == b
    city.project()
    shared = city.query("duplicate_codes", Filters.parse({}, clock()))
    city.close()
    assert [(r["division"], r["code_division"], r["id"]) for r in shared] == [
        (a, b, str(enterprise_id(code, a))),  # the squatter's, flagged: the code says b
        (b, b, registered.aggregate),
    ]


def test_an_oversized_envelope_is_refused_at_record_import_and_uplink(tmp_path, clock):
    city_dir, logs, _ = setup(tmp_path, clock)
    a, b, _ = COUNTIES
    a_key = load_key(tmp_path / a / "node.key")
    # at record: the command is refused whole, nothing is stored
    county = node_at(tmp_path / a, clock, max_envelope=4096)
    before = county.status()["event_count"]
    with pytest.raises(Invalid, match="max_envelope"):
        county.execute(
            "enterprise.register",
            js(enterprise(credit_code=credit_code(900, a), division=a, address="长" * 1500)),
            user="clerk",
        )
    assert county.status()["event_count"] == before
    county.close()
    county = node_at(tmp_path / a, clock)  # 8 MB under the default limit
    with pytest.raises(Invalid):
        county.execute(
            "enterprise.register",
            js(enterprise(credit_code=credit_code(901, a), division=a, address="长" * 2_700_000)),
            user="clerk",
        )
    assert county.status()["event_count"] == before
    county.close()
    # at import: 8 MB signed by a certified county is quarantined (its first bytes only)
    huge = next_of(
        logs[a][0], a_key, payload={**parse(logs[a][0][0]).payload, "x": "y" * 8_000_000}
    )
    city = node_at(city_dir, clock)
    importer = Importer(city)
    summary = importer.take([("envelope", e) for e in logs[b][0]] + [("envelope", huge)])
    assert quarantined(summary) == [("?", 0, "oversized")]
    assert summary["applied"] == len(logs[b][0])
    kept = city.log.query("SELECT length(raw) AS n FROM quarantine")
    assert [r["n"] for r in kept] == [KEPT_BYTES]
    city.close()
    # at the uplink: an envelope larger than the stream takes (recorded under an older, larger
    # limit) blocks its origin, visibly, and is never retried; the other origins go on
    b_node = node_at(tmp_path / b, clock)
    b_node.execute(
        "enterprise.register",
        js(enterprise(credit_code=credit_code(902, b), division=b, address="长" * 1500)),
        user="clerk",
    )
    b_node.execute(
        "enterprise.register",
        js(enterprise(credit_code=credit_code(903, b), division=b)),
        user="clerk",
    )
    b_log = b_node.log.envelopes(0, 100)
    b_node.close()
    city = node_at(city_dir, clock)
    assert (
        Importer(city).take(
            [("envelope", e) for o in (a,) for e in logs[o][0]] + [("envelope", e) for e in b_log]
        )["applied"]
        == len(logs[a][0]) + 2
    )
    big = len(logs[b][0]) + 1
    outbox = Outbox(lambda kind, origin: f"anjian.up.x.{kind}.{origin}", max_bytes=3000)
    batch = outbox.next_batch(city.log, 100)
    again = outbox.next_batch(city.log, 100)
    city.close()
    assert [seq for _, o, seq in batch if o == a and seq > 0] == list(range(1, len(logs[a][0]) + 1))
    assert [seq for _, o, seq in batch if o == b and seq > 0] == list(range(1, big))
    assert set(outbox.blocked) == {b} and f"{b}:{big}" in str(outbox.blocked[b])
    assert again == [] or all(o != b for _, o, _ in again)


def test_a_payload_outside_its_schema_is_refused_and_show_never_crashes(tmp_path, clock):
    city_dir, logs, _ = setup(tmp_path, clock)
    a, _, _ = COUNTIES
    a_key = load_key(tmp_path / a / "node.key")
    payload = {**parse(logs[a][0][0]).payload, "credit_code": 12345}  # a number, not text
    code = credit_code(901, a)
    bad = next_of(
        logs[a][0],
        a_key,
        type="enterprise.registered/1",
        aggregate=str(enterprise_id(code, a)),
        version=1,
        payload=payload,
    )
    city = node_at(city_dir, clock)
    summary = Importer(city).take([("envelope", e) for e in logs[a][0]] + [("envelope", bad)])
    assert quarantined(summary) == [(a, len(logs[a][0]) + 1, "bad_payload")]
    assert "credit_code" in city.log.query("SELECT message FROM quarantine")[0]["message"]
    city.close()


def store_as_is(node, key, seq, kind, aggregate, version, payload):
    """An event stored as it comes, past every check (as an older or newer version, or a hostile
    node before the checks, could have left it)."""
    env = parse(
        seal(
            key,
            origin="fuzz",
            seq=seq,
            prev=bytes(32),
            at=node.clock(),
            type=kind,
            aggregate=aggregate,
            version=version,
            actor={"user": "u", "node": "fuzz"},
            payload=payload,
        )
    )
    node.log.app.recorder.insert_events([stored_event(env)], from_above=True)


def test_show_of_every_record_of_a_fuzzed_store_answers(tmp_path, clock):
    """Stored histories this node cannot fold (unknown types, values its rules do not know,
    a history starting with an update) are shown as stored with the reason, never a crash."""
    directory = make_node_dir(tmp_path / "n")
    node = node_at(directory, clock)
    key = SigningKey.generate()
    ok = node.execute("enterprise.register", js(enterprise()), user="clerk")
    weird = [
        ("accident.supplemented/1", {"changes": {}, "grade": "no-such-grade", "note": None}, 1),
        ("enterprise.closed/1", {"reason": 5}, 1),
        ("sensor.from_the_future/9", {"anything": [1, 2]}, 1),
        ("enterprise.registered/1", {"name": None}, 1),
        ("accident.reported/1", {}, 1),
    ]
    ids = [ok["id"]]
    for n, (kind, payload, version) in enumerate(weird):
        aggregate = str(uuid.uuid4())
        store_as_is(node, key, n + 1, kind, aggregate, version, payload)
        ids.append(aggregate)
    for record_id in ids:
        shown = node.show(record_id)
        assert shown["id"] == record_id
    unreadable = [node.show(i) for i in ids[1:]]
    assert all("unreadable" in s and s["events"] for s in unreadable)
    assert json.dumps(unreadable, ensure_ascii=False)  # all of it can be answered as JSON
    with pytest.raises(NotFound):
        node.show(str(uuid.uuid4()))
    node.close()


def test_a_flood_of_envelopes_nobody_can_judge_is_bounded_and_counted(tmp_path, clock):
    """10,000 envelopes signed by keys nobody certified, under certified origins at far
    positions and under origins nobody certified: what waits stays within the bounds, the
    rest is dropped and counted; genuine envelopes still apply."""
    city_dir, logs, _ = setup(tmp_path, clock)
    a, b, _ = COUNTIES
    stranger = SigningKey.generate()
    template = logs[a][0][0]
    flood = []
    for i in range(10_000):
        origin = a if i % 2 else f"9{i % 500:05d}"
        flood.append(
            forge(
                template,
                stranger,
                origin=origin,
                actor={"user": "u", "node": origin},
                seq=10 + i,
                prev=bytes(32),
            )
        )
    city = node_at(city_dir, clock, hold_per_origin=200, hold_unknown=300)
    importer = Importer(city)
    tracemalloc.start()
    summary = importer.take([("envelope", e) for e in flood], hold_tail=True, tail_in_memory=True)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.1f} MiB"  # the flood itself is ~10 MB
    pending = {
        r["origin"]: r["n"]
        for r in city.log.query("SELECT origin, COUNT(*) AS n FROM import_pending GROUP BY origin")
    }
    assert pending.get(a, 0) <= 200
    assert sum(n for o, n in pending.items() if o != a) <= 300
    dropped = sum(r["n"] for r in city.log.query("SELECT n FROM import_dropped"))
    assert dropped == summary["dropped"] == 10_000 - sum(pending.values())
    assert federation_view(city, clock())["dropped"] == dropped  # shown, not silent
    assert summary["unsettled"] == set()  # nothing from the flood waits in memory
    again = importer.take([("envelope", e) for o in (a, b) for e in logs[o][0]])
    assert again["applied"] == len(logs[a][0]) + len(logs[b][0])
    city.close()


def test_a_certified_countys_own_flood_is_bounded_and_filed_under_it(tmp_path, clock):
    """County A signs, with its own valid key, 1,000 checkpoints of future sizes of its origin
    and 1,500 envelopes under origins nobody certified (one per made-up origin, each refused as
    signed by another origin's key): the checkpoints kept wait within the bound (the rest
    counted under A), the refusals of the made-up origins share one bound under "?", memory
    stays bounded, and genuine traffic applies."""
    city_dir, logs, _ = setup(tmp_path, clock)
    a, b, _ = COUNTIES
    a_key = load_key(tmp_path / a / "node.key")
    applied = len(logs[a][0])
    notes = [
        ("checkpoint", sign_checkpoint(a_key, a, applied + 1 + 2 * i, bytes(32)).text.encode())
        for i in range(1000)
    ]
    template = logs[a][0][0]
    made_up = [
        (
            "envelope",
            forge(
                template,
                a_key,
                origin=f"8{i:05d}",
                actor={"user": "u", "node": f"8{i:05d}"},
                seq=1,
                prev=bytes(32),
            ),
        )
        for i in range(1500)
    ]
    city = node_at(city_dir, clock, hold_per_origin=1000)
    importer = Importer(city)
    assert importer.take([("envelope", e) for e in logs[a][0]])["applied"] == applied
    tracemalloc.start()
    summary = importer.take(notes + made_up, hold_tail=True, tail_in_memory=True)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    waiting = city.log.query("SELECT COUNT(*) AS n, MAX(size) AS top FROM import_checkpoints")[0]
    assert waiting["n"] == WAITING and waiting["top"] <= applied + 1000
    rows = {
        r["origin"]: r["n"]
        for r in city.log.query("SELECT origin, COUNT(*) AS n FROM quarantine GROUP BY origin")
    }
    assert rows == {"?": QUARANTINED}
    dropped = {r["origin"]: r["n"] for r in city.log.query("SELECT origin, n FROM import_dropped")}
    assert dropped == {a: 1000 - WAITING, "?": 1500 - QUARANTINED}
    assert len(summary["quarantined"]) == 1500
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    again = importer.take([("envelope", e) for e in logs[b][0]])
    assert again["applied"] == len(logs[b][0])
    city.close()


@pytest.fixture
def province(tmp_path):
    """A city under a province whose key this test holds (to sign what comes down)."""
    root, province_key = SigningKey.generate(), SigningKey.generate()
    city_dir = make_node_dir(tmp_path / "city", tier="city", region="130100")
    city_pub = load_public(city_dir / "node.pub")
    docs = province_and_city(root, province_key, city_pub)
    install_trust(city_dir, root, docs)
    return city_dir, province_key


def down_envelope(key, seq, document, clock):
    return seal(
        key,
        origin="130000",
        seq=seq,
        prev=bytes(32),
        at=clock(),
        type="keys.document_recorded/1",
        aggregate=str(uuid.uuid5(uuid.NAMESPACE_DNS, "130000")),
        version=seq,
        actor={"user": "u", "node": "130000"},
        payload={
            "kind": "revocation",
            "subject_origin": "130102",
            "subject_key": "k",
            "document": __import__("base64").b64encode(document).decode(),
        },
    )


def test_junk_at_a_future_downward_position_cannot_suppress_a_revocation(province, clock):
    """Junk published at the province's next downward positions (unsigned, signed by a
    stranger, signed by a key nobody certified) takes no position: the genuine revocation
    that comes after at the same position is kept, and with it the county's key is revoked."""
    city_dir, province_key = province
    county = SigningKey.generate()
    certification = certify(
        province_key,
        "130000",
        origin="130102",
        region="130102",
        tier="county",
        public=county.public,
    )
    revocation = revoke(province_key, "130000", origin="130102", key=county.key_id, last_seq=3)
    stranger = SigningKey.generate()
    junk = [
        down_envelope(stranger, 2, revocation, clock),
        down_envelope(stranger, 3, revocation, clock),
        b"\x93\x01\x02\x03",
    ]
    genuine = [
        down_envelope(province_key, 1, certification, clock),
        down_envelope(province_key, 2, revocation, clock),
    ]
    city = node_at(city_dir, clock)
    importer = Importer(city)
    subject = "anjian.down.env.130000.all"
    first = take_from_above(importer, [(subject, j) for j in junk])
    assert first["kept"] == 0
    assert city.log.query("SELECT COUNT(*) AS n FROM downward")[0]["n"] == 0
    second = take_from_above(importer, [(subject, g) for g in genuine])
    assert second["kept"] == 2
    kept = city.log.query("SELECT seq, raw FROM downward ORDER BY seq")
    assert [bytes(r["raw"]) for r in kept] == genuine
    trust = importer.trust()
    with pytest.raises(Exception, match="revoked"):
        trust.key_for("130102", county.key_id, 4)
    city.close()


def test_the_uplink_believes_no_position_beyond_what_it_holds(tmp_path, clock):
    directory = make_node_dir(tmp_path / "n")
    node = node_at(directory, clock)
    node.execute("enterprise.register", js(enterprise()), user="clerk")
    me = node.config.node.origin
    held = node.status()["event_count"]
    told = {me: (10**9, 10**9), "130104": (5, 1)}
    assert believable(node.log, told) == {me: (held, 0), "130104": (0, 0)}
    node.close()


def test_a_type_this_node_does_not_know_cannot_take_a_record(tmp_path, clock):
    """An event of a newer version's type is kept on its origin's own records, but one that
    would create a record waits for an upgrade: it could otherwise take an id that a known type
    derives (here B's enterprise, signed by A), and hold B forever."""
    city_dir, logs, _ = setup(tmp_path, clock)
    a, b, _ = COUNTIES
    a_key = load_key(tmp_path / a / "node.key")
    b_node = node_at(tmp_path / b, clock)
    code = credit_code(778, b)
    b_node.execute(
        "enterprise.register", js(enterprise(credit_code=code, division=b)), user="clerk"
    )
    b_log = b_node.log.envelopes(0, 100)
    b_node.close()
    squat = next_of(
        logs[a][0],
        a_key,
        type="enterprise.from_a_newer_version/1",
        aggregate=str(enterprise_id(code, b)),
        version=1,
        payload={},
    )
    own = forge(squat, a_key, aggregate=parse(logs[a][0][0]).aggregate, version=2)
    city = node_at(city_dir, clock)
    importer = Importer(city)
    first = importer.take([("envelope", e) for e in logs[a][0]] + [("envelope", squat)])
    assert first["quarantined"] == [] and first["held"] == {
        a: {"applied": len(logs[a][0]), "pending": 1}
    }
    second = importer.take([("envelope", e) for e in b_log])
    assert second["applied"] == len(b_log) and second["quarantined"] == []
    assert city.show(str(enterprise_id(code, b)))["credit_code"] == code
    # on its own record the unknown type is kept (a newer version's event, relayed verbatim)
    third = importer.take([("envelope", own)])
    assert third["applied"] == 1 and city.log.envelopes(0, 100, a)[-1] == own
    city.close()


def test_a_record_of_a_random_id_type_cannot_take_a_derived_id(tmp_path, clock):
    """County A records an accident under the id B's enterprise will have (or the id of the
    city's receipt of A's own report): refused, since only the types that derive their ids may
    use a derived one; B's registration, arriving after, is applied and B is never held."""
    city_dir, logs, _ = setup(tmp_path, clock)
    a, b, _ = COUNTIES
    a_key = load_key(tmp_path / a / "node.key")
    a_node = node_at(tmp_path / a, clock)
    a_node.execute("accident.report", js(accident(division=a)), user="clerk")
    report = a_node.log.envelopes(0, 100)[-1]
    a_node.close()
    code = credit_code(779, b)
    squat = forge(report, a_key, aggregate=str(enterprise_id(code, b)))
    on_receipt = forge(report, a_key, aggregate=str(receipt_id("130100", uuid.uuid4())))
    b_node = node_at(tmp_path / b, clock)
    b_node.execute("enterprise.register", js(enterprise(credit_code=code, division=b)), user="c")
    b_log = b_node.log.envelopes(0, 100)
    b_node.close()
    city = node_at(city_dir, clock)
    importer = Importer(city)
    first = importer.take([("envelope", e) for e in logs[a][0]] + [("envelope", squat)])
    second = importer.take([("envelope", on_receipt)])
    position = len(logs[a][0]) + 1
    assert quarantined(first) == quarantined(second) == [(a, position, "foreign_aggregate")]
    assert "not an id of its own" in city.log.query("SELECT message FROM quarantine")[0]["message"]
    third = importer.take([("envelope", e) for e in b_log])
    assert third["applied"] == len(b_log) and third["held"] == {}
    city.close()


def test_a_record_id_another_origin_made_cannot_be_taken_first(tmp_path, clock):
    """County A has seen B's accident on its way up (a relay sees it first) and records an
    accident under B's id before B's envelope arrives: the id is scoped to B (domain.codes.
    record_id), so A's creation is refused as foreign_aggregate, B's genuine report, arriving
    after, is applied, and B is never held. An id made before scoped ids (uuid4) that another
    origin created is refused the same way, by the store's first writer."""
    city_dir, logs, _ = setup(tmp_path, clock)
    a, b, _ = COUNTIES
    a_key = load_key(tmp_path / a / "node.key")
    b_node = node_at(tmp_path / b, clock)
    record = b_node.execute("accident.report", js(accident(division=b)), user="clerk")
    b_log = b_node.log.envelopes(0, 100)
    b_node.close()
    assert scoped_to(uuid.UUID(record["id"]), b) and not scoped_to(uuid.UUID(record["id"]), a)
    reported = parse(b_log[-1])
    squat = next_of(
        logs[a][0],
        a_key,
        aggregate=reported.aggregate,
        version=1,
        type=reported.type,
        payload={**reported.payload, "division": a},
    )
    city = node_at(city_dir, clock)
    importer = Importer(city)
    first = importer.take([("envelope", e) for e in logs[a][0]] + [("envelope", squat)])
    position = len(logs[a][0]) + 1
    assert quarantined(first) == [(a, position, "foreign_aggregate")]
    second = importer.take([("envelope", e) for e in b_log])
    assert second["applied"] == len(b_log) and second["held"] == {}
    assert city.show(reported.aggregate)["division"] == b
    # a legacy random id of B's record, already applied: A may not create it again
    legacy = str(uuid.uuid4())
    b_key = load_key(tmp_path / b / "node.key")
    b_legacy = next_of(b_log, b_key, aggregate=legacy, version=1)
    assert importer.take([("envelope", b_legacy)])["applied"] == 1
    again = forge(squat, a_key, aggregate=legacy)
    assert quarantined(importer.take([("envelope", again)])) == [(a, position, "foreign_aggregate")]
    message = city.log.query("SELECT message FROM quarantine ORDER BY rowid DESC")[0]["message"]
    assert f"which {b} created" in message
    city.close()


def test_what_a_payload_says_of_where_and_by_whom_must_be_its_origins(tmp_path, clock):
    """A receipt claiming to be the province's, and a correction moving a record into another
    province, are refused, though each is signed by a certified county."""
    city_dir, logs, _ = setup(tmp_path, clock)
    a, _, _ = COUNTIES
    a_key = load_key(tmp_path / a / "node.key")
    accident_id = str(uuid.uuid4())
    fake_receipt = next_of(
        logs[a][0],
        a_key,
        type="accident.receipt_recorded/1",
        aggregate=str(receipt_id(a, accident_id)),
        version=1,
        payload={
            "accident_id": accident_id,
            "reporting_origin": "130103",
            "reporting_seq": 1,
            "report_recorded_at": clock(),
            "tier": "province",
            "region": "130000",
        },
    )
    moved = next_of(
        logs[a][0],
        a_key,
        type="enterprise.corrected/1",
        aggregate=parse(logs[a][0][0]).aggregate,
        version=2,
        payload={"changes": {"division": "440305"}, "reason": "迁往外省"},
    )
    city = node_at(city_dir, clock)
    importer = Importer(city)
    importer.take([("envelope", e) for e in logs[a][0]])
    position = len(logs[a][0]) + 1
    for hostile in (fake_receipt, moved):
        summary = importer.take([("envelope", hostile)])
        assert quarantined(summary) == [(a, position, "foreign_aggregate")]
    messages = [r["message"] for r in city.log.query("SELECT message FROM quarantine")]
    assert any("names tier 'province'" in m or "names region '130000'" in m for m in messages)
    assert any("440305" in m for m in messages)
    assert city.show(parse(logs[a][0][0]).aggregate)["division"] == a
    city.close()


def test_the_uplink_blocks_what_its_parent_would_refuse_and_says_so(tmp_path, clock):
    """A parent configured with a smaller max_envelope than its child says so in its answer:
    the child's uplink publishes what comes before the envelope the parent would refuse, then
    shows the origin blocked in its state (anjian status) instead of publishing it again and
    again; an answer without a limit (an older parent) leaves the child's own."""
    setup(tmp_path, clock)
    a = COUNTIES[0]
    county = node_at(tmp_path / a, clock)
    county.execute(
        "enterprise.register",
        js(enterprise(credit_code=credit_code(904, a), division=a, address="长" * 2000)),
        user="clerk",
    )
    envelopes = county.log.envelopes(0, 1000)
    big = len(envelopes)  # the last envelope is over 6 KB
    assert len(envelopes[-1]) > 6000
    broker = MemoryTransport()

    async def call(fn, *args):  # type: ignore[no-untyped-def]
        return fn(*args)

    async def scenario(limit: int | None) -> tuple[dict[str, str], int]:
        parent = await broker.connect("nats://parent:4222", Credentials())
        await parent.ensure_stream(UP)
        questions: list[bytes] = []

        async def answer(subject: str, data: bytes) -> bytes:
            questions.append(data)
            return pack_positions({}, limit if wants_limits(data) else None)

        served = await parent.serve("anjian.applied.*", answer)
        uplink = Uplink(county, "nats://parent:4222", call, call, broker)
        task = asyncio.create_task(uplink.run())
        for _ in range(200):
            await asyncio.sleep(0.02)
            if uplink.outbox.blocked or uplink.outbox.sent.get(a, 0) == big:
                break
        task.cancel()
        await served.stop()
        assert questions and wants_limits(questions[0])
        state = uplink.state({a: big})
        return state["blocked"], uplink.outbox.sent.get(a, 0)

    try:
        blocked, sent = asyncio.run(scenario(4096))
        assert sent == big - 1 and set(blocked) == {a}
        assert f"{a}:{big}" in blocked[a] and "4096" in blocked[a]
        blocked, sent = asyncio.run(scenario(None))
        assert blocked == {} and sent == big
    finally:
        county.close()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, dict, int]]:
    """One record's stored history: events of known types (and a few unknown ones) whose
    payloads have the type's own field names, some missing, some extra, with any values."""
    events = []
    for version in range(1, draw(st.integers(1, 3)) + 1):
        kind = draw(st.sampled_from(sorted(EVENT_TYPES)) | st.just("x.unknown/7"))
        names = (
            [f.name for f in dataclasses.fields(EVENT_TYPES[kind])] if kind in EVENT_TYPES else []
        )
        keys = draw(
            st.lists(st.sampled_from(names) | st.text(max_size=6), max_size=8)
            if names
            else st.lists(st.text(max_size=6), max_size=3)
        )
        events.append((kind, {k: draw(JSON) for k in keys if k not in COMMON}, version))
    return events


def test_show_answers_for_any_stored_history(tmp_path, clock):
    """A fuzzed store: 300 records whose histories are any mix of known and unknown types with
    any payloads (as an older or newer version, or a hostile node before the checks, could have
    left them) are each shown, as JSON, never a crash."""
    node = node_at(make_node_dir(tmp_path / "n"), clock)
    key = SigningKey.generate()
    seq = 0

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(histories())
    def shown(history: list[tuple[str, dict, int]]) -> None:
        nonlocal seq
        aggregate = str(uuid.uuid4())
        for kind, payload, version in history:
            seq += 1
            store_as_is(node, key, seq, kind, aggregate, version, payload)
        answer = node.show(aggregate)
        assert answer["id"] == aggregate
        json.dumps(answer, ensure_ascii=False)

    try:
        shown()
    finally:
        node.close()
