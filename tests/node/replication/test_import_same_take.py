"""A checkpoint that arrives in the same take as the envelope certifying its signer is judged
after that envelope, not before: it is kept, never quarantined as bad_checkpoint_signature."""

from federation.keys import certify
from federation.suite import SigningKey, load_key, load_public
from node import config as config_mod
from node.replication.importer import Importer
from node.service import Node
from tests.conftest import make_node_dir
from tests.factories import credit_code, enterprise, js
from tests.node.replication.test_import import install_trust, province_and_city


def test_a_checkpoint_and_the_certification_of_its_signer_in_one_take(tmp_path, clock):
    root = SigningKey.generate()
    province_dir = make_node_dir(tmp_path / "province", tier="province", region="130000")
    city_dir = make_node_dir(tmp_path / "city", tier="city", region="130100")
    county_dir = make_node_dir(tmp_path / "county", tier="county", region="130102")
    province_key, city_key = load_key(province_dir / "node.key"), load_key(city_dir / "node.key")
    docs = province_and_city(root, province_key, city_key.public)
    install_trust(province_dir, root, docs)
    # the city certifies its county in its own log: the certification travels up as an envelope
    city = Node(config_mod.load(city_dir, environ={}), clock=clock)
    county_pub = load_public(county_dir / "node.pub")
    at_seq = city.log.tree()[0] + 1
    doc = certify(
        city_key,
        "130100",
        origin="130102",
        region="130102",
        tier="county",
        public=county_pub,
        at_seq=at_seq,
    )
    city.record_key_document(doc, user="admin")
    city.checkpoint()
    city_log = (city.log.envelopes(0, 100), city.log.checkpoints())
    city.close()
    county = Node(config_mod.load(county_dir, environ={}), clock=clock)
    for i in range(3):
        body = js(enterprise(credit_code=credit_code(i, "130102"), division="130102"))
        county.execute("enterprise.register", body, user="clerk")
    county.checkpoint()
    county_log = (county.log.envelopes(0, 100), county.log.checkpoints())
    county.close()
    province = Node(config_mod.load(province_dir, environ={}), clock=clock)
    items = [("envelope", e) for e in city_log[0]] + [
        ("checkpoint", n.encode()) for n in city_log[1]
    ]
    items += [("checkpoint", n.encode()) for n in county_log[1]]  # before its envelopes, even
    items += [("envelope", e) for e in county_log[0]]
    summary = Importer(province).take(items)
    assert summary["quarantined"] == []
    assert province.log.checkpoints("130102") == county_log[1]  # kept, as the county signed it
    assert len(province.log.envelopes(0, 100, "130102")) == 3
    province.close()
