"""The key hierarchy through the command line, as bureaus would use it: an offline root, a
province certified by the root, a county by its province, the county's log verified with
nothing but the root public key, and a key rotation."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from node.cli.main import main
from tests.factories import credit_code, enterprise, js

pytestmark = pytest.mark.slow


def run(*args, input=None, ok=True):
    r = CliRunner().invoke(main, [str(a) for a in args], input=input)
    if ok:
        assert r.exit_code == 0, r.output + r.stderr
    return r


def test_root_province_county_and_a_rotation(tmp_path):
    root, province, county = tmp_path / "root", tmp_path / "province", tmp_path / "county"
    run("keys", "root-init", root)
    run("init", province, "--tier", "province", "--region", "130000")
    run("init", county, "--tier", "county", "--region", "130102")
    run(
        "keys",
        "certify",
        "--root-key",
        root / "root.key",
        "--origin",
        "130000",
        "--region",
        "130000",
        "--tier",
        "province",
        "--public",
        province / "node.pub",
        "--out",
        tmp_path / "p.doc",
    )
    run("keys", "install", province, tmp_path / "p.doc", "--root-key", root / "root.pub")
    run(
        "keys",
        "certify",
        province,
        "--origin",
        "130102",
        "--region",
        "130102",
        "--tier",
        "county",
        "--public",
        county / "node.pub",
        "--out",
        tmp_path / "c.doc",
    )
    # a province may not certify outside its area, nor the root a county
    r = run(
        "keys",
        "certify",
        province,
        "--origin",
        "140102",
        "--region",
        "140102",
        "--tier",
        "county",
        "--public",
        county / "node.pub",
        "--out",
        tmp_path / "x.doc",
        ok=False,
    )
    assert r.exit_code == 1 and "outside the certifier's area" in r.stderr
    run(
        "keys",
        "install",
        county,
        tmp_path / "p.doc",
        tmp_path / "c.doc",
        "--root-key",
        root / "root.pub",
    )
    for i in range(3):
        run(
            "record",
            county,
            "enterprise.register",
            "--json",
            "-",
            input=js(enterprise(credit_code=credit_code(i))),
        )
    report = json.loads(
        run("audit", "verify", county, "--root-key", root / "root.pub", "--json").stdout
    )
    assert report["ok"] and report["events_checked"] == 3
    # the province's certification of the county is an event of the province's log
    prov = json.loads(
        run("audit", "verify", province, "--root-key", root / "root.pub", "--json").stdout
    )
    assert prov["ok"] and prov["events_checked"] == 2  # key register opened, document recorded

    rotation = json.loads(run("keys", "rotate", county).stdout)
    assert rotation["from_seq"] == 4 and rotation["old_last_seq"] == 3
    run(
        "keys",
        "certify",
        province,
        "--origin",
        "130102",
        "--region",
        "130102",
        "--tier",
        "county",
        "--public",
        county / "node.pub.next",
        "--from-seq",
        "4",
        "--out",
        tmp_path / "c2.doc",
    )
    run(
        "keys",
        "revoke",
        province,
        "--origin",
        "130102",
        "--key-id",
        rotation["old_key_id"],
        "--last-seq",
        "3",
        "--out",
        tmp_path / "r.doc",
    )
    installed = json.loads(
        run(
            "keys",
            "install",
            county,
            tmp_path / "c2.doc",
            tmp_path / "r.doc",
            "--root-key",
            root / "root.pub",
        ).stdout
    )
    assert installed["switched_to"] == rotation["key_id"]
    run(
        "record",
        county,
        "enterprise.register",
        "--json",
        "-",
        input=js(enterprise(credit_code=credit_code(9))),
    )
    report = json.loads(
        run("audit", "verify", county, "--root-key", root / "root.pub", "--json").stdout
    )
    assert report["ok"] and report["events_checked"] == 4, report

    # without the hierarchy the same log fails: an unknown root trusts nothing
    run("keys", "root-init", tmp_path / "other")
    r = run(
        "audit", "verify", county, "--root-key", tmp_path / "other" / "root.pub", "--json", ok=False
    )
    assert r.exit_code == 1 and json.loads(r.stdout)["failures"][0]["reason"] == "unknown_key"

    # the county's log travels to its province as a bundle, verified against the hierarchy
    run("log", "bundle", county, "--out", tmp_path / "county.bundle")
    taken = json.loads(run("log", "import", province, tmp_path / "county.bundle").stdout)
    assert (taken["applied"], taken["quarantined"], taken["held"]) == (4, [], {})
    again = json.loads(run("log", "import", province, tmp_path / "county.bundle").stdout)
    assert (again["applied"], again["duplicates"]) == (0, 4)
    prov = json.loads(
        run("audit", "verify", province, "--root-key", root / "root.pub", "--json").stdout
    )
    assert prov["ok"] and {o["origin"]: o["envelopes"] for o in prov["origins"]}["130102"] == 4
