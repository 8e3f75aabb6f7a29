"""Division codes against the GB/T 2260 table at the node's edges (anjian init, node.toml, the
division fields of commands), and the rules of divisions without a middle tier, run through a
node: 东莞 441900 registers and investigates, a city investigates a county's 一般 accident."""

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from domain import divisions
from domain.base import to_ms
from domain.codes import Tier
from domain.errors import Invalid
from node import config as config_mod
from node.cli.main import main
from node.config import NodeSection
from node.errors import ConfigError
from node.service import Node
from tests.conftest import Clock, make_node_dir
from tests.factories import accident, credit_code, enterprise, js

NOW = datetime(2026, 11, 29, 8, tzinfo=UTC)


@pytest.fixture
def run():
    runner = CliRunner()
    return lambda *args: runner.invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def declared():
    """What node/service.py does at start with node.toml [divisions] extra, undone after."""
    divisions.forget_declared()
    yield divisions.declare
    divisions.forget_declared()


@pytest.fixture
def node_at(tmp_path):
    made: list[Node] = []

    def make(tier: str, region: str) -> Node:
        directory = make_node_dir(tmp_path / f"{tier}-{region}", tier=tier, region=region)
        made.append(Node(config_mod.load(directory, environ={}), clock=Clock(to_ms(NOW))))
        return made[-1]

    yield make
    for n in made:
        n.close()


# -- anjian init and node.toml ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("tier", "region"), [("county", "139999"), ("county", "130199"), ("city", "110100")]
)
def test_init_refuses_a_region_not_in_the_table(run, tmp_path, tier, region):
    r = run("init", tmp_path / "n", "--tier", tier, "--region", region)
    assert r.exit_code != 0
    assert f"{region} is not a division code of GB/T 2260" in r.output
    assert "[divisions] extra" in r.output and not (tmp_path / "n").exists()


@pytest.mark.parametrize(("tier", "region"), [("city", "441900"), ("county", "419001")])
def test_init_takes_divisions_without_a_middle_tier(run, tmp_path, tier, region):
    r = run("init", tmp_path / "n", "--tier", tier, "--region", region)
    assert r.exit_code == 0, r.output
    assert config_mod.load(tmp_path / "n", environ={}).node.region == region


def test_node_toml_with_a_region_not_in_the_table_does_not_load(tmp_path):
    d = make_node_dir(tmp_path / "n")
    text = (d / "node.toml").read_text().replace('"130102"', '"139999"')
    (d / "node.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"node: 139999 is not a division code"):
        config_mod.load(d, environ={})


def test_the_node_section_takes_the_extra_codes_it_is_given():
    """load() gives node.toml's [divisions] extra as the validation context."""
    body = {"origin": "139999", "tier": "county", "region": "139999"}
    with pytest.raises(ValidationError, match="139999 is not a division code"):
        NodeSection.model_validate(body)
    section = NodeSection.model_validate(body, context={"divisions": {"139999": "测试新区"}})
    assert section.tier == Tier.COUNTY and section.region == "139999"


# -- division fields of commands ----------------------------------------------------------------


def test_a_command_division_not_in_the_table_is_refused_until_declared(node_at, declared):
    province = node_at("province", "130000")
    body = js(accident(division="139999"))
    with pytest.raises(Invalid, match=r"139999 is not a division code of GB/T 2260") as e:
        province.execute("accident.report", body, user="li")
    assert e.value.errors[0].field == "division"
    declared({"139999": "测试新区"})  # node.toml [divisions] extra, declared at start
    assert province.show(province.execute("accident.report", body, user="li")["id"])["division"]


# -- divisions without a middle tier, and Art. 20 para 1, through a node ------------------------


def test_dongguan_registers_its_enterprises_and_investigates_its_general_accidents(node_at):
    dongguan = node_at("city", "441900")
    code = credit_code(5, "441900")
    e = dongguan.execute(
        "enterprise.register", js(enterprise(division="441900", credit_code=code)), user="li"
    )
    assert e["record"]["division"] == "441900"
    body = accident(division="441900", enterprise_credit_code=code, deaths=1)
    a = dongguan.execute("accident.report", js(body), user="li")["id"]
    assert dongguan.show(a)["grade"] == "general"
    inv = dongguan.execute(
        "investigation.open", js({"accident_id": a, "leader": "王组长"}), user="z"
    )
    assert (inv["record"]["tier"], inv["record"]["assigned_tier"]) == ("city", "city")


def test_a_city_opens_a_general_investigation_with_its_reason(node_at):
    city = node_at("city", "130100")
    a = city.execute("accident.report", js(accident(deaths=1)), user="li")["id"]
    body = {"accident_id": a, "leader": "王组长"}
    with pytest.raises(Invalid, match="say why"):
        city.execute("investigation.open", js(body), user="z")
    why = "社会影响较大, 市政府提级调查"
    inv = city.execute("investigation.open", js({**body, "reason": why}), user="z")
    assert (inv["record"]["tier"], inv["record"]["reason"]) == ("city", why)


def test_a_node_certifies_only_divisions_of_the_table_or_its_extra_list():
    from types import SimpleNamespace

    from domain import divisions
    from node.errors import ConfigError
    from node.keys import check_certification

    province = SimpleNamespace(origin="130000", region="130000")
    check_certification(province, "130102", "130102", "county")
    with pytest.raises(ConfigError, match="139999"):
        check_certification(province, "139999", "139999", "county")
    divisions.declare({"139999": "测试新区"})
    try:
        check_certification(province, "139999", "139999", "county")
    finally:
        divisions.forget_declared()


@pytest.mark.parametrize("division", ["130100", "130000"])
def test_a_place_is_a_county_level_division_or_a_city_without_counties(division):
    """An accident happens, a site or an inspected enterprise is, at a place: not at a city
    that has counties (its county does the county's part), nor a province."""
    from pydantic import ValidationError

    from domain.accident import ReportAccident
    from tests.factories import accident, js

    with pytest.raises(ValidationError, match="division"):
        ReportAccident.model_validate_json(js(accident(division=division)))
    ReportAccident.model_validate_json(js(accident(division="441900")))  # 东莞: no counties


def test_init_takes_a_division_newer_than_the_table(tmp_path):
    from click.testing import CliRunner

    from domain import divisions
    from node import config as config_mod
    from node.cli.main import main

    runner = CliRunner()
    refused = runner.invoke(
        main, ["init", str(tmp_path / "a"), "--tier", "county", "--region", "139999"]
    )
    assert refused.exit_code == 1 and "--division" in refused.stderr
    bad = runner.invoke(
        main,
        [
            "init",
            str(tmp_path / "b"),
            "--tier",
            "county",
            "--region",
            "139999",
            "--division",
            "139999",
        ],
    )
    assert bad.exit_code == 2 and "CODE=NAME" in bad.stderr
    try:
        made = runner.invoke(
            main,
            [
                "init",
                str(tmp_path / "c"),
                "--tier",
                "county",
                "--region",
                "139999",
                "--division",
                "139999=测试新区",
            ],
        )
        assert made.exit_code == 0, made.stderr
        config = config_mod.load(tmp_path / "c", environ={})
        assert config.node.region == "139999" and config.divisions.extra == {"139999": "测试新区"}
    finally:
        divisions.forget_declared()
