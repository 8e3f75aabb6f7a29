"""`anjian audit export` and `anjian audit verify` on an export: self-contained (nothing but the
root public key), restricted by region and time, every kind of tampering named, and the same
report whether one process or several check it."""

import json
import shutil
import sqlite3

import pytest
from click.testing import CliRunner

from federation.canonical import decode, encode
from federation.envelope import parse, seal
from federation.suite import SigningKey, load_key, public_pem
from node import config as config_mod
from node.audit import verify as audit_mod
from node.cli.main import main
from node.service import Node
from tests.factories import accident, credit_code, enterprise, js
from tests.node.test_signed_log import after_in_another_origin


def cli(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    return r


def exported(county, tmp_path, *extra):
    out = tmp_path / "county.anjian"
    r = cli("audit", "export", county, "--out", out, *extra)
    assert r.exit_code == 0, r.output
    return out, json.loads(r.stdout)


def verify(source, tmp_path, *extra):
    r = cli("audit", "verify", source, "--root-key", tmp_path / "root.pub", "--json", *extra)
    report = json.loads(r.stdout)
    assert r.exit_code == (0 if report["ok"] else 1)
    return report


def test_an_export_verifies_with_only_the_root_key(county, tmp_path):
    out, summary = exported(county, tmp_path)
    assert summary["envelopes"] == 5 and summary["origins"] == 1
    moved = tmp_path / "elsewhere" / "x.anjian"  # nothing of the node is needed
    moved.parent.mkdir()
    shutil.move(out, moved)
    shutil.rmtree(county)
    report = verify(moved, tmp_path)
    assert report["ok"] and report["source"] == "export"
    assert (report["events_checked"], report["origins_checked"], report["checkpoints_checked"]) == (
        5,
        1,
        1,
    )
    assert verify(moved, tmp_path, "--fast")["signatures"] == "by checkpoint only"


def test_the_wrong_root_key_fails(county, tmp_path):
    out, _ = exported(county, tmp_path)
    (tmp_path / "root.pub").write_bytes(public_pem(SigningKey.generate().public))
    report = verify(out, tmp_path)
    assert not report["ok"] and report["failures"][0]["reason"] == "unknown_key"


def test_an_export_is_not_overwritten_and_bad_sources_are_named(county, tmp_path):
    out, _ = exported(county, tmp_path)
    before = out.read_bytes()
    r = cli("audit", "export", county, "--out", out)
    assert r.exit_code == 1 and "exists" in r.stderr and out.read_bytes() == before
    junk = tmp_path / "junk.anjian"
    junk.write_bytes(b"not an export")
    r = cli("audit", "verify", junk, "--root-key", tmp_path / "root.pub")
    assert r.exit_code == 1 and "not an anjian export" in r.stderr
    r = cli("audit", "export", county, "--out", tmp_path / "y", "--until", "yesterday")
    assert r.exit_code == 2 and "--until" in r.stderr and not (tmp_path / "y").exists()


def test_region_and_until_select_whole_prefixes(county, tmp_path):
    out, summary = exported(county, tmp_path, "--region", "130200")
    assert summary["origins"] == 0 and summary["envelopes"] == 0
    out.unlink()
    _, summary = exported(county, tmp_path, "--region", "130000")
    assert summary["envelopes"] == 5
    db = sqlite3.connect(tmp_path / "county.anjian")
    third = parse(db.execute("SELECT raw FROM envelopes WHERE seq = 3").fetchone()[0]).at
    db.close()
    (tmp_path / "county.anjian").unlink()
    out, summary = exported(county, tmp_path, "--until", str(third))
    assert summary["envelopes"] == 3
    report = verify(out, tmp_path)
    assert report["ok"] and report["events_checked"] == 3
    assert report["checkpoints_checked"] == 0  # the only checkpoint covers five


def _resign(raw):
    env = parse(raw)
    fields = {k: getattr(env, k) for k in ("origin", "seq", "prev", "at", "type", "aggregate")}
    return seal(
        SigningKey.generate(),
        **fields,
        version=env.version,
        actor=env.actor,
        payload=env.payload,
    )


def _zero_signature(raw):
    body = decode(raw)
    body["sig"] = bytes(64)
    return encode(body)


def _edit(db, seq, change):
    raw = bytes(db.execute("SELECT raw FROM envelopes WHERE seq = ?", (seq,)).fetchone()[0])
    db.execute("UPDATE envelopes SET raw = ? WHERE seq = ?", (change(raw), seq))


def _swap(db):
    a, b = (
        db.execute("SELECT raw FROM envelopes WHERE seq = ?", (s,)).fetchone()[0] for s in (2, 3)
    )
    db.execute("UPDATE envelopes SET raw = ? WHERE seq = 2", (b,))
    db.execute("UPDATE envelopes SET raw = ? WHERE seq = 3", (a,))


def _other_origin(db, county):
    last = db.execute("SELECT raw FROM envelopes WHERE seq = 5").fetchone()[0]
    forged = after_in_another_origin(last, load_key(county / "node.key"))
    db.execute("INSERT INTO envelopes VALUES ('130102', 6, ?)", (forged,))


TAMPERING = {
    "a byte of an envelope": (
        lambda db, c: _edit(db, 3, lambda r: r.replace(b"zhang", b"zhanG")),
        "bad_signature",
        3,
    ),
    "an envelope deleted": (
        lambda db, c: db.execute("DELETE FROM envelopes WHERE seq = 3"),
        "sequence_gap",
        3,
    ),
    "two envelopes swapped": (lambda db, c: _swap(db), "sequence_gap", 2),
    "a signature replaced": (lambda db, c: _edit(db, 4, _zero_signature), "bad_signature", 4),
    "re-signed by an uncertified key": (lambda db, c: _edit(db, 2, _resign), "unknown_key", 2),
    "another origin's envelope added": (_other_origin, "wrong_origin", 6),
    "the tail truncated": (
        lambda db, c: db.execute("DELETE FROM envelopes WHERE seq = 5"),
        "truncated",
        5,
    ),
    "the checkpoint's size changed": (
        lambda db, c: db.execute(
            "UPDATE checkpoints SET note = replace(note, char(10) || '5' || char(10),"
            " char(10) || '4' || char(10))"
        ),
        "bad_checkpoint_signature",
        4,
    ),
    "a key document removed": (
        lambda db, c: db.execute("DELETE FROM documents WHERE id = 2"),
        "unknown_key",
        1,
    ),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_each_tampering_of_an_export_is_named(county, tmp_path, case):
    out, _ = exported(county, tmp_path)
    change, reason, seq = TAMPERING[case]
    db = sqlite3.connect(out, isolation_level=None)
    change(db, county)
    db.close()
    for mode in ((), ("--fast",)):
        report = verify(out, tmp_path, *mode)
        assert not report["ok"]
        first = report["failures"][0]
        if mode and reason == "bad_signature":  # --fast: the chain or the checkpoint's root
            assert first["reason"] in ("broken_chain", "checkpoint_mismatch"), first
        else:
            assert (first["reason"], first["seq"]) == (reason, seq), first


def test_worker_processes_report_the_same_as_one(county, tmp_path, monkeypatch):
    monkeypatch.setattr(audit_mod, "CHUNK", 2)  # three chunks: 1-2, 3-4, 5
    out, _ = exported(county, tmp_path)
    one = verify(out, tmp_path, "--jobs", "1")
    two = verify(out, tmp_path, "--jobs", "2")
    assert one == two and one["ok"] and one["origins"][0]["envelopes"] == 5
    db = sqlite3.connect(out, isolation_level=None)
    _edit(db, 4, _zero_signature)
    db.close()
    one = verify(out, tmp_path, "--jobs", "1")
    two = verify(out, tmp_path, "--jobs", "2")
    assert one == two and (one["failures"][0]["reason"], one["failures"][0]["seq"]) == (
        "bad_signature",
        4,
    )
    assert one["origins"][0]["envelopes"] == 3  # the verified prefix


def test_a_node_directory_verifies_with_the_root_key_too(county, tmp_path):
    report = verify(county, tmp_path)
    assert report["ok"] and report["source"] == "node" and report["events_checked"] == 5


def digest(directory, *extra):
    r = cli("projections", "digest", directory, *extra)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)["digest"]


def test_a_replay_at_t_equals_a_node_that_stopped_recording_at_t(county, tmp_path, clock):
    stopped = tmp_path / "stopped"
    shutil.copytree(county, stopped)
    t = clock.now_ms
    clock.advance(60_000)
    node = Node(config_mod.load(county, environ={}), clock=clock)
    a = node.execute("accident.report", js(accident(deaths=3)), user="li")
    node.execute("enterprise.register", js(enterprise(credit_code=credit_code(9))), user="zhang")
    node.execute(
        "accident.supplement", js({"deaths": 4, "expected_version": 1}), user="li", target=a["id"]
    )
    node.close()
    out, _ = exported(county, tmp_path)
    assert digest(stopped) != digest(county)
    r = cli("audit", "replay", out, "--until", t, "--out", tmp_path / "then")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["envelopes"] == 5
    assert digest(tmp_path / "then") == digest(stopped)
    r = cli("audit", "replay", out, "--until", clock.now_ms, "--out", tmp_path / "now")
    assert digest(tmp_path / "now") == digest(county)
    # queryable as it stood then; and the replayed directory verifies like any node
    r = cli("query", tmp_path / "then", "accidents")
    assert r.exit_code == 0 and [x["deaths"] for x in json.loads(r.stdout)] == [2]
    assert verify(tmp_path / "then", tmp_path)["events_checked"] == 5
    r = cli("audit", "replay", out, "--until", t, "--out", tmp_path / "then")
    assert r.exit_code == 1 and "not empty" in r.stderr


def test_a_replay_of_a_region_holds_only_its_origins(county, tmp_path):
    out, _ = exported(county, tmp_path)

    def replay(region, to, *key):
        return cli(
            "audit",
            "replay",
            out,
            "--until",
            "2099-01-01",
            "--region",
            region,
            *key,
            "--out",
            tmp_path / to,
        )

    root = ("--root-key", tmp_path / "root.pub")
    r = replay("130200", "x", *root)
    assert r.exit_code == 0 and json.loads(r.stdout)["envelopes"] == 0
    r = replay("130100", "y", *root)
    assert json.loads(r.stdout)["envelopes"] == 5
    assert digest(tmp_path / "y", "--region", "130102") == digest(county, "--region", "130102")
    r = replay("130100", "z")  # areas as certified: only what chains to the root counts
    assert r.exit_code == 1 and "--root-key" in r.stderr and not (tmp_path / "z").exists()


def test_proofs_from_the_command_line(county, tmp_path):
    out, _ = exported(county, tmp_path)
    r = cli("audit", "prove", out, "--origin", "130102", "--seq", 3, "--out", tmp_path / "e.proof")
    assert r.exit_code == 0, r.output
    r = cli("audit", "check-proof", tmp_path / "e.proof", "--root-key", tmp_path / "root.pub")
    assert r.exit_code == 0 and json.loads(r.stdout)["seq"] == 3
    proof = json.loads((tmp_path / "e.proof").read_text())
    proof["seq"] = 2
    (tmp_path / "e.proof").write_text(json.dumps(proof))
    r = cli("audit", "check-proof", tmp_path / "e.proof", "--root-key", tmp_path / "root.pub")
    assert r.exit_code == 1 and "FAILED" in r.stderr
    r = cli("audit", "prove", county, "--origin", "130102", "--from-size", 5, "--to-size", 5)
    assert r.exit_code == 0 and json.loads(r.stdout)["proof"] == "consistency"
    r = cli("audit", "prove", out, "--origin", "130102")
    assert r.exit_code == 2 and "--seq" in r.stderr
    r = cli("audit", "prove", out, "--origin", "130102", "--seq", 9)
    assert r.exit_code == 1 and "no envelope 9" in r.stderr


def test_restore_and_recover_name_what_is_wrong_and_change_nothing(county, tmp_path):
    from node.replication.natsd import free_port

    before = (county / "events.db").read_bytes()
    url = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    r = cli("recover", county, "--from", url)
    assert r.exit_code == 1 and f"cannot reach NATS at {url}" in r.stderr, r.output
    r = cli("backup", "restore", county, "--from", url)  # a county's history is its parent's
    assert r.exit_code == 1 and "anjian recover" in r.stderr, r.output
    r = cli("recover", county, "--from", "http://example")
    assert r.exit_code == 2 and "nats://city-host:4222" in r.stderr
    assert (county / "events.db").read_bytes() == before
