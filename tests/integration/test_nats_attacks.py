"""A hostile certified node against real nats-server processes configured by `anjian nats
config`'s code and real `anjian serve` nodes (docs/architecture.md §6 "In"): what the
servers let a certified county publish (its own upward subjects) reaches the verified import,
which refuses each attack with a named reason in the city's quarantine, while a genuine county's
records go on reaching the city and the province; and what the servers must refuse (another's
inbox, the backup centre's identity beyond the archive, a county of another subtree at the
province, a message over the payload limit) they refuse, naming it.

The same import attacks are tested directly against the importer in
tests/node/replication/test_hostile.py; anonymous clients, a sibling's requests and
subscriptions, a child's stream and consumer calls, junk on the downward stream and revocation
in test_nats_auth.py, which this module does not repeat."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import msgpack
import nats
import pytest
from click.testing import CliRunner

from domain.codes import enterprise_id
from federation.envelope import parse
from federation.jetstream import NATSTransport
from federation.suite import SigningKey, load_key
from federation.transport import (
    ARCHIVE,
    DOWN,
    UP,
    Connection,
    ConsumerSpec,
    Message,
    Refused,
    backup_durable,
    envelope_id,
    history_subject,
    up_subject,
)
from node import config as config_mod
from node.cli.main import main
from node.keys import credentials
from node.replication.importer import QUARANTINED
from projections.queries import Filters
from tests.factories import credit_code, enterprise, js
from tests.integration.federation import (
    Federation,
    Member,
    can_connect,
    closing_node,
    register_enterprises,
    wait_for,
)
from tests.node.replication.test_import import forge

# the federation's start (120 s at most, 7-20 s) counts to the first test; the waits for
# records to travel are 60 s each at most (1-3 s idle)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

COUNTY, ROGUE, CITY = "130102", "130104", "130100"
LAYOUT = [
    ("national", "national", "000000", None),
    ("backup", "backup", "000000", "national"),  # certified, not running: its NATS identity
    ("province", "province", "130000", "national"),
    ("city", "city", CITY, "province"),
    ("county", "county", COUNTY, "city"),  # the genuine traffic
    # a certified county turned hostile: not running `anjian serve`; its own keys (node key,
    # NATS identity) are used from here, as modified software of its own would, and only on
    # what the city's server lets it do (publish on anjian.up.130104.>)
    ("rogue", "county", ROGUE, "city"),
    ("stranger", "county", "130203", "province"),  # another subtree (reports to the province)
]
RUNNING = ("national", "province", "city", "county")
# the city's bounds on what waits (node.toml [federation]), small for the flood below
HOLD_PER_ORIGIN, HOLD_UNKNOWN = 200, 300
TRAVEL = 60  # seconds a record may take to reach a tier
JUNK = b"\x92\x01\x02"  # not an envelope
T = TypeVar("T")


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    """The federation running (the backup centre, the rogue and the stranger certified, not
    running), the county's first three records and the rogue's first at the province."""
    f = Federation(tmp_path_factory.mktemp("attacks"), LAYOUT)
    try:
        _bound(f["city"])
        with closing_node(f["rogue"]) as rogue:  # its genuine first record
            rogue.execute(
                "enterprise.register",
                js(enterprise(credit_code=credit_code(1, ROGUE), division=ROGUE)),
                user="clerk",
            )
            genuine = rogue.log.envelopes(0, 100)
        f.start(*RUNNING)
        register_enterprises(f["county"], 3)
        assert publish(f["city"], f["rogue"], genuine) == len(genuine)
        reaches(f, "province", origin=COUNTY)
        reaches(f, "province", origin=ROGUE, size=len(genuine))
        yield f
    finally:
        f.close()


def _bound(city: Member) -> None:
    path = city.directory / config_mod.CONFIG_FILE
    text = path.read_text(encoding="utf-8")
    bounds = f"hold_per_origin = {HOLD_PER_ORIGIN}\nhold_unknown = {HOLD_UNKNOWN}\n"
    assert "[federation]\n" in text
    path.write_text(text.replace("[federation]\n", "[federation]\n" + bounds, 1), "utf-8")
    limits = config_mod.load(city.directory, environ={}).federation
    assert (limits.hold_per_origin, limits.hold_unknown) == (HOLD_PER_ORIGIN, HOLD_UNKNOWN)


# -- acting as a member ----------------------------------------------------------------------
def url(member: Member) -> str:
    assert member.nats is not None, f"{member.name} runs no NATS server"
    return member.nats.url


def options(member: Member) -> dict[str, Any]:
    """nats-py's connect options of ``member``'s own NATS identity (and inbox prefix)."""
    return member.nats_options()


def attempt(server: Member, member: Member, act: Callable[[Connection], Awaitable[T]]) -> T:
    """Connect to ``server``'s NATS as ``member`` and do ``act`` on that connection."""

    async def run() -> T:
        creds = credentials(config_mod.load(member.directory, environ={}))
        nc = await NATSTransport().connect(url(server), "attack", creds)
        try:
            return await act(nc)
        finally:
            await nc.close()

    return asyncio.run(run())


def refused(
    server: Member, member: Member, act: Callable[[Connection], Awaitable[Any]], match: str
) -> str:
    """``act`` is refused by the server, with an error naming ``match``; the error's text."""
    with pytest.raises(Refused, match=f"(?i){re.escape(match)}") as e:
        attempt(server, member, act)
    return str(e.value)


def publish(server: Member, member: Member, raws: list[bytes], ids: list[str] | None = None) -> int:
    """Publish envelopes on ``member``'s own upward subjects at ``server``, each under its
    origin (junk under the member's), with the message ids given or fresh ones (the publisher
    chooses them); how many the server acknowledged."""
    messages = [
        Message(
            up_subject(member.origin, "env", _origin(raw, member)),
            ids[i] if ids else str(uuid.uuid4()),
            raw,
        )
        for i, raw in enumerate(raws)
    ]
    return attempt(server, member, lambda nc: nc.publish(messages, 10))


def _origin(raw: bytes, member: Member) -> str:
    try:
        return parse(raw).origin
    except Exception:
        return member.origin


def each_refused_by_name(server: Member, member: Member, subjects: list[str]) -> None:
    """``member`` publishing on each of ``subjects`` at ``server`` is refused, the refusal
    naming the subject."""
    violations = asyncio.run(raw_attempts(server, member, subjects))
    for subject in subjects:
        assert any(f'"{subject.lower()}"' in v.lower() for v in violations), (subject, violations)


async def raw_attempts(server: Member, member: Member, subjects: list[str]) -> list[str]:
    """What the server says of ``member`` publishing on ``subjects`` with a bare client (as a
    client library calling the JetStream API would, or anyone naming a subject): the errors
    it reported."""
    errors: list[str] = []

    async def noted(e: Exception) -> None:
        errors.append(str(e))

    nc = await nats.connect(url(server), allow_reconnect=False, error_cb=noted, **options(member))
    try:
        for subject in subjects:
            await nc.publish(subject, b"")
        await nc.flush(2)
        await asyncio.sleep(0.3)
    finally:
        await nc.close()
    return errors


async def count_on(server: Member, subject: str) -> int:
    """Messages on ``subject`` in the server's ANJIAN_UP (asked as its own node)."""
    nc = await nats.connect(url(server), allow_reconnect=False, **options(server))
    try:
        info = await nc.jetstream().stream_info(UP, subjects_filter=subject)
        return int((info.state.subjects or {}).get(subject, 0))
    finally:
        await nc.close()


# -- envelopes, stores, status -----------------------------------------------------------------
def next_of(raws: list[bytes], key: SigningKey, **change: Any) -> bytes:
    """A new envelope signed with ``key`` after the last of ``raws`` (same origin)."""
    last = parse(raws[-1])
    return forge(raws[-1], key, seq=last.seq + 1, prev=last.hash, **change)


def status(member: Member) -> dict[str, Any]:
    """What `anjian status` says of a node (its federation view among it)."""
    r = CliRunner().invoke(main, ["status", str(member.directory)])
    assert r.exit_code == 0, r.output
    said: dict[str, Any] = json.loads(r.stdout)
    return said


def scalar(member: Member, sql: str) -> int:
    return int(member.query(sql)[0][0])


def reaches(fed: Federation, *tiers: str, origin: str = COUNTY, size: int | None = None) -> None:
    """Wait until each of ``tiers`` has applied ``size`` envelopes of ``origin`` (default: all
    that the origin's node holds)."""
    if size is None:
        source = next(m for m in fed.members.values() if m.origin == origin)
        size = source.applied().get(origin, 0)
    for tier in tiers:
        wait_for(
            lambda t=tier: fed[t].applied().get(origin, 0) >= size,  # type: ignore[misc]
            TRAVEL,
            f"{origin}'s {size} envelopes reach the {tier}",
            lambda t=tier: (fed[t].applied(), fed[t].quarantine()[-5:]),  # type: ignore[misc]
        )


# -- the import attacks, over the wire ---------------------------------------------------------
def test_a_countys_attacks_on_its_own_subjects_are_quarantined_by_name(
    fed: Federation,
) -> None:
    """The rogue county, publishing only where its permissions allow, appends to the county's
    record, registers first the enterprise the county will register (the county's id for it,
    in the county's division), sends a payload outside its type's schema and an envelope over
    the size limit: the city refuses each by name at the rogue's next position (the oversized
    one unread, at ?:0), relays none of it, and is held by none of it: the county's genuine
    registration of that enterprise, recorded after, reaches the city and the province, and so
    does the rogue's own registration of the code in its own scope, at the very position it
    attacked from, which the city's exceptions list flags."""
    city, county, rogue, province = fed["city"], fed["county"], fed["rogue"], fed["province"]
    key = load_key(rogue.directory / "node.key")
    mine = city.envelopes(ROGUE)  # the rogue's chain as the city holds it
    position = len(mine) + 1
    theirs = parse(city.envelopes(COUNTY)[0])  # the county's first enterprise
    own = parse(mine[0]).payload  # the rogue's own registration
    code = credit_code(777, COUNTY)  # the county registers it after the squat
    attacks = [
        next_of(  # the county's record, its next version, signed by the rogue
            mine,
            key,
            type="enterprise.corrected/1",
            aggregate=theirs.aggregate,
            version=2,
            payload={"changes": {"name": "被篡改的企业"}, "reason": "冒名修改"},
        ),
        next_of(  # the county's enterprise registered first, under the county's id for it
            mine,
            key,
            aggregate=str(enterprise_id(code, COUNTY)),
            payload={**own, "credit_code": code, "division": COUNTY, "name": "抢注"},
        ),
        next_of(  # a credit code that is a number
            mine,
            key,
            aggregate=str(enterprise_id(credit_code(901, ROGUE), ROGUE)),
            payload={**own, "credit_code": 12345},
        ),
        next_of(mine, key, payload={**own, "address": "长" * 100_000}),  # ~300 kB
    ]
    max_envelope = config_mod.load(city.directory, environ={}).federation.max_envelope
    assert max_envelope < len(attacks[-1]) < 1024 * 1024  # over the limit, under NATS's
    before = Counter(city.quarantine())
    assert publish(city, rogue, attacks) == len(attacks)  # the server lets them in
    expected = Counter(
        [(ROGUE, position, "foreign_aggregate")] * 2
        + [(ROGUE, position, "bad_payload"), ("?", 0, "oversized")]
    )
    wait_for(
        lambda: Counter(city.quarantine()) - before == expected,
        TRAVEL,
        "the city quarantines each attack by name",
        city.quarantine,
    )
    assert city.applied()[ROGUE] == position - 1  # none of it applied
    messages = [r["message"] for r in city.query("SELECT message FROM quarantine")]
    assert any("credit_code" in m for m in messages)
    with closing_node(city) as node:  # the county's record as it was
        shown = node.show(theirs.aggregate)
    assert (shown["name"], shown["version"]) == (enterprise()["name"], 1)

    # the county registers the code; the rogue, refused, registers it in its own scope
    with closing_node(county) as node:
        registered = node.execute(
            "enterprise.register", js(enterprise(credit_code=code, division=COUNTY)), user="c"
        )
    assert registered["id"] == str(enterprise_id(code, COUNTY))
    squat = next_of(
        mine,
        key,
        aggregate=str(enterprise_id(code, ROGUE)),
        payload={**own, "credit_code": code, "division": ROGUE, "name": "抢注"},
    )
    assert publish(city, rogue, [squat]) == 1
    reaches(fed, "city", "province")
    reaches(fed, "city", "province", origin=ROGUE, size=position)
    assert province.envelopes(ROGUE)[-1] == squat
    with closing_node(city) as node:
        shown = node.show(registered["id"])
    assert (shown["division"], shown["name"]) == (COUNTY, enterprise()["name"])

    def flagged() -> list[tuple[str, str, str]]:
        with closing_node(city) as node:
            rows = node.query("duplicate_codes", Filters.parse({}, node.clock()))
        return sorted((r["division"], r["code_division"], r["id"]) for r in rows)

    wait_for(lambda: len(flagged()) == 2, TRAVEL, "the exceptions list the code twice", flagged)
    assert flagged() == [
        (COUNTY, COUNTY, registered["id"]),
        (ROGUE, COUNTY, str(enterprise_id(code, ROGUE))),  # the squatter's, flagged
    ]
    # `anjian status` at the city counts them against the rogue; nothing refused went further
    view = status(city)["federation"]
    assert view["origins"][ROGUE]["quarantined"] == 3
    assert view["origins"][COUNTY]["quarantined"] == view["origins"][COUNTY]["pending"] == 0
    assert province.quarantine() == []


def test_a_flood_of_unknown_keys_and_made_up_origins_is_bounded_and_counted(
    fed: Federation,
) -> None:
    """2,400 envelopes the rogue publishes on its own subjects: 600 under its own origin
    beyond a gap and 600 under 300 made-up origins, all signed by a key nobody certified, and
    1,200 signed with its own key under 1,200 made-up origins. The city keeps waiting no more
    than its bounds (per origin, and in all for unknown keys), quarantines no more than its
    bound, counts the rest as dropped (shown by `anjian status`), records none of the made-up
    origins as routes, and the county's next record reaches the city and the province."""
    city, rogue = fed["city"], fed["rogue"]
    nobody = SigningKey.generate()
    key = load_key(rogue.directory / "node.key")
    template = city.envelopes(ROGUE)[0]
    applied = city.applied()[ROGUE]
    flood = [  # beyond a gap at applied + 1
        forge(template, nobody, seq=applied + 2 + i, prev=bytes(32)) for i in range(600)
    ]
    for i in range(600):
        origin = f"9{i % 300:05d}"
        actor = {"user": "u", "node": origin}
        flood.append(forge(template, nobody, origin=origin, actor=actor, seq=2 + i))
    for i in range(1200):
        origin = f"8{i:05d}"
        actor = {"user": "u", "node": origin}
        flood.append(forge(template, key, origin=origin, actor=actor, seq=1, prev=bytes(32)))
    pending_sql = "SELECT COUNT(*) FROM import_pending"
    dropped_sql = "SELECT COALESCE(SUM(n), 0) FROM import_dropped"
    quarantine_sql = "SELECT COUNT(*) FROM quarantine"
    sqls = (pending_sql, dropped_sql, quarantine_sql)
    before = [scalar(city, sql) for sql in sqls]
    assert publish(city, rogue, flood) == len(flood)  # the server lets them in

    def accounted() -> int:
        return sum(scalar(city, sql) - b for sql, b in zip(sqls, before, strict=True))

    wait_for(lambda: accounted() >= len(flood), TRAVEL, "the city settles the flood", accounted)
    pending = {
        r["origin"]: r["n"]
        for r in city.query("SELECT origin, COUNT(*) AS n FROM import_pending GROUP BY origin")
    }
    assert pending.get(ROGUE, 0) <= HOLD_PER_ORIGIN
    assert sum(n for o, n in pending.items() if o != ROGUE) <= HOLD_UNKNOWN
    assert scalar(city, quarantine_sql) - before[2] <= QUARANTINED
    dropped = scalar(city, dropped_sql)
    assert dropped - before[1] >= len(flood) - HOLD_PER_ORIGIN - HOLD_UNKNOWN - QUARANTINED
    view = status(city)["federation"]
    assert view["dropped"] == dropped  # shown, not silent
    assert view["quarantined"] == scalar(city, quarantine_sql)
    routes = {r["origin"] for r in city.query("SELECT origin FROM routes")}
    assert routes <= {COUNTY, ROGUE}, routes
    register_enterprises(fed["county"], 1, start=100)
    reaches(fed, "city", "province")


# -- what the servers refuse -------------------------------------------------------------------
def test_a_message_over_the_payload_limit_is_refused_and_wedges_nothing(
    fed: Federation,
) -> None:
    """The rogue, past its client library's own check, publishes 2 MB on its own upward
    subject: the server refuses it (a maximum payload violation) and closes the connection;
    nothing reaches the stream; the node's own transport never sends such a message; the
    rogue's next message is taken, and the county's next record reaches the city and the
    province."""
    city, rogue = fed["city"], fed["rogue"]
    subject = up_subject(ROGUE, "env", ROGUE)
    before = asyncio.run(count_on(city, subject))

    async def hostile() -> tuple[str, bool]:
        nc = await nats.connect(url(city), allow_reconnect=False, **options(rogue))
        assert nc.max_payload == 1024 * 1024  # what `anjian nats config` set
        assert nc._transport is not None
        # the protocol line of a 2 MB publish, which the server judges before the payload
        nc._transport.write(f"PUB {subject} {2 * 1024 * 1024}\r\n".encode())
        await nc._transport.drain()  # type: ignore[no-untyped-call]
        for _ in range(50):
            if nc.is_closed:
                break
            await asyncio.sleep(0.1)
        closed = nc.is_closed
        if not closed:
            await nc.close()
        return str(nc.last_error), closed

    error, closed = asyncio.run(hostile())
    assert "maximum payload violation" in error.lower(), error
    assert closed  # by the server
    big = Message(subject, str(uuid.uuid4()), b"x" * (2 * 1024 * 1024))
    assert attempt(city, rogue, lambda nc: nc.publish([big], 5)) == 0  # never sent
    assert asyncio.run(count_on(city, subject)) == before
    small = Message(subject, str(uuid.uuid4()), JUNK)
    assert attempt(city, rogue, lambda nc: nc.publish([small], 5)) == 1
    register_enterprises(fed["county"], 1, start=200)
    reaches(fed, "city", "province")


def test_a_sibling_cannot_answer_into_the_countys_inbox(fed: Federation) -> None:
    """The rogue, a sibling of the county, publishes forged "applied" answers (the county at
    a billion; and a tiny max_envelope, which would block the county's uplink) into the
    county's inbox, the city's and any other: the server refuses each, a permissions
    violation naming the subject, and nothing reaches any of them.
    Asked on its own subject, the rogue is answered (the connection was not broken); the
    county's next record reaches the city and the province."""
    city, county, rogue = fed["city"], fed["county"], fed["rogue"]
    forged = [
        msgpack.packb({COUNTY: [10**9, 10**9]}),
        msgpack.packb({"applied": {COUNTY: [10**9, 10**9]}, "max_envelope": 4096}),
    ]
    targets = [f"_INBOX.{COUNTY}.forged", f"_INBOX.{COUNTY}.x.y", f"_INBOX.{CITY}.x", "_INBOX.x"]

    async def run() -> tuple[list[str], list[bytes], bytes]:
        errors: list[str] = []
        heard: list[bytes] = []

        async def noted(e: Exception) -> None:
            errors.append(str(e))

        async def hear(msg: Any) -> None:
            heard.append(msg.data)

        # listening as the tier's own node, which may subscribe to anything: each target
        listener = await nats.connect(url(city), allow_reconnect=False, **options(city))
        nc = await nats.connect(url(city), allow_reconnect=False, error_cb=noted, **options(rogue))
        try:
            for subject in targets:
                await listener.subscribe(subject, cb=hear)
            await listener.flush(2)
            for subject in targets:
                for answer in forged:
                    await nc.publish(subject, answer)
            await nc.flush(2)
            await asyncio.sleep(0.5)
            own = await nc.request(f"anjian.applied.{ROGUE}", ROGUE.encode(), timeout=5)
        finally:
            await nc.close()
            await listener.close()
        return errors, heard, own.data

    errors, heard, own = asyncio.run(run())
    assert heard == []
    said = " ".join(errors).lower()
    for subject in targets:
        assert f'publish to "{subject.lower()}"' in said, errors
    assert errors and all("permissions violation" in e.lower() for e in errors)
    assert ROGUE in msgpack.unpackb(own)
    register_enterprises(county, 1, start=300)
    reaches(fed, "city", "province")


def test_the_backup_centres_identity_reads_the_archive_and_nothing_else(fed: Federation) -> None:
    """At the national centre the backup centre's NATS identity reads ANJIAN_ARCHIVE through
    its own durable consumer. Publishing upward or into the archive, looking at the upward
    stream, deleting or purging a stream, making another consumer (on the archive, the upward
    or the downward stream), reading the receiver's, or asking as a child are each refused,
    naming it; the archive is the same stream after. At the province it is no one."""
    national, backup = fed["national"], fed["backup"]
    mine = ConsumerSpec(ARCHIVE, backup_durable("backup"), "anjian.archive.>")

    async def read(nc: Connection) -> list[str]:
        consumer = await nc.consumer(mine)
        return [d.subject for d in await consumer.fetch(10, 2)]

    wait_for(
        lambda: attempt(national, national, lambda nc: nc.stream_info(ARCHIVE)) is not None,
        TRAVEL,
        "the national centre makes its archive",
    )
    archive = attempt(national, national, lambda nc: nc.stream_info(ARCHIVE))
    subjects = attempt(national, backup, read)
    assert subjects and all(s.startswith("anjian.archive.") for s in subjects)
    assert attempt(national, backup, lambda nc: nc.stream_info(ARCHIVE)) is not None
    for subject in (up_subject("backup", "env", "backup"), "anjian.archive.env.000000"):
        message = Message(subject, str(uuid.uuid4()), JUNK)
        refused(national, backup, lambda nc, m=message: nc.publish([m], 5), subject)  # type: ignore[misc]
    refused(national, backup, lambda nc: nc.stream_info(UP), "$JS.API.STREAM.INFO.ANJIAN_UP")
    for spec in (
        ConsumerSpec(ARCHIVE, "anjian-backup-other", "anjian.archive.>"),
        ConsumerSpec(UP, "anjian-receiver", "anjian.up.>"),
        ConsumerSpec(UP, backup_durable("backup"), "anjian.up.>"),
        ConsumerSpec(DOWN, "anjian-down-backup", "anjian.down.>"),
    ):
        refused(national, backup, lambda nc, s=spec: nc.consumer(s), spec.durable)  # type: ignore[misc]
    subjects = [
        "$JS.API.STREAM.DELETE.ANJIAN_ARCHIVE",
        "$JS.API.STREAM.PURGE.ANJIAN_ARCHIVE",
        "$JS.API.STREAM.DELETE.ANJIAN_UP",
        "$JS.API.CONSUMER.MSG.NEXT.ANJIAN_UP.anjian-receiver",
        "$JS.API.CONSUMER.DELETE.ANJIAN_UP.anjian-receiver",
        "anjian.applied.backup",
        "anjian.history.backup",
    ]
    each_refused_by_name(national, backup, subjects)
    after = attempt(national, national, lambda nc: nc.stream_info(ARCHIVE))
    assert archive is not None and after is not None and after.created == archive.created
    assert after.messages >= archive.messages
    assert attempt(national, backup, read) is not None  # still its own to read
    assert not can_connect(fed["province"], backup)


def test_a_county_of_another_subtree_can_touch_nothing_at_the_province(fed: Federation) -> None:
    """The stranger (certified by the province, not under the city) at the province's server:
    the upward stream's information, deletion and purge, the receiver's durable consumer
    (made, read, acknowledged, deleted), and the county's upward subjects (as the city relays
    them, and the county's own) are each refused, naming what; the province's stream is the
    same one after."""
    province, stranger = fed["province"], fed["stranger"]
    before = attempt(province, province, lambda nc: nc.stream_info(UP))
    refused(province, stranger, lambda nc: nc.stream_info(UP), "$JS.API.STREAM.INFO.ANJIAN_UP")
    receiver = ConsumerSpec(UP, "anjian-receiver", "anjian.up.>")
    refused(province, stranger, lambda nc: nc.consumer(receiver), "anjian-receiver")
    refused(province, stranger, lambda nc: nc.delete_consumer(UP, "anjian-receiver"), "DELETE")
    for subject in (up_subject(CITY, "env", COUNTY), up_subject(COUNTY, "env", COUNTY)):
        message = Message(subject, f"{COUNTY}:999", JUNK)
        refused(province, stranger, lambda nc, m=message: nc.publish([m], 5), subject)  # type: ignore[misc]
    subjects = [
        "$JS.API.STREAM.DELETE.ANJIAN_UP",
        "$JS.API.STREAM.PURGE.ANJIAN_UP",
        "$JS.API.CONSUMER.CREATE.ANJIAN_UP.anjian-receiver.anjian.up.>",
        "$JS.API.CONSUMER.MSG.NEXT.ANJIAN_UP.anjian-receiver",
        "$JS.ACK.ANJIAN_UP.anjian-receiver.1.1.1.0.0",
    ]
    each_refused_by_name(province, stranger, subjects)
    after = attempt(province, province, lambda nc: nc.stream_info(UP))
    assert before is not None and after is not None and after.created == before.created
    assert after.messages >= before.messages


def test_the_history_service_answers_a_child_only_for_what_it_relays(
    fed: Federation,
) -> None:
    """The county, asking the city on its own history subject (which the server lets it), is
    given the origins it relays (itself alone) and its own envelopes; for its sibling's
    origin, the city's own, or a made-up one of the flood, an error naming it and nothing of
    that origin."""
    city, county = fed["city"], fed["county"]
    requests: list[dict[str, Any]] = [
        {"origin": None},
        {"origin": COUNTY, "after": 0},
        {"origin": ROGUE, "after": 0},
        {"origin": CITY, "after": 0},
        {"origin": "900002", "after": 0},
    ]

    async def ask(nc: Connection) -> list[dict[str, Any]]:
        answers = []
        for request in requests:
            reply = await nc.request(history_subject(COUNTY), msgpack.packb(request), 5)
            answers.append(msgpack.unpackb(reply))
        return answers

    listing, own, *others = attempt(city, county, ask)
    assert set(listing["origins"]) == {COUNTY}
    assert own["envelopes"] and own["envelopes"] == city.envelopes(COUNTY)[: len(own["envelopes"])]
    for answer, origin in zip(others, (ROGUE, CITY, "900002"), strict=True):
        assert set(answer) == {"error"}, answer
        assert f"relays no origin '{origin}'" in answer["error"], answer


def test_a_county_cannot_hold_anothers_envelopes_by_taking_their_ids(
    fed: Federation,
) -> None:
    """JetStream drops a message whose id (``Nats-Msg-Id``) it has seen within the stream's
    duplicate window (30 s), whatever the subject. Were ids ``<origin>:<seq>``, anyone could
    compute those of the county's next envelopes, publish junk under them on its own subject,
    and have the county's genuine envelopes dropped as duplicates for as long as it repeats
    it. An id begins with the digest of the message's exact bytes (federation.transport.
    envelope_id), which no one has before the county signs them: the rogue's ids, in the old
    form and in the new with the digest of what it has, take nothing, and the county's
    envelopes reach the city as they always do."""
    city, county, rogue = fed["city"], fed["county"], fed["rogue"]
    with closing_node(county) as node:
        next_seq = node.log.tree()[0] + 1
    ids = [f"{COUNTY}:{next_seq + i}" for i in range(3)]
    ids += [envelope_id(COUNTY, next_seq + i, JUNK) for i in range(3)]
    assert publish(city, rogue, [JUNK] * len(ids), ids) == len(ids)
    register_enterprises(county, 2, start=400)
    wait_for(
        lambda: city.applied().get(COUNTY) == county.applied().get(COUNTY),
        15,  # 1-3 s idle; a duplicate window held is 30 s at least
        "the county's envelopes reach the city though their ids were published first",
        lambda: (city.applied(), county.applied()),
    )
