import json
import time

import pytest
from click.testing import CliRunner

from node.cli.main import main
from tests.factories import accident, enterprise, js


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)

    return invoke


@pytest.fixture
def county(tmp_path, run):
    d = tmp_path / "county"
    r = run("init", d, "--tier", "county", "--region", "130102")
    assert r.exit_code == 0, r.output
    return d


def test_init_creates_a_node_and_refuses_to_overwrite(run, county, tmp_path):
    assert (county / "node.toml").exists() and (county / "events.db").exists()
    before = (county / "node.toml").read_bytes(), (county / "node.key").read_bytes()
    again = run("init", county, "--tier", "county", "--region", "130102")
    assert again.exit_code == 0 and "already exists" in again.stderr  # the README run twice
    assert json.loads(again.stdout)["origin"] == "130102"
    other = run("init", county, "--tier", "county", "--region", "130104")
    assert other.exit_code == 1 and "130102 ≠ 130104" in other.stderr
    assert ((county / "node.toml").read_bytes(), (county / "node.key").read_bytes()) == before
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("x")
    r = run("init", tmp_path / "full", "--tier", "county", "--region", "130102")
    assert r.exit_code == 1 and "not empty" in r.stderr


def test_users_token_adds_or_renews_and_keeps_roles(run, county):
    first = run("users", "token", county, "clerk", "--role", "writer")
    second = run("users", "token", county, "clerk", "--role", "writer")
    assert first.exit_code == second.exit_code == 0
    assert first.stdout.strip() != second.stdout.strip()  # a second token; the first stops
    wrong = run("users", "token", county, "clerk", "--role", "reader")
    assert wrong.exit_code == 1 and "writer" in wrong.stderr
    listed = json.loads(run("users", "list", county, "--format", "json").stdout)
    assert [(u["name"], u["role"]) for u in listed] == [("clerk", "writer")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tier", "county", "--region", "130100"], "city-level division, not a county"),
        (["--tier", "national", "--region", "130000"], "000000"),
        (["--tier", "county", "--region", "1301"], "six digits"),
        (["--tier", "county", "--region", "130102", "--parent", "http://x"], "NATS URL"),
        (["--tier", "county", "--region", "130102", "--parent", 'nats://a"b'], "NATS URL"),
        (["--tier", "county", "--region", "130102", "--parent", "nats://"], "NATS URL"),
        (["--tier", "hamlet", "--region", "130102"], "hamlet"),
    ],
)
def test_init_refuses_bad_settings(run, tmp_path, args, message):
    r = run("init", tmp_path / "n", *args)
    assert r.exit_code != 0 and message in r.output + r.stderr
    assert not (tmp_path / "n").exists()  # nothing left behind: init can simply be run again


def test_record_show_status(run, county):
    r = run(
        "record",
        county,
        "enterprise.register",
        "--input",
        "-",
        "--actor",
        "zhang",
        input=js(enterprise()),
    )
    assert r.exit_code == 0, r.stderr
    r = run(
        "record",
        county,
        "accident.report",
        "--input",
        "-",
        "--actor",
        "li",
        input=js(accident(deaths=30)),
    )
    acc = json.loads(r.stdout)
    assert acc["record"]["grade"] == "especially_major"
    r = run(
        "record",
        county,
        "accident.supplement",
        "--input",
        "-",
        input=js({"id": acc["id"], "summary": "续报", "expected_version": 1}),
    )
    assert r.exit_code == 0 and json.loads(r.stdout)["version"] == 2
    shown = json.loads(run("show", county, acc["id"]).stdout)
    assert shown["summary"] == "续报" and shown["history"][0]["actor"]["user"] == "li"
    status = json.loads(run("status", county).stdout)
    assert (status["event_count"], status["last_position"], status["origin"]) == (3, 3, "130102")


def test_record_from_a_file(run, county, tmp_path):
    f = tmp_path / "e.json"
    f.write_text(js(enterprise()))
    assert run("record", county, "enterprise.register", "--input", f).exit_code == 0


def test_input_is_named_input_and_json_is_its_hidden_former_name(run, county, tmp_path):
    r = run("record", county, "enterprise.register", "--json", "-", input=js(enterprise()))
    assert r.exit_code == 0, r.stderr  # the former name still works, for a release
    assert "--json" not in run("record", "--help").stdout
    assert "--input" in run("record", "--help").stdout
    r = run("record", county, "enterprise.register")
    assert r.exit_code == 2 and "Missing option '--input'" in r.stderr
    f = tmp_path / "e.json"
    f.write_text("{}")
    r = run("record", county, "enterprise.register", "--input", f, "--json", f)
    assert r.exit_code == 2 and "--input" in r.stderr
    assert json.loads(run("status", county).stdout)["event_count"] == 1


def test_exit_codes_refused_is_1_usage_is_2(run, county):
    # a refusal: the input was read and the rules said no
    r = run("record", county, "enterprise.register", "--input", "-", input="[]")
    assert r.exit_code == 1 and r.stderr.startswith("error: invalid input:")
    assert run("users", "remove", county, "nobody").exit_code == 1
    # a usage error: the command line itself is wrong, nothing is done
    assert run("users", "log", county, "--since", "yesterday").exit_code == 2
    assert run("status").exit_code == 2
    assert run("status", county, "--format", "yaml").exit_code == 2
    r = run(
        "init", county.parent / "n", "--tier", "county", "--region", "130102", "--division", "1"
    )
    assert r.exit_code == 2 and "CODE=NAME" in r.stderr and not (county.parent / "n").exists()


def test_data_as_json_or_text(run, county):
    status = json.loads(run("status", county).stdout)
    text = run("status", county, "--format", "text").stdout
    assert f"origin: {status['origin']}" in text and "event_count: 0" in text
    assert "signed_log:\n  " in text
    kinds = run("kinds", "--format", "text").stdout
    assert "- kind: accident.report" in kinds


def test_users_add_and_remove_say_what_they_did(run, county):
    r = run("users", "add", county, "clerk", "--role", "writer")
    token = r.stdout.strip()  # alone on stdout: TOKEN=$(anjian users add ...)
    assert token.startswith("ajt_") and "\n" not in token
    assert "Authorization: Bearer" in r.stderr and "anjian users rotate" in r.stderr
    r = run("users", "add", county, "li", "--format", "json")
    added = json.loads(r.stdout)
    assert added["name"] == "li" and added["role"] == "reader" and added["token"].startswith("ajt_")
    assert added["token_expires"].endswith("+08:00")
    r = run("users", "remove", county, "clerk")
    assert r.exit_code == 0 and "removed the user clerk (writer)" in r.stdout
    assert json.loads(run("users", "remove", county, "li", "--format", "json").stdout) == {
        "removed": "li",
        "role": "reader",
    }


@pytest.mark.parametrize(
    ("kind", "body", "message"),
    [
        ("enterprise.register", "{bad json", "not valid JSON"),
        ("enterprise.register", "[]", "JSON object"),
        (
            "enterprise.register",
            js(enterprise(credit_code="91350100M000100Y44")),
            "check character",
        ),
        ("accident.report", js(accident(deaths=-3)), "deaths: must be at least 0"),
        ("accident.supplement", js({"deaths": 1, "expected_version": 1}), "give its id"),
        (
            "accident.supplement",
            js({"id": "x", "deaths": 1}),
            "expected_version: this field is required",
        ),
        (
            "accident.supplement",
            js({"id": "x", "deaths": 1, "expected_version": 1}),
            "no accident with id 'x'",
        ),
    ],
)
def test_bad_input_is_explained_and_records_nothing(run, county, kind, body, message):
    r = run("record", county, kind, "--input", "-", input=body)
    assert r.exit_code == 1 and message in r.stderr
    assert json.loads(run("status", county).stdout)["event_count"] == 0


def test_unknown_kind_and_missing_directory(run, county, tmp_path):
    r = run("record", county, "accident.fly", "--input", "-", input="{}")
    assert r.exit_code == 2 and "accident.fly" in r.stderr
    r = run("status", tmp_path / "nowhere")
    assert r.exit_code == 1 and "not a node directory" in r.stderr


def test_users(run, county):
    r = run("users", "add", county, "clerk", "--role", "writer")
    assert r.exit_code == 0 and r.stdout.startswith("ajt_")
    assert "ajt_" not in (county / "users.toml").read_text()
    assert (county / "users.toml").stat().st_mode & 0o077 == 0
    assert run("users", "add", county, "clerk").exit_code == 1
    assert run("users", "add", county, "bad name!").exit_code == 1
    (listed,) = json.loads(run("users", "list", county).stdout)
    assert {k: listed[k] for k in ("name", "role", "token_expired")} == {
        "name": "clerk",
        "role": "writer",
        "token_expired": False,
    }
    assert listed["token_expires"].endswith("+08:00")
    assert run("users", "remove", county, "clerk").exit_code == 0
    assert run("users", "remove", county, "clerk").exit_code == 1


def test_kinds_lists_every_command_with_its_route(run):
    kinds = json.loads(run("kinds").stdout)
    assert {
        "kind": "accident.report",
        "summary": kinds[4]["summary"],
        "http": "POST /api/v1/accidents",
    } in kinds
    schema = json.loads(run("kinds", "accident.report").stdout)
    assert "deaths" in schema["required"]


def test_python_dash_m_node_works(county):
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "node", "status", str(county)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and json.loads(r.stdout)["tier"] == "county"


def test_readings_through_the_cli(run, county):
    from tests.factories import SITE_CODE, site

    s = json.loads(
        run("record", county, "sensor.register-site", "--input", "-", input=js(site())).stdout
    )
    point = js({"id": s["id"], "point_code": "CO-1", "sensor_type": "co"})
    assert (
        run("record", county, "sensor.register-point", "--input", "-", input=point).exit_code == 0
    )
    hour_ago = int(time.time() * 1000) - 3_600_000  # the CLI runs on the wall clock
    batch = js({"readings": [{"point": "CO-1", "t": hour_ago, "value": 30}]})
    r = run("readings", "ingest", county, SITE_CODE, "--json", "-", input=batch)
    assert r.exit_code == 0 and json.loads(r.stdout)["events"] == [
        "sensor.alarm_raised/1",
        "sensor.summary_recorded/1",  # an hour ago: its window has closed
    ]
    bad = js({"readings": [{"point": "CO-1", "t": hour_ago, "value": "high"}]})
    r = run("readings", "ingest", county, SITE_CODE, "--json", "-", input=bad)
    assert r.exit_code == 1 and "readings.0.value" in r.stderr
    pruned = json.loads(run("readings", "prune", county).stdout)
    assert pruned["pruned"] == 0  # an hour old: within the 92 days
    assert json.loads(run("status", county).stdout)["raw_readings"] == 1
