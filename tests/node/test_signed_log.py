"""The signed log on a real node database: envelopes made in the same transaction as the
events, checkpoints, and `anjian audit verify` naming each kind of tampering."""

import json
import sqlite3

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.canonical import decode, encode
from federation.envelope import check_signature, parse, seal
from federation.errors import VerificationError
from federation.suite import SigningKey, key_id, load_key, load_public
from node import config as config_mod
from node.cli.main import main
from node.service import Node
from tests.factories import accident, credit_code, enterprise, js


@pytest.fixture
def county(node_dir, clock):
    node = Node(config_mod.load(node_dir, environ={}), clock=clock)
    for i in range(3):
        node.execute(
            "enterprise.register", js(enterprise(credit_code=credit_code(i))), user="zhang"
        )
    a = node.execute("accident.report", js(accident(deaths=1)), user="li")
    node.execute(
        "accident.supplement", js({"deaths": 2, "expected_version": 1}), user="li", target=a["id"]
    )
    node.close()  # signs the closing checkpoint
    return node_dir


def audit(directory, *extra):
    r = CliRunner().invoke(
        main,
        ["audit", "verify", str(directory), "--key", str(directory / "node.pub"), "--json", *extra],
    )
    return r.exit_code, json.loads(r.stdout)


def db(directory):
    return sqlite3.connect(directory / "events.db", isolation_level=None)


def test_every_event_has_its_envelope_and_the_log_verifies(county):
    rows = db(county).execute("SELECT seq, raw FROM envelopes ORDER BY seq").fetchall()
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5]
    env = parse(rows[4][1])
    assert (env.type, env.version, env.actor["user"], env.payload["changes"]) == (
        "accident.supplemented/1",
        2,
        "li",
        {"deaths": 2},
    )
    check_signature(env, load_public(county / "node.pub"))
    code, report = audit(county)
    assert code == 0 and report["ok"] and report["events_checked"] == 5
    assert report["origins"][0]["checkpoints"] == 1
    assert (county / "node.key").stat().st_mode & 0o777 == 0o600


def first_failure(directory):
    code, report = audit(directory)
    assert code == 1 and not report["ok"]
    f = report["failures"][0]
    return f["reason"], f["seq"]


def rewrite(directory, seq, change):
    con = db(directory)
    raw = bytes(con.execute("SELECT raw FROM envelopes WHERE seq = ?", (seq,)).fetchone()[0])
    con.execute("UPDATE envelopes SET raw = ? WHERE seq = ?", (change(raw), seq))


def test_a_byte_of_a_stored_payload_changed(county):
    con = db(county)
    rowid, state = con.execute("SELECT rowid, state FROM stored_events WHERE rowid = 2").fetchone()
    con.execute(
        "UPDATE stored_events SET state = ? WHERE rowid = ?",
        (state.replace(b"zhang", b"zhanG"), rowid),
    )
    assert first_failure(county) == ("event_differs", 2)


def test_a_byte_of_an_envelope_changed(county):
    rewrite(county, 3, lambda raw: raw.replace(b"zhang", b"zhanG"))
    assert first_failure(county) == ("bad_signature", 3)


def test_an_event_deleted_from_the_middle(county):
    con = db(county)
    con.execute("DELETE FROM envelopes WHERE seq = 3")
    con.execute("DELETE FROM stored_events WHERE rowid = 3")
    assert first_failure(county) == ("sequence_gap", 3)


def test_two_events_swapped(county):
    con = db(county)
    a, b = (
        bytes(con.execute("SELECT raw FROM envelopes WHERE seq = ?", (s,)).fetchone()[0])
        for s in (2, 3)
    )
    con.execute("UPDATE envelopes SET raw = ? WHERE seq = 2", (b,))
    con.execute("UPDATE envelopes SET raw = ? WHERE seq = 3", (a,))
    assert first_failure(county) == ("sequence_gap", 2)


def test_a_signature_replaced(county):
    def other_signature(raw):
        body = decode(raw)
        body["sig"] = bytes(64)
        return encode(body)

    rewrite(county, 4, other_signature)
    assert first_failure(county) == ("bad_signature", 4)


def test_an_event_re_signed_with_an_uncertified_key(county):
    intruder = SigningKey.generate()

    def resign(raw):
        env = parse(raw)
        return seal(
            intruder,
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

    rewrite(county, 2, resign)
    assert first_failure(county) == ("unknown_key", 2)


def after_in_another_origin(last_raw: bytes, key) -> bytes:
    """The envelope after ``last_raw``, signed by its node's key but in another origin's name."""
    last = parse(bytes(last_raw))
    return seal(
        key,
        origin="130103",
        seq=last.seq + 1,
        prev=last.hash,
        at=last.at,
        type=last.type,
        aggregate=last.aggregate,
        version=last.version + 1,
        actor={**last.actor, "node": "130103"},
        payload=last.payload,
    )


def test_an_event_for_another_origin_inserted(county):
    con = db(county)
    last = con.execute("SELECT raw FROM envelopes WHERE seq = 5").fetchone()[0]
    forged = after_in_another_origin(last, load_key(county / "node.key"))
    con.execute(
        "INSERT INTO envelopes (origin, seq, hash, raw) VALUES ('130102', 6, x'00', ?)", (forged,)
    )
    assert first_failure(county) == ("wrong_origin", 6)


def test_a_truncated_log_is_caught_by_its_checkpoint(county):
    con = db(county)
    con.execute("DELETE FROM envelopes WHERE seq = 5")
    con.execute("DELETE FROM stored_events WHERE rowid = 5")
    assert first_failure(county) == ("truncated", 5)


def test_fast_verification_still_checks_checkpoints(county):
    code, report = audit(county, "--fast")
    assert code == 0 and report["signatures"] == "by checkpoint only"
    con = db(county)
    con.execute("UPDATE checkpoints SET note = replace(note, '\n5\n', '\n4\n')")
    code, report = audit(county, "--fast")
    assert code == 1 and report["failures"][0]["reason"] == "bad_checkpoint_signature"


def test_the_wrong_pinned_key_fails_everything(county, tmp_path):
    from federation.suite import public_pem

    other = tmp_path / "other.pub"
    other.write_bytes(public_pem(SigningKey.generate().public))
    r = CliRunner().invoke(main, ["audit", "verify", str(county), "--key", str(other)])
    assert r.exit_code == 1 and "unknown_key" in r.stderr


KEY = SigningKey.generate()
SEALED = seal(
    KEY,
    origin="130102",
    seq=7,
    prev=bytes(32),
    at=1_795_939_200_000,
    type="accident.reported/1",
    aggregate="6333e143-bf7c-4588-9eb5-17c59e8638b9",
    version=1,
    actor={"user": "zhang", "node": "130102"},
    payload={"deaths": 3, "place": "一号井"},
)


@settings(max_examples=300)
@given(st.integers(0, len(SEALED) - 1), st.integers(1, 255))
def test_no_single_byte_change_still_verifies(position, delta):
    changed = bytearray(SEALED)
    changed[position] = (changed[position] + delta) % 256
    with pytest.raises(VerificationError):
        check_signature(parse(bytes(changed)), KEY.public)
    assert key_id(KEY.public) == parse(SEALED).key


@given(
    st.dictionaries(
        st.text(max_size=6),
        st.integers(-(2**40), 2**40) | st.text(max_size=8) | st.none(),
        max_size=8,
    )
)
def test_the_recorders_fast_seal_gives_the_same_bytes_as_seal(payload):
    import json

    from federation.envelope import no_float, seal_sorted, sorted_map

    fields = dict(
        origin="130102",
        seq=3,
        prev=bytes(32),
        at=1,
        type="x.y/1",
        aggregate="a",
        version=1,
        actor={"user": "u", "node": "130102"},
    )
    state = {"actor": fields.pop("actor"), "payload": payload}  # as stored: JSON
    via_json = json.loads(json.dumps(state), object_pairs_hook=sorted_map, parse_float=no_float)
    assert seal_sorted(KEY, **via_json, **fields) == seal(KEY, **state, **fields)


def test_fast_verification_checks_signatures_no_checkpoint_covers(county):
    def flip_last_signature_byte(raw):
        body = decode(raw)
        body["sig"] = body["sig"][:-1] + bytes([body["sig"][-1] ^ 1])
        return encode(body)

    rewrite(county, 5, flip_last_signature_byte)
    db(county).execute("DELETE FROM checkpoints WHERE size = 5")
    code, report = audit(county, "--fast")
    assert code == 1 and (report["failures"][0]["reason"], report["failures"][0]["seq"]) == (
        "bad_signature",
        5,
    )


def test_the_audit_reads_either_store(load_config, clock):
    """SQLite and PostgreSQL nodes are audited alike, read-only, without the private key."""
    from federation.verify import Grant, Trust
    from node.audit.verify import audit_node

    node = Node(load_config(), clock=clock)
    node.execute("enterprise.register", js(enterprise()), user="zhang")
    node.execute("accident.report", js(accident()), user="zhang")
    public = node.key.public
    node.close()
    config = load_config()
    report = audit_node(config, Trust([Grant(config.node.origin, public, key_id(public))]))
    assert (
        report["ok"] and report["events_checked"] == 2 and report["origins"][0]["checkpoints"] == 1
    )
