"""Audit proofs made from a node's export and checked with nothing but the root public key: an
envelope's inclusion, two checkpoints' consistency, a raw readings file against its summary;
and every alteration of a proof refused with a named reason."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from domain.base import to_ms
from domain.sensors.readings import WINDOW_MS
from domain.sensors.site import SummaryRecorded
from federation.checkpoint import parse_checkpoint, sign_checkpoint
from federation.errors import VerificationError
from federation.keys import ROOT, certify, revoke
from federation.proof import SUMMARY, check_proof
from federation.suite import SigningKey, load_key, public_pem
from node import config as config_mod
from node.audit.export import export, open_source
from node.audit.proofs import prove_consistency, prove_event, prove_readings, readings_file
from node.errors import ConfigError
from node.readings import ReadingsStore
from node.service import Node
from tests.conftest import Clock, make_node_dir
from tests.factories import NOW, SITE_CODE, credit_code, enterprise, js, site

ROOT_KEY, HEBEI, SHANXI = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
ORIGIN = "130102"
T0 = to_ms(NOW) - 3 * WINDOW_MS  # a closed window: its summary is recorded at once
SIZES = [3, 6, 11, 12]  # the signed checkpoints of the world below


def install_chain(directory: Path, *extra: bytes) -> SigningKey:
    """Root → Hebei province → the county node (and Shanxi, which no county proof needs)."""
    config = config_mod.load(directory, environ={})
    county = load_key(config.key_file)
    docs = [
        certify(
            ROOT_KEY, ROOT, origin="130000", region="130000", tier="province", public=HEBEI.public
        ),
        certify(
            ROOT_KEY, ROOT, origin="140000", region="140000", tier="province", public=SHANXI.public
        ),
        certify(HEBEI, "130000", origin=ORIGIN, region=ORIGIN, tier="county", public=county.public),
        *extra,
    ]
    config.trust_dir.mkdir(exist_ok=True)
    (config.trust_dir / "root.pub").write_bytes(public_pem(ROOT_KEY.public))
    for i, doc in enumerate(docs):
        (config.trust_dir / f"{i:02}.doc").write_bytes(doc)
    return county


def register(node: Node, n: int, first: int = 0) -> None:
    for i in range(first, first + n):
        node.execute(
            "enterprise.register", js(enterprise(credit_code=credit_code(i))), user="zhang"
        )


def batch(*readings):
    return js({"readings": [{"point": p, "t": t, "value": v} for p, t, v in readings]})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A county with a site whose closed window is summarized, checkpoints at SIZES, exported."""
    base = tmp_path_factory.mktemp("proofs")
    directory = make_node_dir(base / "county")
    install_chain(directory)
    node = Node(config_mod.load(directory, environ={}), clock=Clock(to_ms(NOW)))
    s = node.execute("sensor.register-site", js(site()), user="zhang")
    for body in (
        {"point_code": "CH4-01", "sensor_type": "methane", "location": "working_face"},
        {"point_code": "CO-01", "sensor_type": "co"},
    ):
        node.execute("sensor.register-point", js(body), user="zhang", target=s["id"])
    node.checkpoint()  # 3
    readings = (("CH4-01", T0 + 1, 0.31), ("CO-01", T0 + 2, 3), ("CH4-01", T0 + 60_000, 0.4))
    assert node.ingest(SITE_CODE, batch(*readings), user="gw")["events"] == [SUMMARY]  # 4
    assert node.ingest(SITE_CODE, batch(("CO-01", T0 + 5, 4)), user="gw")["late"] == 1
    register(node, 2)
    node.checkpoint()  # 6
    register(node, 5, 2)
    node.checkpoint()  # 11
    register(node, 1, 7)
    (summary,) = [e["payload"] for e in node.log.read(0, 100) if e["event"] == SUMMARY]
    raw = readings_file(node.readings, SITE_CODE, T0, summary["last_reading_id"])
    node.close()  # 12
    out = base / "county.export"
    export(config_mod.load(directory, environ={}), out)
    with open_source(out) as source:
        yield SimpleNamespace(source=source, directory=directory, summary=summary, readings=raw)


def checked(proof, readings=None):
    """Check a proof as an auditor receives it: JSON text."""
    return check_proof(json.loads(json.dumps(proof)), ROOT_KEY.public, readings)


def fails(proof, reason, readings=None):
    with pytest.raises(VerificationError) as e:
        check_proof(proof, ROOT_KEY.public, readings)
    assert e.value.reason == reason, str(e.value)
    return e.value


def test_the_summary_wire_name_is_the_domain_s():
    assert SummaryRecorded.NAME == SUMMARY


def test_the_shapes_of_the_proofs(world):
    inclusion = prove_event(world.source, ORIGIN, 4)
    assert set(inclusion) == {"proof", "origin", "seq", "envelope", "checkpoint", "path"} | {
        "documents"
    }
    assert (inclusion["proof"], inclusion["origin"], inclusion["seq"]) == ("inclusion", ORIGIN, 4)
    assert parse_checkpoint(inclusion["checkpoint"])[0].size == 6
    assert all(len(h) == 64 for h in inclusion["path"])
    readings = prove_readings(world.source, world.readings)
    assert readings == {
        **inclusion,
        "proof": "readings",
        "readings_sha256": world.summary["raw_sha256"],
    }
    consistency = prove_consistency(world.source, ORIGIN, 3, 6)
    assert set(consistency) == {"proof", "origin", "old", "new", "path", "documents"}
    assert consistency["documents"] == inclusion["documents"]


@pytest.mark.parametrize("seq", range(1, 13))
def test_every_envelope_is_proven_under_the_smallest_checkpoint_covering_it(world, seq):
    proof = prove_event(world.source, ORIGIN, seq)
    assert len(proof["documents"]) == 2  # Hebei's and the county's certification only
    report = checked(proof)
    size = min(s for s in SIZES if s >= seq)
    assert (report["origin"], report["seq"], report["checkpoint"]["size"]) == (ORIGIN, seq, size)
    assert report["actor"]["node"] == ORIGIN and report["recorded_at"].endswith("+08:00")
    assert report["checkpoint"]["keys"] == [report["key"]]
    assert (report["type"] == SUMMARY) == (seq == 4)


def test_a_node_directory_gives_the_same_proof_as_its_export(world):
    with open_source(world.directory) as source:
        assert prove_event(source, ORIGIN, 7) == prove_event(world.source, ORIGIN, 7)


def test_checkpoints_are_consistent_pairwise(world):
    for i, old in enumerate(SIZES):
        for new in SIZES[i:]:
            report = checked(prove_consistency(world.source, ORIGIN, old, new))
            assert (report["old"]["size"], report["new"]["size"]) == (old, new)


def note(world, size):
    return next(n for n in world.source.checkpoints(ORIGIN) if f"\n{size}\n" in n)


def raw_of(world, seq):
    return base64.b64encode(next(world.source.envelopes(ORIGIN, seq, seq))).decode()


def resigned(text, key, origin=ORIGIN):
    cp, _ = parse_checkpoint(text)
    return sign_checkpoint(key, origin, cp.size, cp.root).text


def stray(b64):
    """The same bytes in another base64 text: a stray bit set in the last character."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    data = b64.rstrip("=")
    assert len(data) < len(b64)  # padded: the last character has bits to spare
    last = alphabet[alphabet.index(data[-1]) ^ 1]
    assert base64.b64decode(data[:-1] + last + b64[len(data) :]) == base64.b64decode(b64)
    return data[:-1] + last + b64[len(data) :]


def root_in_other_base64(text):
    lines = text.split("\n")
    return "\n".join([*lines[:2], stray(lines[2]), *lines[3:]])


def flip_hex(h):
    return ("0" if h[0] != "0" else "1") + h[1:]


def flip_last(b64):
    raw = base64.b64decode(b64)
    return base64.b64encode(raw[:-1] + bytes([raw[-1] ^ 1])).decode()


def envelope_edit(proof, old, new):
    raw = base64.b64decode(proof["envelope"])
    assert old in raw
    return base64.b64encode(raw.replace(old, new, 1)).decode()


INCLUSION_CHANGES = {
    "envelope byte in the body": (
        lambda p, w: {"envelope": envelope_edit(p, b"zhang", b"zhanG")},
        "bad_signature",
    ),
    "envelope byte in the signature": (
        lambda p, w: {"envelope": flip_last(p["envelope"])},
        "bad_signature",
    ),
    "another envelope": (lambda p, w: {"envelope": raw_of(w, 6)}, "wrong_sequence"),
    "another envelope and its seq": (
        lambda p, w: {"envelope": raw_of(w, 6), "seq": 6},
        "bad_inclusion_proof",
    ),
    "claimed seq": (lambda p, w: {"seq": 4}, "wrong_sequence"),
    "claimed origin": (lambda p, w: {"origin": "130103"}, "wrong_origin"),
    "path hash": (
        lambda p, w: {"path": [flip_hex(p["path"][0]), *p["path"][1:]]},
        "bad_inclusion_proof",
    ),
    "path hash dropped": (lambda p, w: {"path": p["path"][:-1]}, "bad_inclusion_proof"),
    "path hash added": (lambda p, w: {"path": [*p["path"], "00" * 32]}, "bad_inclusion_proof"),
    "path order": (lambda p, w: {"path": p["path"][::-1]}, "bad_inclusion_proof"),
    "a later checkpoint": (lambda p, w: {"checkpoint": note(w, 11)}, "bad_inclusion_proof"),
    "an earlier checkpoint": (lambda p, w: {"checkpoint": note(w, 3)}, "not_covered"),
    "checkpoint size": (
        lambda p, w: {"checkpoint": p["checkpoint"].replace("\n6\n", "\n7\n")},
        "bad_checkpoint_signature",
    ),
    "checkpoint root in other base64": (
        lambda p, w: {"checkpoint": root_in_other_base64(p["checkpoint"])},
        "bad_checkpoint",
    ),
    "checkpoint by an uncertified key": (
        lambda p, w: {"checkpoint": resigned(p["checkpoint"], SigningKey.generate())},
        "unknown_key",
    ),
    "checkpoint by the province's key": (
        lambda p, w: {"checkpoint": resigned(p["checkpoint"], HEBEI)},
        "unknown_key",
    ),
    "checkpoint of another origin": (
        lambda p, w: {"checkpoint": resigned(p["checkpoint"], HEBEI, "130000")},
        "wrong_origin",
    ),
    "no documents": (lambda p, w: {"documents": []}, "unknown_key"),
    "the county's certification alone": (
        lambda p, w: {"documents": p["documents"][1:]},
        "unknown_key",
    ),
    "another key certified instead": (
        lambda p, w: {
            "documents": [
                p["documents"][0],
                base64.b64encode(
                    certify(
                        HEBEI,
                        "130000",
                        origin=ORIGIN,
                        region=ORIGIN,
                        tier="county",
                        public=SigningKey.generate().public,
                    )
                ).decode(),
            ]
        },
        "unknown_key",
    ),
}


@pytest.mark.parametrize("change", INCLUSION_CHANGES)
def test_any_change_to_an_inclusion_proof_is_refused(world, change):
    edit, reason = INCLUSION_CHANGES[change]
    proof = prove_event(world.source, ORIGIN, 5)  # under the checkpoint at 6
    checked(proof)
    fails({**proof, **edit(proof, world)}, reason)


def test_another_root_key_trusts_nothing(world):
    with pytest.raises(VerificationError) as e:
        check_proof(prove_event(world.source, ORIGIN, 5), SigningKey.generate().public)
    assert e.value.reason == "unknown_key"


def test_every_byte_of_the_envelope_and_the_checkpoint_matters(world):
    proof = prove_event(world.source, ORIGIN, 5)
    raw = base64.b64decode(proof["envelope"])
    for i in range(len(raw)):
        changed = raw[:i] + bytes([raw[i] ^ 1]) + raw[i + 1 :]
        with pytest.raises(VerificationError):
            check_proof({**proof, "envelope": base64.b64encode(changed).decode()}, ROOT_KEY.public)
    text = proof["checkpoint"]
    for i in range(len(text)):
        changed = text[:i] + chr(ord(text[i]) ^ 1) + text[i + 1 :]
        with pytest.raises(VerificationError):
            check_proof({**proof, "checkpoint": changed}, ROOT_KEY.public)


CONSISTENCY_CHANGES = {
    "path hash": (
        lambda p, w: {"path": [flip_hex(p["path"][0]), *p["path"][1:]]},
        "bad_consistency_proof",
    ),
    "path hash dropped": (lambda p, w: {"path": p["path"][:-1]}, "bad_consistency_proof"),
    "old and new swapped": (
        lambda p, w: {"old": p["new"], "new": p["old"]},
        "bad_consistency_proof",
    ),
    "another old checkpoint": (lambda p, w: {"old": note(w, 3)}, "bad_consistency_proof"),
    "another new checkpoint": (lambda p, w: {"new": note(w, 12)}, "bad_consistency_proof"),
    "new by an uncertified key": (
        lambda p, w: {"new": resigned(p["new"], SigningKey.generate())},
        "unknown_key",
    ),
    "old size": (
        lambda p, w: {"old": p["old"].replace("\n6\n", "\n5\n")},
        "bad_checkpoint_signature",
    ),
    "claimed origin": (lambda p, w: {"origin": "130000"}, "wrong_origin"),
    "no documents": (lambda p, w: {"documents": []}, "unknown_key"),
}


@pytest.mark.parametrize("change", CONSISTENCY_CHANGES)
def test_any_change_to_a_consistency_proof_is_refused(world, change):
    edit, reason = CONSISTENCY_CHANGES[change]
    proof = prove_consistency(world.source, ORIGIN, 6, 11)
    checked(proof)
    fails({**proof, **edit(proof, world)}, reason)


MALFORMED = {
    "not an object": lambda p: [p],
    "unknown kind": lambda p: {**p, "proof": "membership"},
    "no kind": lambda p: {k: v for k, v in p.items() if k != "proof"},
    "missing path": lambda p: {k: v for k, v in p.items() if k != "path"},
    "extra field": lambda p: {**p, "note": "x"},
    "a key not text": lambda p: {**p, 1: "x"},
    "seq as text": lambda p: {**p, "seq": "5"},
    "seq as bool": lambda p: {**p, "seq": True},
    "seq zero": lambda p: {**p, "seq": 0},
    "origin null": lambda p: {**p, "origin": None},
    "envelope not base64": lambda p: {**p, "envelope": "not base64!"},
    "envelope a number": lambda p: {**p, "envelope": 5},
    "envelope not ascii": lambda p: {**p, "envelope": "信封"},
    "checkpoint a list": lambda p: {**p, "checkpoint": [p["checkpoint"]]},
    "path a string": lambda p: {**p, "path": "".join(p["path"])},
    "path hash not hex": lambda p: {**p, "path": ["zz" * 32, *p["path"][1:]]},
    "path hash short": lambda p: {**p, "path": [p["path"][0][:-2], *p["path"][1:]]},
    "path hash upper case": lambda p: {**p, "path": [p["path"][0].upper(), *p["path"][1:]]},
    "document a number": lambda p: {**p, "documents": [1, *p["documents"]]},
    "document not base64": lambda p: {**p, "documents": ["%%%", *p["documents"]]},
    "documents an object": lambda p: {**p, "documents": {}},
    "document in other base64": lambda p: {**p, "documents": [stray("kwECAw=="), *p["documents"]]},
}


@pytest.mark.parametrize("change", MALFORMED)
def test_a_malformed_proof_is_named_so(world, change):
    proof = prove_event(world.source, ORIGIN, 5)
    assert proof["path"]  # a path to change
    fails(MALFORMED[change](proof), "malformed_proof")


def test_malformed_consistency_and_readings_proofs(world):
    proof = prove_consistency(world.source, ORIGIN, 3, 6)
    fails({**proof, "old": None}, "malformed_proof")
    fails({**proof, "seq": 3}, "malformed_proof")
    readings = prove_readings(world.source, world.readings)
    fails({**readings, "readings_sha256": "ab"}, "malformed_proof")
    fails({k: v for k, v in readings.items() if k != "readings_sha256"}, "malformed_proof")


def test_a_document_that_is_not_a_key_document_adds_nothing(world):
    proof = prove_event(world.source, ORIGIN, 5)
    junk = base64.b64encode(b"\x93\x01\x02").decode()
    assert checked({**proof, "documents": [junk, *proof["documents"]]})["seq"] == 5
    fails({**proof, "documents": [junk]}, "unknown_key")


def test_the_readings_a_summary_covers_are_proven_by_their_file(world):
    s = world.summary
    assert world.readings.count(b"\n") == s["reading_count"] == 3  # the late reading is not in
    proof = prove_readings(world.source, world.readings)
    report = checked(proof, world.readings)
    assert (report["proof"], report["type"], report["seq"]) == ("readings", SUMMARY, 4)
    assert report["readings"] == {
        "sha256": s["raw_sha256"],
        "checked": True,
        "window_start": T0,
        "window_end": T0 + WINDOW_MS,
        "reading_count": 3,
        "first_reading_id": s["first_reading_id"],
        "last_reading_id": s["last_reading_id"],
    }
    assert checked(proof)["readings"]["checked"] is False  # the hash alone, without the file
    for i in (0, len(world.readings) // 2, len(world.readings) - 1):
        altered = bytearray(world.readings)
        altered[i] ^= 1
        fails(proof, "readings_mismatch", bytes(altered))
    fails(proof, "readings_mismatch", world.readings + b"CO-01\t1\t1\t0\n")
    fails({**proof, "readings_sha256": "0" * 64}, "readings_mismatch", world.readings)
    inclusion = prove_event(world.source, ORIGIN, 4)
    fails(inclusion, "not_a_readings_proof", world.readings)
    fails(
        {
            **prove_event(world.source, ORIGIN, 5),
            "proof": "readings",
            "readings_sha256": s["raw_sha256"],
        },
        "not_a_summary",
        world.readings,
    )
    with pytest.raises(ConfigError, match="no signed summary"):
        prove_readings(world.source, world.readings[:-1])


def test_the_readings_file_needs_a_window_and_readings(world):
    config = config_mod.load(world.directory, environ={})
    store = ReadingsStore(config.readings_file)
    try:
        with pytest.raises(ConfigError, match="not the start of a 5-minute window"):
            readings_file(store, SITE_CODE, T0 + 1, 10)
        with pytest.raises(ConfigError, match="no readings of site"):
            readings_file(store, SITE_CODE, T0 - WINDOW_MS, 10)
        assert readings_file(store, SITE_CODE, T0, 10**9).count(b"\n") == 4  # the late one too
    finally:
        store.close()


def test_what_cannot_be_proven_is_said(world):
    source = world.source
    with pytest.raises(ConfigError, match=r"origin 130102 has no envelope 13 .*1\.\.12"):
        prove_event(source, ORIGIN, 13)
    with pytest.raises(ConfigError, match=r"origin 130103 has no envelope 1 .*none of that origin"):
        prove_event(source, "130103", 1)
    with pytest.raises(
        ConfigError, match=r"no signed checkpoint at size 5 .*nearest are at 3 and 6"
    ):
        prove_consistency(source, ORIGIN, 5, 6)
    with pytest.raises(ConfigError, match="no signed checkpoint at size 13"):
        prove_consistency(source, ORIGIN, 6, 13)
    with pytest.raises(ConfigError, match="larger than the new"):
        prove_consistency(source, ORIGIN, 11, 6)


def test_no_checkpoint_covers_the_newest_envelopes_yet(node, node_dir):
    register(node, 2)
    node.checkpoint()
    register(node, 1, 2)
    with open_source(node_dir) as source:
        assert parse_checkpoint(prove_event(source, ORIGIN, 2)["checkpoint"])[0].size == 2
        with pytest.raises(ConfigError, match="no checkpoint of origin 130102 covers sequence 3"):
            prove_event(source, ORIGIN, 3)


def test_a_key_revoked_before_the_position_proves_nothing_there(tmp_path, clock):
    directory = make_node_dir(tmp_path / "county")
    county = load_key(directory / "node.key")
    install_chain(directory, revoke(HEBEI, "130000", origin=ORIGIN, key=county.key_id, last_seq=4))
    node = Node(config_mod.load(directory, environ={}), clock=clock)
    register(node, 3)
    node.checkpoint()
    register(node, 3, 3)
    node.close()  # 6, signed with the revoked key
    with open_source(directory) as source:
        assert checked(prove_event(source, ORIGIN, 2))["checkpoint"]["size"] == 3
        e = fails(prove_event(source, ORIGIN, 4), "revoked_key")  # its checkpoint is at 6
        assert "checkpoint" in str(e)
        e = fails(prove_event(source, ORIGIN, 5), "revoked_key")
        assert "sequence 5" in str(e)
        fails(prove_consistency(source, ORIGIN, 3, 6), "revoked_key")
        assert len(prove_event(source, ORIGIN, 5)["documents"]) == 3  # the revocation goes too


def test_readings_from_the_command_line(world, tmp_path):
    """The investigator's path: export the window's raw readings, prove the file against its
    signed summary, check the proof with the root key and the file."""
    from click.testing import CliRunner

    from node.cli.main import main

    def cli(*args):
        return CliRunner().invoke(main, [str(a) for a in args])

    def export(window, out):
        return cli(
            "readings", "export", world.directory, SITE_CODE, "--window", window, "--out", out
        )

    (tmp_path / "root.pub").write_bytes(public_pem(ROOT_KEY.public))
    when = str(T0 + 120_000)  # any moment inside the window
    r = export(when, tmp_path / "w.tsv")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "w.tsv").read_bytes() == world.readings
    summary = json.loads(r.stdout)["summary"]  # as a person reads it: China time, units
    assert summary["window_start"].endswith("+08:00")
    assert all(isinstance(p["max"], float) and p["unit"] for p in summary["points"])
    r = cli(
        "audit", "prove", world.directory, "--readings", tmp_path / "w.tsv", "--out", tmp_path / "p"
    )
    assert r.exit_code == 0, r.output
    check = ("audit", "check-proof", tmp_path / "p", "--root-key", tmp_path / "root.pub")
    r = cli(*check, "--readings", tmp_path / "w.tsv")
    assert r.exit_code == 0 and json.loads(r.stdout)["readings"]["checked"]
    (tmp_path / "w.tsv").write_bytes(world.readings.replace(b"CO-01", b"CO-02"))
    r = cli(*check, "--readings", tmp_path / "w.tsv")
    assert r.exit_code == 1 and "readings_mismatch" in r.stderr
    r = export("2020-01-01", tmp_path / "x")
    assert r.exit_code == 1 and "no signed summary" in r.stderr and not (tmp_path / "x").exists()
