"""Rules that need other records of the node: a licence extension checks the enterprise's
accidents, an investigation the accident's grade; and the owning tier of each record."""

from datetime import UTC, datetime, timedelta

import pytest

from domain.base import to_ms
from domain.errors import Invalid, Refused
from node import config as config_mod
from node.errors import NotFound
from node.service import Node
from tests.conftest import Clock, make_node_dir
from tests.factories import accident, credit_code, js

ISSUED = datetime(2024, 1, 10, tzinfo=UTC)


def node_at(tmp_path, tier: str, region: str, now: datetime) -> Node:
    directory = make_node_dir(tmp_path / f"{tier}-{region}", tier=tier, region=region)
    return Node(config_mod.load(directory, environ={}), clock=Clock(to_ms(now)))


def application(division: str = "130102") -> str:
    return js(
        {
            "enterprise_credit_code": credit_code(1),
            "enterprise_name": "石家庄某煤业有限公司",
            "industry": "coal_mine",
            "division": division,
            "scope": "煤炭开采",
        }
    )


def test_a_county_node_cannot_record_a_licence_the_province_owns(tmp_path):
    county = node_at(tmp_path, "county", "130102", ISSUED)
    with pytest.raises(Refused, match="county") as e:
        county.execute("licence.apply", application(), user="zhang")
    assert "Arts. 3–5" in str(e.value)
    assert county.status()["event_count"] == 0
    county.close()


def issued_licence(province: Node) -> str:
    lic = province.execute("licence.apply", application(), user="li")["id"]
    province.execute("licence.accept", "{}", user="li", target=lic)
    body = js({"number": "（冀）MK安许证字〔2024〕0012", "valid_from": ISSUED.isoformat()})
    province.execute("licence.issue", body, user="li", target=lic)
    return lic


@pytest.mark.parametrize(("deaths", "extended"), [(0, True), (1, False)])
def test_extension_is_refused_after_a_fatal_accident_at_that_enterprise(tmp_path, deaths, extended):
    province = node_at(tmp_path, "province", "130000", ISSUED)
    lic = issued_licence(province)
    occurred = ISSUED + timedelta(days=400)
    province.clock.now_ms = to_ms(occurred + timedelta(hours=2))
    province.execute("accident.report", js(accident(occurred, deaths=deaths)), user="li")
    province.clock.now_ms = to_ms(ISSUED + timedelta(days=3 * 365 - 30))  # renewal window open
    province.execute("licence.apply-renewal", "{}", user="li", target=lic)
    if extended:
        r = province.execute("licence.extend", "{}", user="li", target=lic)
        assert r["record"]["status"] == "issued" and r["record"]["valid_until"].startswith(
            "2030-01-10"
        )
    else:
        with pytest.raises(Refused, match="fatal accident"):
            province.execute("licence.extend", "{}", user="li", target=lic)
    province.close()


def test_an_investigation_is_opened_by_the_tier_the_grade_assigns(tmp_path):
    now = datetime(2026, 11, 29, 8, tzinfo=UTC)
    county = node_at(tmp_path, "county", "130102", now)
    general = county.execute("accident.report", js(accident(deaths=1)), user="zhang")["id"]
    larger = county.execute("accident.report", js(accident(deaths=3)), user="zhang")["id"]
    opened = county.execute(
        "investigation.open", js({"accident_id": general, "leader": "王组长"}), user="z"
    )
    assert opened["record"]["accident_id"] == general
    with pytest.raises(Refused, match="city"):
        county.execute(
            "investigation.open", js({"accident_id": larger, "leader": "王组长"}), user="z"
        )
    with pytest.raises(NotFound, match="no accident"):
        county.execute(
            "investigation.open",
            js({"accident_id": "6333e143-bf7c-4588-9eb5-17c59e8638b9", "leader": "王组长"}),
            user="z",
        )
    with pytest.raises(Invalid):
        county.execute(
            "investigation.open", js({"accident_id": "nope", "leader": "王组长"}), user="z"
        )
    county.close()


def test_only_the_node_that_created_a_record_records_on_it(tmp_path):
    """A replica (here: the same store opened as another origin) is read, never written."""
    now = datetime(2026, 11, 29, 8, tzinfo=UTC)
    province = node_at(tmp_path, "province", "130000", now)
    lic = issued_licence(province)
    province.close()
    directory = tmp_path / "province-130000"
    national = Node(
        config_mod.load(
            directory,
            environ={
                "ANJIAN_NODE_ORIGIN": "000000",
                "ANJIAN_NODE_TIER": "national",
                "ANJIAN_NODE_REGION": "000000",
            },
        ),
        clock=Clock(to_ms(now)),
    )
    assert national.show(lic)["origin"] == "130000"
    with pytest.raises(Refused, match="belongs to node 130000"):
        national.execute("licence.suspend", js({"reason": "重大隐患"}), user="x", target=lic)
    national.close()


def test_a_command_on_a_record_without_its_id_is_a_clear_error(tmp_path):
    province = node_at(tmp_path, "province", "130000", ISSUED)
    with pytest.raises(Invalid, match="give its id"):
        province.execute("licence.extend", "{}", user="li")
    province.close()
