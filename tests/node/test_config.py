import pytest

from node import config as config_mod
from node.errors import ConfigError
from tests.conftest import make_node_dir


def test_rendered_config_loads_and_is_frozen(node_dir):
    cfg = config_mod.load(node_dir, environ={})
    assert (cfg.node.origin, cfg.node.tier, cfg.node.region) == ("130102", "county", "130102")
    assert cfg.store.backend == "sqlite" and cfg.sqlite_file == (node_dir / "events.db").resolve()
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="frozen"):
        cfg.http.port = 1  # type: ignore[misc]


def test_environment_overrides(node_dir):
    cfg = config_mod.load(
        node_dir,
        environ={"ANJIAN_HTTP_PORT": "9001", "ANJIAN_STORE_POSTGRES_PASSWORD": "123", "OTHER": "x"},
    )
    assert cfg.http.port == 9001 and cfg.store.postgres.password == "123"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('tier = "county"', 'tier = "village"'), "node.tier"),
        (
            lambda t: t.replace('region = "130102"', 'region = "130100"'),
            "city-level division, not a county",
        ),
        (lambda t: t.replace("port = 8640", "port = 70000"), "http.port"),
        (lambda t: t + "\n[surprise]\nx = 1\n", "surprise"),
        (
            lambda t: t.replace("# parent = ", "parent = ").replace(
                "nats://parent-host:4222", "http://x"
            ),
            "NATS URL",
        ),
        (lambda t: t.replace("[node]", "[node"), "not valid TOML"),
    ],
)
def test_bad_configuration_says_what_is_wrong(node_dir, edit, message):
    path = node_dir / config_mod.CONFIG_FILE
    path.write_text(edit(path.read_text()))
    with pytest.raises(ConfigError, match=message):
        config_mod.load(node_dir, environ={})


def test_a_directory_without_config(tmp_path):
    with pytest.raises(ConfigError, match=r"not a node directory.*anjian init"):
        config_mod.load(tmp_path, environ={})


@pytest.mark.parametrize("tier", ["county", "city", "province", "national", "backup"])
def test_every_example_config_loads(tmp_path, tier):
    from pathlib import Path

    example = Path(__file__).parents[2] / "config" / f"{tier}.toml"
    target = make_node_dir(tmp_path / tier)
    (target / config_mod.CONFIG_FILE).write_text(example.read_text())
    assert config_mod.load(target, environ={}).node.tier == tier


def test_digit_only_overrides_stay_text_where_text_is_expected(node_dir):
    cfg = config_mod.load(
        node_dir, environ={"ANJIAN_NODE_ORIGIN": "130102", "ANJIAN_STORE_POSTGRES_DBNAME": "2024"}
    )
    assert cfg.node.origin == "130102" and cfg.store.postgres.dbname == "2024"
    # a bad value is the variable's, not node.toml's
    with pytest.raises(ConfigError, match=r"^ANJIAN_HTTP_PORT: must be a whole number$"):
        config_mod.load(node_dir, environ={"ANJIAN_HTTP_PORT": "eighty"})


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ANJIAN_HTTP_PORT": "70000"}, r"^ANJIAN_HTTP_PORT: must be at most 65535$"),
        (
            {"ANJIAN_NODE_PARRENT": "nats://x:4222"},
            r"^ANJIAN_NODE_PARRENT: no setting .*did you mean ANJIAN_NODE_PARENT\?",
        ),
        (
            {"ANJIAN_NODE_PARENT": "http://x"},
            r"^ANJIAN_NODE_PARENT: the parent is a NATS URL such as nats://city-host:4222",
        ),
        ({"ANJIAN_STORE_BACKEND": "mysql"}, r"^ANJIAN_STORE_BACKEND: must be one of"),
        ({"ANJIAN_STORE_POSTGRES_PORT": "x"}, r"^ANJIAN_STORE_POSTGRES_PORT: must be a whole"),
        ({"ANJIAN_HTTP_PROT": "8650"}, r"^ANJIAN_HTTP_PROT: .*did you mean ANJIAN_HTTP_PORT\?$"),
        ({"ANJIAN_SURPRISE": "1"}, r"^ANJIAN_SURPRISE: no setting of node\.toml has this name"),
        ({"ANJIAN_STORE_POSTGRES": "x"}, r"^ANJIAN_STORE_POSTGRES: no setting"),
        ({"ANJIAN_HARDWARE_MODBUS": "[]"}, r"^ANJIAN_HARDWARE_MODBUS: no setting"),
        (
            {"ANJIAN_NODE_TIER": "city"},  # the region 130102 is a county's
            r"^ANJIAN_NODE_TIER with \[node\] of .*node\.toml: .*county-level division, not a city",
        ),
    ],
)
def test_an_environment_override_is_blamed_for_what_is_wrong_with_it(node_dir, environ, message):
    with pytest.raises(ConfigError, match=message) as caught:
        config_mod.load(node_dir, environ=environ)
    assert not str(caught.value).startswith(str(node_dir))  # not node.toml's fault alone


def test_the_variables_the_product_reads_itself_are_no_overrides(node_dir):
    from node.cli.i18n import ENV

    # and none of them is taken for a setting, nor refused as an unknown one
    assert ENV in config_mod.PRODUCT_VARIABLES
    cfg = config_mod.load(node_dir, environ={ENV: "en", "OTHER": "x", "ANJIAN_HTTP_PORT": "9002"})
    assert cfg.http.port == 9002
    variables = config_mod.override_variables()
    assert {"ANJIAN_HTTP_PORT", "ANJIAN_STORE_POSTGRES_PASSWORD", "ANJIAN_NODE_ORIGIN"} <= set(
        variables
    )
    assert not config_mod.PRODUCT_VARIABLES & set(variables)


def test_a_file_problem_and_a_variable_problem_are_each_told_where_they_are(node_dir):
    path = node_dir / config_mod.CONFIG_FILE
    path.write_text(path.read_text().replace("port = 8640", "port = 70000"))
    with pytest.raises(ConfigError) as caught:
        config_mod.load(node_dir, environ={"ANJIAN_READINGS_MAX_BATCH": "0"})
    assert str(caught.value) == (
        f"{path}: http.port: must be at most 65535; ANJIAN_READINGS_MAX_BATCH: must be at least 1"
    )


def test_a_corrupt_event_store_is_a_clear_error(node_dir):
    from node.service import Node

    (node_dir / "events.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigError, match="cannot open the event store"):
        Node(config_mod.load(node_dir, environ={}))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            '[[hardware.modbus]]\nsite = "S"\nhost = "h"\npoints = ['
            '{ point = "CH4-1", address = 0 }, { point = "CH4-1", address = 1 }]\n',
            "points listed twice: CH4-1",
        ),
        (
            '[[hardware.mqtt]]\nsite = "S"\ntopic = "t"\n'
            '[[hardware.mqtt]]\nsite = "T"\ntopic = "t"\n',
            "subscriptions must differ",
        ),
        ('[[hardware.modbus]]\nsite = "S"\nhost = "h"\npoints = []\n', "points"),
        ('[[hardware.filedrop]]\ndirectory = "d"\ninterval = 0\n', "interval"),
    ],
)
def test_sensor_adapters_are_checked_when_the_config_loads(node_dir, extra, message):
    with (node_dir / config_mod.CONFIG_FILE).open("a", encoding="utf-8") as f:
        f.write("\n" + extra)
    with pytest.raises(ConfigError, match=message):
        config_mod.load(node_dir, environ={})


def test_a_region_listed_in_divisions_extra_loads(tmp_path):
    d = make_node_dir(tmp_path / "n")
    text = (d / "node.toml").read_text(encoding="utf-8").replace('"130102"', '"139999"')
    (d / "node.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="139999"):
        config_mod.load(d, environ={})
    (d / "node.toml").write_text(text + '\n[divisions]\nextra = {139999 = "测试新区"}\n', "utf-8")
    assert config_mod.load(d, environ={}).node.region == "139999"
    (d / "node.toml").write_text(text + '\n[divisions]\nextra = {1399 = "短"}\n', "utf-8")
    with pytest.raises(ConfigError, match="six-digit"):
        config_mod.load(d, environ={})
