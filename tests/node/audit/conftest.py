"""The county of the audit tests: a node directory whose key chains to a root key (the root's
public key at ``tmp_path / "root.pub"``, outside the node directory), with five events."""

import pytest

from federation.keys import ROOT, certify
from federation.suite import SigningKey, load_public, public_pem
from node import config as config_mod
from node.service import Node
from tests.factories import accident, credit_code, enterprise, js


@pytest.fixture
def root(tmp_path):
    key = SigningKey.generate()
    (tmp_path / "root.pub").write_bytes(public_pem(key.public))
    return key


def trusted(directory, root, origin="130102"):
    """The county's trust chain: root -> province 130000 -> the county."""
    province = SigningKey.generate()
    docs = [
        certify(
            root, ROOT, origin="130000", region="130000", tier="province", public=province.public
        ),
        certify(
            province,
            "130000",
            origin=origin,
            region=origin,
            tier="county",
            public=load_public(directory / "node.pub"),
        ),
    ]
    trust = directory / "trust"
    trust.mkdir(exist_ok=True)
    (trust / "root.pub").write_bytes(public_pem(root.public))
    for i, doc in enumerate(docs):
        (trust / f"{i}.doc").write_bytes(doc)


@pytest.fixture
def county(node_dir, clock, root):
    trusted(node_dir, root)
    node = Node(config_mod.load(node_dir, environ={}), clock=clock)
    for i in range(3):
        node.execute(
            "enterprise.register", js(enterprise(credit_code=credit_code(i))), user="zhang"
        )
        clock.advance(60_000)
    a = node.execute("accident.report", js(accident(deaths=1)), user="li")
    clock.advance(60_000)
    node.execute(
        "accident.supplement", js({"deaths": 2, "expected_version": 1}), user="li", target=a["id"]
    )
    node.close()
    return node_dir
