"""Who may do what on a tier's NATS (docs/architecture.md §6), against real nats-server processes
configured by `anjian nats config`'s code and real `anjian serve` nodes: an anonymous client, a
certified county of another subtree, a sibling and a child are each refused what is not theirs,
each refusal a clear error naming it, while the federation's own traffic flows; and a county
certified while its tier runs gets in after the reload, and is shut out once revoked."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import nats
import pytest
from click.testing import CliRunner

from federation.envelope import parse
from federation.jetstream import NATSTransport
from federation.keys import certify, revoke
from federation.nkey import generate_seed
from federation.suite import load_key, load_public
from federation.transport import (
    DOWN,
    DOWN_ALL,
    UP,
    Connection,
    ConsumerSpec,
    Credentials,
    Message,
    Refused,
    down_area,
    up_subject,
)
from node import config as config_mod
from node.cli.main import main
from node.keys import credentials, read_nats_public
from node.replication.importer import Importer
from tests.conftest import make_node_dir
from tests.integration.federation import (
    Federation,
    Member,
    closing_node,
    register_enterprises,
    wait_for,
)
from tests.node.test_rules_across_records import application

# the federation's start (120 s at most, 10-20 s on a busy machine) counts to the first test
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

LAYOUT = [
    ("province", "province", "130000", None),
    ("city", "city", "130100", "province"),
    ("county", "county", "130102", "city"),
    ("sibling", "county", "130104", "city"),  # certified, not running: its identity is used
    ("stranger", "county", "130203", "province"),  # another subtree (reports to the province)
]


@pytest.fixture(scope="module")
def fed(tmp_path_factory):
    f = Federation(tmp_path_factory.mktemp("auth"), LAYOUT)
    try:
        f.start("province", "city", "county")
        yield f
    finally:
        f.close()


def who(member: Member | None) -> Credentials:
    """A member's credentials (its certified NATS identity); None: anonymous."""
    if member is None:
        return Credentials()
    return credentials(config_mod.load(member.directory, environ={}))


def attempt(server: Member, member: Member | None, act: Callable[[Connection], Awaitable[Any]]):
    """Connect to ``server``'s NATS as ``member``, do ``act`` on a fresh connection; its result."""

    async def run() -> Any:
        nc = await NATSTransport().connect(server.nats.url, "test", who(member))
        try:
            return await act(nc)
        finally:
            await nc.close()

    return asyncio.run(run())


def refused(server: Member, member: Member | None, act, match: str) -> str:
    """``act`` is refused, with an error naming ``match`` (the server's words come lower-cased
    through the driver); the error's text."""
    with pytest.raises(Refused, match=f"(?i){re.escape(match)}") as e:
        attempt(server, member, act)
    return str(e.value)


def connected(server: Member, member: Member | None) -> bool:
    async def nothing(nc: Connection) -> None:
        return None

    try:
        attempt(server, member, nothing)
    except Refused:
        return False
    return True


def test_good_traffic_flows_up_and_down(fed):
    """A record at the county reaches the province; a licence of the county's area and the
    province's key documents come down to it: its uplink and downward consumers work within
    their permissions."""
    register_enterprises(fed["county"], 5)
    with closing_node(fed["province"]) as province:  # licences: one of each county's area
        mine = province.execute("licence.apply", application("130102"), user="li")["id"]
        province.execute("licence.apply", application("130104"), user="li")
    wait_for(
        lambda: fed["province"].applied().get("130102") == 5,
        60,
        "the county's records reach the province",
        lambda: fed["province"].applied(),
    )

    def came_down(kind: str) -> list[Any]:
        return fed["county"].query(
            "SELECT * FROM downward WHERE verified > 0 AND type = ?", (kind,)
        )

    wait_for(lambda: came_down("licence.applied/1"), 60, "the county's licence comes down")
    licences = came_down("licence.applied/1")
    assert {r["division"] for r in licences} == {"130102"}  # the other area's never reached it
    assert {parse(bytes(r["raw"])).aggregate for r in licences} == {mine}
    wait_for(  # the certifications above it
        lambda: (
            {r["origin"] for r in came_down("keys.document_recorded/1")} >= {"130000", "130100"}
        ),
        60,
        "the key documents of the city and the province come down",
    )
    assert fed["county"].quarantine() == [] and fed["city"].quarantine() == []


def test_anonymous_and_unknown_clients_are_refused(fed):
    for tier in ("city", "province"):
        text = refused(fed[tier], None, lambda nc: nc.stream_info(UP), "Authorization Violation")
        assert "nats.pub" in text  # says what to do
        stranger = Credentials(seed=generate_seed(), inbox="_INBOX.x")  # a key nobody certified
        with pytest.raises(Refused, match="Authorization Violation"):
            asyncio.run(NATSTransport().connect(fed[tier].nats.url, "test", stranger))
    # certified, but not of the city's area: the city's server does not know it
    assert not connected(fed["city"], fed["stranger"])
    assert connected(fed["province"], fed["stranger"])  # its own parent's does


def test_a_node_of_another_subtree_reaches_nothing_of_others(fed):
    province, stranger = fed["province"], fed["stranger"]
    refused(
        province,
        stranger,
        lambda nc: nc.request("anjian.history.130100", b"\x81\xa6origin\xc0", 2),
        "anjian.history.130100",
    )
    refused(province, stranger, lambda nc: nc.request("anjian.applied.130100", b"", 2), "applied")
    forged = [Message(up_subject("130100", "env", "130100"), "130100:999", b"x")]
    refused(province, stranger, lambda nc: nc.publish(forged, 5), "anjian.up.130100")


def test_a_child_cannot_act_for_its_sibling(fed):
    city, sibling = fed["city"], fed["sibling"]
    refused(
        city,
        sibling,
        lambda nc: nc.request("anjian.history.130102", b"\x81\xa6origin\xc0", 2),
        "anjian.history.130102",
    )
    refused(city, sibling, lambda nc: nc.request("anjian.applied.130102", b"", 2), "130102")
    forged = [Message(up_subject("130102", "env", "130102"), "130102:999", b"x")]
    refused(city, sibling, lambda nc: nc.publish(forged, 5), "anjian.up.130102")
    # the county's downward consumers, or one of its own with the county's area
    theirs = ConsumerSpec(DOWN, "anjian-down-130102-area", down_area("130102"))
    refused(city, sibling, lambda nc: nc.consumer(theirs), "anjian-down-130102-area")
    wider = ConsumerSpec(DOWN, "anjian-down-130104-area", down_area("130102"))
    refused(city, sibling, lambda nc: nc.consumer(wider), "13.1301.130102")
    everything = ConsumerSpec(DOWN, "anjian-down-130104-area", "anjian.down.>")
    refused(city, sibling, lambda nc: nc.consumer(everything), "anjian.down")
    # what is its own works
    mine = ConsumerSpec(DOWN, "anjian-down-130104", DOWN_ALL)
    assert attempt(city, sibling, lambda nc: nc.consumer(mine)) is not None
    own = [Message(up_subject("130104", "cp", "130104"), "130104:cp:0", b"not a checkpoint")]
    assert attempt(city, sibling, lambda nc: nc.publish(own, 5)) == 1


def test_a_child_cannot_touch_streams_answer_for_its_tier_or_take_the_receivers_messages(fed):
    city, county = fed["city"], fed["county"]
    before = attempt(city, city, lambda nc: nc.stream_info(UP))
    # answering in the tier's name: a subscription to what the tier answers
    for subject in ("anjian.applied.*", "anjian.history.*", "anjian.up.>", "anjian.applied.130104"):
        refused(city, county, lambda nc, s=subject: nc.serve(s, _answer), "subscription")
    # the receiver's durable consumer: looked at, made, read
    receiver = ConsumerSpec(UP, "anjian-receiver", "anjian.up.>")
    refused(city, county, lambda nc: nc.consumer(receiver), "anjian-receiver")
    refused(city, county, lambda nc: nc.consumer(ConsumerSpec(DOWN, "x", "anjian.down.>")), "x")
    refused(city, county, lambda nc: nc.delete_consumer(UP, "anjian-receiver"), "DELETE")
    # the JetStream API itself, as any client library would call it
    violations = asyncio.run(_raw_attempts(city, county))
    for subject in (
        "$js.api.stream.delete.anjian_up",
        "$js.api.stream.purge.anjian_up",
        "$js.api.stream.update.anjian_up",
        "$js.api.consumer.msg.next.anjian_up.anjian-receiver",
        "$js.ack.anjian_up.anjian-receiver.1.1.1.0.0",
        "$js.api.consumer.create.anjian_down",
    ):
        assert any(subject in v.lower() for v in violations), (subject, violations)
    after = attempt(city, city, lambda nc: nc.stream_info(UP))
    assert after is not None and after.created == before.created  # the same stream, still there
    assert after.messages >= before.messages


async def _answer(subject: str, data: bytes) -> bytes:
    return b"\x80"  # "nothing applied": what a forger would answer


async def _raw_attempts(server: Member, member: Member) -> list[str]:
    """What the server refuses of a child calling the JetStream API directly."""
    errors: list[str] = []

    async def noted(e: Exception) -> None:
        errors.append(str(e))

    nc = await nats.connect(
        server.nats.url, allow_reconnect=False, error_cb=noted, **member.nats_options()
    )
    try:
        js_ = nc.jetstream(timeout=1)
        for call in (
            js_.delete_stream(UP),
            js_.purge_stream(UP),
            js_.update_stream(name=UP, subjects=["anjian.>"]),
            js_.add_consumer(DOWN, deliver_policy=None),  # an ephemeral one: any filter
        ):
            with pytest.raises(Exception):  # noqa: B017 (a timeout: the server answers nothing)
                await call
        await nc.publish("$JS.API.CONSUMER.MSG.NEXT.ANJIAN_UP.anjian-receiver", b"10")
        await nc.publish("$JS.ACK.ANJIAN_UP.anjian-receiver.1.1.1.0.0", b"+ACK")
        await nc.flush(2)
        await asyncio.sleep(0.3)
    finally:
        await nc.close()
    return errors


def test_a_county_certified_while_its_tier_runs_gets_in_and_is_shut_out_once_revoked(fed, tmp_path):
    city = fed["city"]
    late_dir = make_node_dir(tmp_path / "late", "county", "130105")
    late = Member("late", "county", "130105", late_dir, city)
    assert not connected(city, late)  # not certified yet
    city_key = load_key(city.directory / "node.key")
    with closing_node(city) as node:  # the city certifies it while it serves
        cert = certify(
            city_key,
            "130100",
            origin="130105",
            region="130105",
            tier="county",
            public=load_public(late_dir / "node.pub"),
            nats=read_nats_public(late_dir / "nats.pub"),
            at_seq=node.log.tree()[0] + 1,
        )
        node.record_key_document(cert, user="admin")
    # its serving node rewrites the authorisation and has the server reload it
    wait_for(lambda: connected(city, late), 30, "the new county gets in after the reload")

    async def held_open() -> Connection:
        nc = await NATSTransport().connect(city.nats.url, "late", who(late))
        await nc.request("anjian.applied.130105", b"130105", 5)  # its own: answered
        return nc

    loop = asyncio.new_event_loop()
    try:
        open_nc = loop.run_until_complete(held_open())
        with closing_node(city) as node:
            gone = revoke(
                city_key,
                "130100",
                origin="130105",
                key=load_key(late_dir / "node.key").key_id,
                last_seq=0,
                at_seq=node.log.tree()[0] + 1,
            )
            node.record_key_document(gone, user="admin")
        wait_for(lambda: not connected(city, late), 30, "the revoked county is refused")

        async def still() -> None:
            await open_nc.request("anjian.applied.130105", b"130105", 5)

        # the connection it had is closed by the reload, and its next attempt refused
        wait_for(lambda: _raises_refused(loop, still), 30, "its open connection is refused")
        loop.run_until_complete(open_nc.close())
    finally:
        loop.close()
    # `anjian nats config` writes what the serving node wrote: the same file, unchanged
    r = CliRunner().invoke(main, ["nats", "config", str(city.directory)])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["changed"] is False
    assert {"origin": "130105", "reason": "every key of it is revoked"} in report["left_out"]
    assert [u["origin"] for u in report["users"]] == ["130100", "130102", "130104"]


def _raises_refused(loop: asyncio.AbstractEventLoop, call: Callable[[], Awaitable[Any]]) -> bool:
    try:
        loop.run_until_complete(call())
    except Refused:
        return True
    except Exception:
        return False
    return False


def test_a_revocation_comes_down_while_children_try_junk_at_its_downward_positions(fed):
    """A certified child (and its sibling) publishing junk on the tier's downward stream, at the
    very positions the tier publishes next, is refused by the server; the revocation the tier
    then records reaches the county, verified, and its trust ends the revoked key. (Runs last:
    it revokes the sibling's key.)"""
    city, county, sibling = fed["city"], fed["county"], fed["sibling"]
    with closing_node(city) as node:
        next_seq = node.log.tree()[0] + 1
    junk = b"\x92\x01\x02"
    for member in (county, sibling):
        for seq in (next_seq, next_seq + 1):
            message = Message("anjian.down.env.130100.all", f"130100:{seq}", junk)
            refused(city, member, lambda nc, m=message: nc.publish([m]), "anjian.down")
    sibling_key = load_key(sibling.directory / "node.key").key_id
    city_key = load_key(city.directory / "node.key")
    with closing_node(city) as node:
        gone = revoke(
            city_key, "130100", origin="130104", key=sibling_key, last_seq=0, at_seq=next_seq
        )
        node.record_key_document(gone, user="admin")

    def revoked_at_the_county() -> bool:
        with closing_node(county) as node:
            kept = node.log.query(
                "SELECT raw FROM downward WHERE origin = '130100' AND type = ?",
                ("keys.document_recorded/1",),
            )
            trust = Importer(node).trust()
        came = any(parse(bytes(r["raw"])).payload["subject_key"] == sibling_key for r in kept)
        ended = any(
            g.origin == "130104" and g.key_id == sibling_key and g.until_seq == 0
            for g in trust.grants
        )
        return came and ended

    wait_for(revoked_at_the_county, 60, "the revocation reaches the county, verified")
    with closing_node(county) as node:  # nothing but what the city signed took a position
        rows = node.log.query("SELECT raw FROM downward WHERE origin = '130100'")
    assert all(bytes(r["raw"]) != junk for r in rows)


def test_the_tier_answers_only_into_the_askers_own_inbox(fed):
    """A child asking with a reply subject of its choosing (its sibling's upward stream) would
    have the tier publish there in its name: the tier does not answer; asked properly, it does."""
    city, county = fed["city"], fed["county"]
    target = "anjian.up.130104.env.130104"

    async def ask() -> tuple[int, bool]:
        nc = await nats.connect(city.nats.url, allow_reconnect=False, **county.nats_options())
        try:
            before = await _count(city, target)
            await nc.publish("anjian.applied.130102", b"130102", reply=target)
            await nc.publish("anjian.history.130102", b"\x81\xa6origin\xc0", reply=target)
            await nc.flush(2)
            await asyncio.sleep(1.0)
            answered = await nc.request("anjian.applied.130102", b"130102", timeout=5)
            return await _count(city, target) - before, bool(answered.data)
        finally:
            await nc.close()

    grown, answered = asyncio.run(ask())
    assert grown == 0 and answered


async def _count(server: Member, subject: str) -> int:
    nc = await nats.connect(server.nats.url, allow_reconnect=False, **server.nats_options())
    try:
        info = await nc.jetstream().stream_info(UP, subjects_filter=subject)
        return int((info.state.subjects or {}).get(subject, 0))
    finally:
        await nc.close()
