"""The auditor's trust anchor: a key read from the node directory being audited is no
anchor — whoever rewrote the log swapped it too. Verification against the national root key
through the certified hierarchy catches a rewritten, re-signed log with a swapped node.pub; a
pinned ``--key`` (or a ``--root-key``) file that lies inside the node directory or the export
being verified is warned of, on stderr and in the JSON ``warnings``, and not when it is held
apart."""

import json
import shutil
import sqlite3

import pytest

from federation.checkpoint import sign_checkpoint
from federation.envelope import parse, seal
from federation.merkle import CompactRange, leaf_hash
from federation.suite import SigningKey, public_pem
from tests.node.audit.test_audit_export import cli, exported

ORIGIN = "130102"


def rewritten(export, key):
    """The export's log rewritten by someone holding the node directory: every envelope
    re-signed by ``key`` on a consistent chain, the checkpoints signed again over it."""
    db = sqlite3.connect(export, isolation_level=None)
    rows = db.execute("SELECT seq, raw FROM envelopes WHERE origin = ? ORDER BY seq", (ORIGIN,))
    prev, tree, forged = bytes(32), CompactRange(), []
    for seq, raw in rows.fetchall():
        env = parse(bytes(raw))
        new = seal(
            key,
            origin=env.origin,
            seq=env.seq,
            prev=prev,
            at=env.at,
            type=env.type,
            aggregate=env.aggregate,
            version=env.version,
            actor=env.actor,
            payload={**env.payload, "name": "篡改"} if "name" in env.payload else env.payload,
        )
        prev = parse(new).hash
        tree.append(leaf_hash(new))
        forged.append((new, seq))
    db.executemany("UPDATE envelopes SET raw = ? WHERE seq = ?", forged)
    db.execute("DELETE FROM checkpoints")
    note = sign_checkpoint(key, ORIGIN, tree.size, tree.root()).text
    db.execute("INSERT INTO checkpoints VALUES (?, ?, ?)", (ORIGIN, tree.size, note))
    db.close()


def audit(source, *options):
    r = cli("audit", "verify", source, "--json", *options)
    report = json.loads(r.stdout)
    assert r.exit_code == (0 if report["ok"] else 1), r.output
    return report, r.stderr


def test_a_swapped_node_pub_passes_a_pinned_key_but_not_the_root_key(county, tmp_path):
    export, _ = exported(county, tmp_path)
    attacker = SigningKey.generate()
    rewritten(export, attacker)
    (county / "node.pub").write_bytes(public_pem(attacker.public))  # the key beside the log

    pinned, stderr = audit(export, "--key", county / "node.pub", "--origin", ORIGIN)
    assert pinned["ok"] and pinned["events_checked"] == 5  # what the README used to show
    assert pinned["trust"] == {"anchor": "pinned key", "key_id": attacker.key_id, "origin": ORIGIN}
    (warning,) = pinned["warnings"]
    assert f"lies inside the node directory {county} of origin {ORIGIN}" in warning
    assert f"warning: --key {county / 'node.pub'} lies inside" in stderr

    anchored, stderr = audit(export, "--root-key", tmp_path / "root.pub")
    assert not anchored["ok"]
    (failure,) = anchored["failures"]
    assert (failure["origin"], failure["seq"], failure["reason"]) == (ORIGIN, 1, "unknown_key")
    assert anchored["warnings"] == [] and "warning" not in stderr
    assert anchored["trust"]["anchor"] == "root key"
    assert anchored["trust"]["keys_certified"] == 2  # the province's and the county's real key


def test_the_root_key_verifies_the_node_directory_with_the_hierarchy_it_carries(county, tmp_path):
    export, _ = exported(county, tmp_path)
    for source in (export, county):
        report, stderr = audit(source, "--root-key", tmp_path / "root.pub")
        assert report["ok"] and report["warnings"] == [] and stderr == ""
        assert report["trust"]["origins_certified"] == 2 and report["refused_documents"] == []
    r = cli("audit", "verify", export, "--root-key", tmp_path / "root.pub")
    assert r.exit_code == 0 and "verified (every envelope; root key " in r.stdout


def _linked_into(county, tmp_path):
    """A path outside that leads into the node directory through a link."""
    (tmp_path / "keys").symlink_to(county, target_is_directory=True)
    return tmp_path / "keys" / "node.pub"


INSIDE = {
    "--key of the node directory audited": (
        lambda county, export, tmp: (county, "--key", county / "node.pub")
    ),
    "--root-key of the node directory audited": (
        lambda county, export, tmp: (county, "--root-key", county / "trust" / "root.pub")
    ),
    "--key of the exported node": (
        lambda county, export, tmp: (export, "--key", county / "node.pub", "--origin", ORIGIN)
    ),
    "--root-key of the exported node": (
        lambda county, export, tmp: (export, "--root-key", county / "trust" / "root.pub")
    ),
    "--key reached through a link": (
        lambda county, export, tmp: (
            export,
            "--key",
            _linked_into(county, tmp),
            "--origin",
            ORIGIN,
        )
    ),
}


@pytest.mark.parametrize("case", list(INSIDE))
def test_a_key_file_inside_what_is_verified_is_warned_of(county, tmp_path, case):
    export, _ = exported(county, tmp_path)
    source, option, key, *rest = INSIDE[case](county, export, tmp_path)
    report, stderr = audit(source, option, key, *rest)
    assert report["ok"]  # the log is intact: the warning is about what the pass proves
    (warning,) = report["warnings"]
    assert warning.startswith(f"{option} {key} lies inside the node directory")
    assert "Verify with the national root public key, held apart" in warning
    assert stderr.count("warning: ") == 1 and warning in stderr
    r = cli("audit", "verify", source, option, key, *rest)  # the text report warns as well
    assert r.exit_code == 0 and f"warning: {option} {key} lies inside" in r.stderr


def test_a_key_held_apart_is_not_warned_of(county, tmp_path):
    export, _ = exported(county, tmp_path)
    apart = tmp_path / "auditor"
    apart.mkdir()
    shutil.copy(county / "node.pub", apart / "130102.pub")
    shutil.copy(tmp_path / "root.pub", apart / "root.pub")
    # the county's own key held apart: a weaker anchor, but not one the log's holder can swap
    report, stderr = audit(export, "--key", apart / "130102.pub", "--origin", ORIGIN)
    assert report["ok"] and report["warnings"] == [] and "warning" not in stderr
    report, stderr = audit(county, "--root-key", apart / "root.pub")
    assert report["ok"] and report["warnings"] == [] and "warning" not in stderr
    # another node's directory, whose log this is not, is apart as well
    other = tmp_path / "other"
    shutil.copytree(county, other)
    toml = (other / "node.toml").read_text().replace('"130102"', '"130108"')
    (other / "node.toml").write_text(toml)
    report, _ = audit(export, "--root-key", other / "trust" / "root.pub")
    assert report["ok"] and report["warnings"] == []
