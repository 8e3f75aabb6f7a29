"""The verified import at the breadth of the country (docs/architecture.md §6 "In"): what a
take costs grows with what it received, not with the number of origins the node knows or holds
envelopes of; the trust of thousands of certified origins is kept up to date as certifications
arrive, each checked once, never computed again from every document."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from domain.divisions import chain, table
from federation import keys as keys_mod
from federation.envelope import GENESIS, parse
from federation.keys import ROOT, build_trust, certify
from federation.suite import SigningKey, load_key, load_public
from node import config as config_mod
from node.replication import importer as importer_mod
from node.replication.importer import Importer
from node.service import Node
from tests.conftest import make_node_dir
from tests.factories import accident, js, resealed
from tests.integration.federation import bad_signature
from tests.node.replication.test_import import install_trust


def hierarchy(
    root: SigningKey, province: str, province_key: SigningKey
) -> Iterator[tuple[str, str, SigningKey, bytes]]:
    """The cities and counties of a province from the division table, each with a new key and
    the certification its certifier (the province, or the county's city) signs: (origin,
    tier, key, certification)."""
    codes = sorted(c for c in table().names if c[:2] == province[:2] and c != province)
    city_keys: dict[str, SigningKey] = {}
    for code in codes:
        up = chain(code)
        tier = "city" if code.endswith("00") else "county"
        above = up[1]
        signer, signer_origin = (
            (city_keys[above], above) if above in city_keys else (province_key, province)
        )
        if above not in city_keys and above != province:
            continue  # a city not in the table: its counties are left out
        key = SigningKey.generate()
        if tier == "city":
            city_keys[code] = key
        doc = certify(signer, signer_origin, origin=code, region=code, tier=tier, public=key.public)
        yield code, tier, key, doc


def test_certifying_thousands_of_origins_checks_each_document_once(tmp_path, clock, monkeypatch):
    """Certifications of every city and county of six provinces (over 800 origins) reach a
    national centre in batches, as its children carry them: each is checked once, the trust
    is never computed again from every document (no revocation among them), and it is the
    trust computed from all of them at once."""
    root = SigningKey.generate()
    national = make_node_dir(tmp_path / "national", tier="national", region="000000")
    national_key = load_key(national / "node.key")
    docs = [
        certify(
            root,
            ROOT,
            origin="000000",
            region="000000",
            tier="national",
            public=national_key.public,
        )
    ]
    install_trust(national, root, docs)
    batches: list[list[bytes]] = []
    origins = 0
    for province in ("130000", "140000", "320000", "370000", "410000", "440000"):
        province_key = SigningKey.generate()
        batch = [
            certify(
                root,
                ROOT,
                origin=province,
                region=province,
                tier="province",
                public=province_key.public,
            )
        ]
        for _code, _tier, _key, doc in hierarchy(root, province, province_key):
            batch.append(doc)
        origins += len(batch)
        batches.append(batch[::-1])  # counties before their certifiers: they wait, then go on
    assert origins > 800
    checked: list[bytes] = []
    rebuilt: list[int] = []
    verify, settle = keys_mod.verify_document, keys_mod._settle

    def counting_verify(doc, public):  # type: ignore[no-untyped-def]
        checked.append(doc.raw)
        return verify(doc, public)

    def counting_settle(*args):  # type: ignore[no-untyped-def]
        rebuilt.append(1)
        return settle(*args)

    node = Node(config_mod.load(national, environ={}), clock=clock)
    importer = Importer(node)
    importer.trust()  # the installed chain
    monkeypatch.setattr(keys_mod, "verify_document", counting_verify)
    monkeypatch.setattr(keys_mod, "_settle", counting_settle)
    for batch in batches:
        for start in range(0, len(batch), 100):
            importer.take([("document", d) for d in batch[start : start + 100]])
    monkeypatch.undo()
    trust = importer.trust()
    node.close()
    assert len(checked) == len(set(checked)) == origins  # each document checked once
    assert rebuilt == []  # never computed again from every document
    everything = [d for batch in batches for d in batch]
    whole, problems = build_trust(root.public, docs + everything)
    assert problems == []
    assert set(trust.grants) == set(whole.grants) and trust.regions == whole.regions


def county_envelopes(origin: str, key: SigningKey, template: bytes, count: int) -> list[bytes]:
    """``count`` accident reports of a county, a chain signed with its key."""
    base = parse(template)
    out: list[bytes] = []
    prev = GENESIS
    for seq in range(1, count + 1):
        raw = resealed(base, key, origin, seq, prev)
        prev = parse(raw).hash
        out.append(raw)
    return out


def province(tmp_path, clock):
    """A province with every county of its cities certified, each county with four reports
    not yet sent."""
    root, province_key = SigningKey.generate(), SigningKey.generate()
    directory = make_node_dir(tmp_path / "province", tier="province", region="130000")
    province_key = load_key(directory / "node.key")
    docs = [
        certify(
            root,
            ROOT,
            origin="130000",
            region="130000",
            tier="province",
            public=load_public(directory / "node.pub"),
        )
    ]
    counties: dict[str, SigningKey] = {}
    for code, tier, key, doc in hierarchy(root, "130000", province_key):
        docs.append(doc)
        if tier == "county":
            counties[code] = key
    install_trust(directory, root, docs)
    sample = make_node_dir(tmp_path / "sample", tier="county", region="130102")
    with_report = Node(config_mod.load(sample, environ={}), clock=clock)
    with_report.execute("accident.report", js(accident(division="130102")), user="clerk")
    template = with_report.log.envelopes(0, 10)[-1]
    with_report.close()
    logs = {o: county_envelopes(o, k, template, 4) for o, k in counties.items()}
    node = Node(config_mod.load(directory, environ={}), clock=clock)
    return node, Importer(node), logs, counties, template


@pytest.fixture
def province_node(tmp_path, clock):
    """The province, each county's first two reports applied, the fourth waiting behind a gap
    at the third."""
    node, importer, logs, _keys, _template = province(tmp_path, clock)
    first = importer.take([("envelope", e) for log in logs.values() for e in (*log[:2], log[3])])
    assert first["applied"] == 2 * len(logs)
    yield node, importer, logs
    node.close()


def test_what_waits_in_memory_for_checkpoints_is_bounded_in_all(tmp_path, clock, monkeypatch):
    """While more is arriving, envelopes past their origin's last checkpoint wait in memory for
    the next one, at most TAILS in all, however many origins send: beyond, they are verified
    one by one and applied now."""
    monkeypatch.setattr(importer_mod, "TAILS", 100)
    node, importer, logs, _keys, _template = province(tmp_path, clock)
    items = [("envelope", e) for log in logs.values() for e in log]
    summary = importer.take(items, hold_tail=True, tail_in_memory=True)
    assert 0 < len(summary["unsettled"]) <= 100
    assert summary["applied"] + len(summary["unsettled"]) == len(items)
    assert importer.take([], hold_tail=False, tail_in_memory=True)["applied"] == len(
        summary["unsettled"]
    )
    node.close()


def test_a_take_touches_only_the_origins_it_received_something_for(province_node):
    """Over 150 counties wait behind a gap; a take carrying the missing envelopes of five of
    them looks at those five only, in a number of queries that does not grow with the
    counties waiting, and applies what they let go on."""
    node, importer, logs = province_node
    assert len(importer.held()) == len(logs) > 150
    queries: list[str] = []
    query = node.log.query

    def counting(sql, params=()):  # type: ignore[no-untyped-def]
        queries.append(sql)
        return query(sql, params)

    node.log.query = counting  # type: ignore[method-assign]
    five = sorted(logs)[:5]
    summary = importer.take([("envelope", logs[o][2]) for o in five])
    node.log.query = query  # type: ignore[method-assign]
    assert summary["applied"] == 10 and importer.touched == 5
    assert len(queries) <= 5 * 8 + 12, json.dumps(queries, indent=1)
    assert summary["held"] == {}  # of what it touched, nothing waits
    assert len(importer.held()) == len(logs) - 5
    # nothing new and the stream drained: a gap waits for its envelope, not looked at again
    assert importer.take([])["applied"] == 0 and importer.touched == 0


def test_signatures_checked_on_every_core_keep_the_order_and_the_refusals(
    tmp_path, clock, monkeypatch
):
    """A run of 300 envelopes no checkpoint covers has its signatures checked ahead on every
    core; they are still applied in order, and the first bad one is refused as before (those
    after it wait behind it), exactly as when each is checked in turn."""
    outcomes = []
    verify_ahead = importer_mod._verify_ahead
    for parallel in (importer_mod.PARALLEL, 10**9):
        monkeypatch.setattr(importer_mod, "PARALLEL", parallel)
        ahead: list[int] = []

        def spy(envs, trust, ahead=ahead):  # type: ignore[no-untyped-def]
            found = verify_ahead(envs, trust)
            ahead.append(len(found))
            return found

        monkeypatch.setattr(importer_mod, "_verify_ahead", spy)
        node, importer, _logs, keys, template = province(tmp_path / str(parallel), clock)
        origin = sorted(keys)[0]
        chain = county_envelopes(origin, keys[origin], template, 300)
        chain[149] = bad_signature(chain[149])
        summary = importer.take([("envelope", e) for e in chain])
        outcomes.append(
            (summary["applied"], [(q["seq"], q["reason"]) for q in summary["quarantined"]])
        )
        assert max(ahead) == (300 if parallel < 10**9 else 0)
        node.close()
    assert outcomes[0] == outcomes[1] == (149, [(150, "bad_signature")])
