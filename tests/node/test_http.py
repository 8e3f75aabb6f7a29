import asyncio
import json
from datetime import timedelta

import pytest
from blockbuster import blockbuster_ctx

from node.api.app import make_app
from node.api.shared import ok
from node.users import Role, add_user, remove_user
from tests.factories import accident, credit_code, enterprise


@pytest.fixture
async def api(aiohttp_client, node, tokens):
    # the tests below read the English texts (the default language over HTTP is zh-CN:
    # tests/node/test_http_lang.py)
    client = await aiohttp_client(make_app(node), headers={"Accept-Language": "en"})

    async def call(method, path, body=None, token="writer", **kw):
        headers = {"Authorization": f"Bearer {tokens[token]}"} if token in tokens else {}
        if token not in tokens and token is not None:
            headers = {"Authorization": token}
        resp = await client.request(method, "/api/v1" + path, json=body, headers=headers, **kw)
        return resp.status, await resp.json(), resp

    call.client = client
    # every request of a test runs with blocking calls on the event loop turned into errors
    with blockbuster_ctx(excluded_modules=["aiohttp.test_utils"]):
        yield call
    await client.close()  # the app's background work stops before the node fixture closes it


async def test_record_an_enterprise_and_an_accident_and_read_the_grade(api):
    status, body, resp = await api("POST", "/enterprises", enterprise())
    assert status == 201 and resp.headers["Location"] == f"/api/v1/enterprises/{body['id']}"
    status, body, resp = await api("POST", "/accidents", accident(deaths=9, missing=1))
    assert status == 201
    status, shown, _ = await api("GET", f"/accidents/{body['id']}", token="reader")
    assert status == 200 and (shown["grade"], shown["grade_label"]) == ("major", "重大")
    assert shown["history"][0]["actor"] == {"user": "clerk", "node": "130102"}
    status, sup, _ = await api(
        "POST", f"/accidents/{body['id']}/supplements", {"deaths": 29, "expected_version": 1}
    )
    assert status == 200 and sup["record"]["grade"] == "especially_major" and sup["version"] == 2


async def test_without_a_token_401_and_as_reader_403(api):
    status, body, resp = await api("POST", "/enterprises", enterprise(), token=None)
    assert status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await api("GET", "/status", token="Bearer nope"))[0] == 401
    assert (await api("GET", "/status", token="Basic abc"))[0] == 401
    status, body, _ = await api("POST", "/enterprises", enterprise(), token="reader")
    assert status == 403 and "writer" in body["error"]["message"]
    status, body, _ = await api("GET", "/status", token="reader")
    assert status == 200 and body["event_count"] == 0


async def test_invalid_bodies_get_422_with_every_field(api, tokens):
    bad = accident(deaths=-1, direct_loss_yuan="many", extra=1)
    status, body, _ = await api("POST", "/accidents", bad)
    assert status == 422 and body["error"]["code"] == "invalid"
    fields = {f["field"]: f["message"] for f in body["error"]["fields"]}
    assert set(fields) == {"deaths", "direct_loss_yuan", "extra"}
    assert fields["deaths"] == "must be at least 0"  # pydantic's errors in our words
    codes = {f["field"]: f["code"] for f in body["error"]["fields"]}
    assert codes == {
        "deaths": "greater_than_equal",
        "direct_loss_yuan": "int_type",
        "extra": "extra_forbidden",
    }
    resp = await api.client.post(
        "/api/v1/enterprises",
        data=b"{oops",
        headers={"Authorization": f"Bearer {tokens['writer']}", "Content-Type": "application/json"},
    )
    assert (
        resp.status == 422
        and "not valid JSON" in (await resp.json())["error"]["fields"][0]["message"]
    )
    assert (await api("GET", "/status"))[1]["event_count"] == 0


async def test_refusals_get_422_with_the_reason_and_record_nothing(api, clock):
    _, a, _ = await api("POST", "/accidents", accident())
    clock.advance(int(timedelta(days=31).total_seconds() * 1000))
    status, body, _ = await api(
        "POST", f"/accidents/{a['id']}/supplements", {"deaths": 1, "expected_version": 1}
    )
    assert (
        status == 422
        and body["error"]["code"] == "refused"
        and "within 30 days" in body["error"]["message"]
    )
    assert (await api("GET", "/status"))[1]["event_count"] == 1


async def test_unknown_ids_404(api):
    for path in (
        "/accidents/6333e143-bf7c-4588-9eb5-17c59e8638b9",
        "/records/nope",
        "/enterprises/1",
    ):
        status, body, _ = await api("GET", path)
        assert status == 404 and body["error"]["code"] == "not_found"
    status, _, _ = await api(
        "POST", "/accidents/6333e143-bf7c-4588-9eb5-17c59e8638b9/void", {"reason": "错误"}
    )
    assert status == 404


async def test_bodies_over_the_limit_get_413(api, node, tokens):
    limit = node.config.http.max_body_bytes
    import io
    import json

    resp = await api.client.post(
        "/api/v1/enterprises",
        data=io.BytesIO(json.dumps(enterprise(address="地" * limit)).encode()),
        headers={"Authorization": f"Bearer {tokens['writer']}", "Content-Type": "application/json"},
    )
    status, body = resp.status, await resp.json()
    assert status == 413 and str(limit) in body["error"]["message"]
    assert (await api("GET", "/status"))[1]["event_count"] == 0


async def test_two_concurrent_writers_one_wins_the_other_409(api):
    _, a, _ = await api("POST", "/accidents", accident())
    path = f"/accidents/{a['id']}/supplements"
    results = await asyncio.gather(
        api("POST", path, {"deaths": 1, "expected_version": 1}),
        api("POST", path, {"deaths": 2, "expected_version": 1}),
    )
    statuses = sorted(r[0] for r in results)
    assert statuses == [200, 409]
    # a revision that does not say which version it revises is refused outright
    status, body, _ = await api("POST", path, {"deaths": 3})
    assert status == 422 and body["error"]["fields"][0]["field"] == "expected_version"
    winner = next(r[1] for r in results if r[0] == 200)
    loser = next(r[1] for r in results if r[0] == 409)
    assert "reload" in loser["error"]["message"]
    _, shown, _ = await api("GET", f"/accidents/{a['id']}")
    assert shown["version"] == 2 and shown["deaths"] == winner["record"]["deaths"]


async def test_duplicate_registration_409(api):
    assert (await api("POST", "/enterprises", enterprise()))[0] == 201
    status, body, _ = await api("POST", "/enterprises", enterprise())
    assert status == 409 and "already exists" in body["error"]["message"]


async def test_the_log_can_be_read_in_pages(api):
    for i in range(3):
        await api("POST", "/enterprises", enterprise(credit_code=credit_code(i + 10)))
    status, page, _ = await api("GET", "/events?after=1&limit=1", token="reader")
    assert status == 200 and [e["position"] for e in page["events"]] == [2] and page["next"] == 2
    assert page["events"][0]["event"] == "enterprise.registered/1"
    assert page["events"][0]["recorded_at"].endswith("+08:00")  # China time unless asked
    _, raw, _ = await api("GET", "/events?after=1&limit=1&time=epoch", token="reader")
    assert isinstance(raw["events"][0]["recorded_at"], int)  # for a program that asks
    assert (await api("GET", "/events?time=unix"))[0] == 422
    assert (await api("GET", "/events?limit=0"))[0] == 422
    assert (await api("GET", "/events?after=x"))[0] == 422


async def test_users_added_and_removed_take_effect_without_restart(api, node):
    async def answered(wanted: int, within: float = 30.0) -> int:
        """The status GET /status answers the token with, polled until it is ``wanted`` (the
        users file is looked at every second: on an idle machine it is within one)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            status, _, _ = await api("GET", "/status", token=f"Bearer {token}")
            if status == wanted or loop.time() > deadline:
                return status
            await asyncio.sleep(0.1)

    token = await asyncio.to_thread(add_user, node.config.users_file, "newcomer", Role.WRITER)
    assert await answered(200) == 200
    await asyncio.to_thread(remove_user, node.config.users_file, "newcomer")
    assert await answered(401) == 401


async def test_openapi_matches_the_routes(api):
    status, doc, _ = await api("GET", "/openapi.json", token=None)
    assert status == 200 and doc["openapi"].startswith("3.")
    app = api.client.server.app
    served = {
        (r.method.lower(), r.resource.canonical)
        for r in app.router.routes()
        if r.method != "HEAD" and r.resource is not None
    }
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert served == documented
    from domain.commands import SPECS

    ops = {op["operationId"]: op for ops in doc["paths"].values() for op in ops.values()}
    for spec in SPECS:
        ref = ops[spec.kind]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"]
    # every $ref resolves
    import json

    text = json.dumps(doc)
    for name in {part.split('"')[0] for part in text.split("#/components/schemas/")[1:]}:
        assert name in doc["components"]["schemas"], name


async def test_blocking_calls_on_the_event_loop_are_detected(api):
    """The guard used by these tests is live: a blocking call inside a handler would fail."""
    import time

    from blockbuster import BlockingError

    async def blocked():
        time.sleep(0.001)

    with pytest.raises(BlockingError):
        await blocked()


async def test_near_miss_over_http(api):
    body = accident()
    for k in ("deaths", "missing", "serious_injuries", "direct_loss_yuan"):
        body.pop(k)
    status, rec, _ = await api("POST", "/near-misses", {**body, "evacuated": 600})
    assert status == 201 and rec["record"]["grade"] == "near_miss"
    status, err, _ = await api(
        "POST", f"/accidents/{rec['id']}/supplements", {"deaths": 1, "expected_version": 1}
    )
    assert status == 422 and err["error"]["fields"][0]["field"] == "deaths"


@pytest.mark.parametrize(
    "moment",
    ["0001-01-01T00:30:00+01:00", "9999-12-31T23:00:00-05:00", "1900-01-01T00:00:00+08:00"],
)
async def test_implausible_times_get_422_and_nothing_is_recorded(api, moment):
    status, body, _ = await api("POST", "/accidents", accident(occurred_at=moment))
    assert status == 422 and body["error"]["fields"][0]["field"] == "occurred_at"
    _, a, _ = await api("POST", "/accidents", accident())
    status, body, _ = await api(
        "POST",
        f"/accidents/{a['id']}/corrections",
        {"occurred_at": moment, "reason": "typo fix", "expected_version": 1},
    )
    assert status == 422
    assert (await api("GET", f"/accidents/{a['id']}"))[1]["version"] == 1
    assert (await api("GET", "/status"))[1]["event_count"] == 1


async def test_a_huge_log_position_is_refused_not_a_crash(api):
    status, body, _ = await api("GET", "/events?after=9223372036854775808")
    assert status == 422 and "after" in body["error"]["fields"][0]["field"]


async def test_every_record_kind_is_readable_and_readings_are_taken(api):
    from domain.commands import COLLECTIONS, SPECS
    from tests.factories import SITE_CODE, site

    names = {r.name for r in api.client.server.app.router.routes()}
    assert {s.kind for s in SPECS} | {f"{k}.show" for k in COLLECTIONS} | {
        "sensor.readings"
    } <= names
    status, s, resp = await api("POST", "/sites", site())
    assert status == 201 and resp.headers["Location"] == f"/api/v1/sites/{s['id']}"
    point = {"point_code": "CO-1", "sensor_type": "co"}
    assert (await api("POST", f"/sites/{s['id']}/points", point))[0] == 200
    batch = {"readings": [{"point": "CO-1", "t": "2026-11-29T07:00:00+00:00", "value": 25}]}
    status, r, _ = await api("POST", f"/sites/{SITE_CODE}/readings", batch)
    assert status == 200 and r["stored"] == 1
    assert r["events"] == ["sensor.alarm_raised/1", "sensor.summary_recorded/1"]  # closed window
    status, shown, _ = await api("GET", f"/sites/{SITE_CODE}", token="reader")
    assert status == 200 and shown["kind"] == "site" and shown["active_alarms"] == ["CO-1"]
    status, body, _ = await api(
        "POST", f"/sites/{SITE_CODE}/readings", {"readings": [{"point": "X", "t": 1, "value": 1}]}
    )
    assert status == 422 and body["error"]["fields"][0]["field"] == "readings.0.point"
    assert (await api("POST", "/sites/NOSUCH/readings", batch))[0] == 404


async def test_a_batch_is_recorded_whole_or_not_at_all(api):
    items = [
        {"kind": "enterprise.register", "body": enterprise(credit_code=credit_code(50 + i))}
        for i in range(3)
    ]
    status, r, _ = await api("POST", "/batch", {"commands": items})
    assert status == 200 and r["recorded"] == 3 and r["position"] == 3
    acc = accident()
    bad = [
        {"kind": "accident.report", "body": acc},
        {
            "kind": "enterprise.register",
            "body": enterprise(credit_code=credit_code(60), division="999999"),
        },
    ]
    status, body, _ = await api("POST", "/batch", {"commands": bad})
    assert status == 422 and body["error"]["fields"][0]["field"] == "commands.1.division"
    status, body, _ = await api(
        "POST",
        "/batch",
        {
            "commands": [
                {"kind": "enterprise.register", "body": enterprise(credit_code=credit_code(50))}
            ]
        },
    )
    assert status == 409 and "commands.0" in body["error"]["message"]
    assert (await api("GET", "/status"))[1]["event_count"] == 3  # nothing of the failed batches


async def _reload_users(api, node):
    """What the server does within a second of a change of users.toml, done now."""
    from node.api.shared import RUNTIME
    from node.users import read_table

    users = await asyncio.to_thread(read_table, node.config.users_file)
    api.client.server.app[RUNTIME].users = users


async def test_an_expired_token_gets_401_naming_its_expiry(api, node, clock):
    from node.users import DAY_MS

    path = node.config.users_file
    token = await asyncio.to_thread(
        add_user, path, "late", Role.WRITER, now_ms=clock() - 91 * DAY_MS
    )
    fresh = await asyncio.to_thread(
        add_user, path, "fresh", Role.READER, now_ms=clock() - 89 * DAY_MS
    )
    await _reload_users(api, node)
    status, body, resp = await api("GET", "/status", token=f"Bearer {token}")
    assert status == 401 and body["error"]["code"] == "token_expired"
    assert "expired at 2026-11-28T16:00:00+08:00" in body["error"]["message"]  # NOW - 1 day
    assert "anjian users rotate" in body["error"]["message"]
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await api("GET", "/status", token=f"Bearer {fresh}"))[0] == 200
    clock.advance(DAY_MS)  # expiry is judged by the node's clock
    assert (await api("GET", "/status", token=f"Bearer {fresh}"))[0] == 401
    status, body, _ = await api("POST", "/enterprises", enterprise(), token=f"Bearer {token}")
    assert status == 401 and (await api("GET", "/status"))[1]["event_count"] == 0


async def test_a_token_from_before_tokens_expired_is_refused_with_how_to_renew(api, node):
    import tomllib

    import tomli_w

    from node.users import digest

    def add_old_entry(path):
        data = tomllib.loads(path.read_text())
        data["users"].append({"name": "old", "role": "writer", "token_sha256": digest("ajt_old")})
        path.write_text(tomli_w.dumps(data))

    await asyncio.to_thread(add_old_entry, node.config.users_file)
    await _reload_users(api, node)
    status, body, _ = await api("GET", "/status", token="Bearer ajt_old")
    assert status == 401 and "has no expiry" in body["error"]["message"]
    assert "anjian users rotate DIR old" in body["error"]["message"]


async def test_a_rotated_token_replaces_the_old_one(api, node, tokens):
    from node.users import rotate_token

    new = await asyncio.to_thread(rotate_token, node.config.users_file, "clerk")
    await _reload_users(api, node)
    status, body, _ = await api("GET", "/status")  # the old token of clerk
    assert status == 401 and body["error"]["message"] == "unknown or revoked token"
    assert (await api("GET", "/status", token=f"Bearer {new}"))[0] == 200
    status, me, _ = await api("GET", "/session", token=f"Bearer {new}")
    assert status == 200 and me["via"] == "token" and me["token_expires"].endswith("+08:00")


async def test_records_and_exports_are_in_the_access_log(api, node, tokens):
    from node import access

    status, created, _ = await api("POST", "/enterprises", enterprise())
    assert status == 201
    await api("POST", "/enterprises", enterprise(), token="reader")  # refused: a reader
    await api("POST", "/accidents", accident(deaths=-1))  # refused: invalid
    await api("POST", "/enterprises", enterprise(), token=None)  # no token at all
    items = [{"kind": "enterprise.register", "body": enterprise(credit_code=credit_code(70))}]
    assert (await api("POST", "/batch", {"commands": items}))[0] == 200
    resp = await api.client.get(
        "/api/v1/query/accidents?format=csv&region=130102",
        headers={"Authorization": f"Bearer {tokens['reader']}"},
    )
    assert resp.status == 200
    await api("GET", "/status")  # reads are not logged
    entries, _ = await asyncio.to_thread(access.read, node.config.directory)
    got = [(e["user"], e["action"], e.get("kind"), e["target"], e["result"]) for e in entries]
    assert got == [
        ("clerk", "record", "enterprise.register", created["id"], "ok"),
        ("analyst", "record", "enterprise.register", None, "forbidden"),
        ("clerk", "record", "accident.report", None, "invalid"),
        # no one's: a request refused before anyone is known is not logged (sending it costs
        # nothing, so logging it would let anyone fill the node's disk)
        ("clerk", "record", "batch", None, "ok"),
        ("analyst", "export", None, "accidents", "ok"),
    ]
    assert entries[-1]["query"] == "format=csv&region=130102"
    assert {e["remote"] for e in entries} == {"127.0.0.1"}


async def test_a_query_exports_csv_for_a_spreadsheet(api, tokens):
    await api("POST", "/enterprises", enterprise(name="=HYPERLINK(1)"))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30  # the projections follow the log in their own process
    while True:
        resp = await api.client.get(
            "/api/v1/query/unlicensed?format=csv",
            headers={"Authorization": f"Bearer {tokens['reader']}"},
        )
        text = await resp.text()
        if "HYPERLINK" in text or loop.time() > deadline:
            break
        await asyncio.sleep(0.1)
    assert resp.status == 200 and resp.content_type == "text/csv"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="unlicensed.csv"'
    header, row, total = text.splitlines()
    assert header.startswith("\ufeffid,name,credit_code")  # UTF-8 with a BOM, for Excel
    assert ",'=HYPERLINK(1)," in row  # a spreadsheet shows it, never runs it
    assert total.startswith("total,")  # (合计（1 条） for a reader of Chinese)
    status, body, _ = await api("GET", "/query/accidents?format=xml")
    assert status == 422 and body["error"]["fields"][0]["field"] == "format"


def test_plain_http_is_refused_off_loopback_unless_allowed(node_dir):
    from node import config as config_mod
    from node.api.app import tls_context
    from node.errors import ConfigError

    config = config_mod.load(node_dir, environ={})
    for host in ("127.0.0.1", "::1", "localhost"):
        assert tls_context(config, host) is None
    for host in ("0.0.0.0", "10.1.2.3", ""):
        with pytest.raises(ConfigError, match="allow_plain = true") as e:
            tls_context(config, host)
        assert "tls_cert" in str(e.value) and "anjian tls" in str(e.value)
    allowed = config_mod.load(node_dir, environ={"ANJIAN_HTTP_ALLOW_PLAIN": "true"})
    assert tls_context(allowed, "0.0.0.0") is None
    half = config_mod.load(node_dir, environ={"ANJIAN_HTTP_TLS_CERT": "tls/node.crt"})
    with pytest.raises(ConfigError, match="go together"):
        tls_context(half, "127.0.0.1")
    missing = config_mod.load(
        node_dir, environ={"ANJIAN_HTTP_TLS_CERT": "a.crt", "ANJIAN_HTTP_TLS_KEY": "a.key"}
    )
    with pytest.raises(ConfigError, match=f"{node_dir.resolve()}/a.crt does not exist"):
        tls_context(missing, "0.0.0.0")  # paths are relative to the node directory


async def test_a_register_pages_by_the_cursor_each_page_gives(api, tokens):
    for day in (1, 2, 3):
        body = accident(occurred_at=f"2026-11-2{day}T10:00:00+08:00")
        assert (await api("POST", "/accidents", body))[0] == 201
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30  # the projections follow the log in their own process
    while True:
        status, page, _ = await api("GET", "/query/accidents?limit=2", token="reader")
        if len(page["rows"]) == 2 or loop.time() > deadline:
            break
        await asyncio.sleep(0.1)
    assert status == 200 and page["next"]
    first = [r["occurred_at"] for r in page["rows"]]
    status, rest, _ = await api("GET", f"/query/accidents?limit=2&after={page['next']}")
    assert status == 200 and rest["next"] is None
    assert first + [r["occurred_at"] for r in rest["rows"]] == [
        "2026-11-23T10:00:00+08:00",
        "2026-11-22T10:00:00+08:00",
        "2026-11-21T10:00:00+08:00",
    ]
    status, body, _ = await api("GET", "/query/accidents?after=not-a-cursor")
    assert status == 422 and body["error"]["fields"][0]["field"] == "after"


def test_json_answers_are_utf8_and_keep_what_a_fast_encoder_refuses():
    """Answers are encoded by orjson; an integer beyond 64 bits (which it refuses) still
    answers, through the standard library, with the same value."""
    answer = ok({"名称": "石家庄", 7: 2**70, "rows": [{"n": 1.5}]})
    assert answer.content_type == "application/json" and answer.charset == "utf-8"
    assert json.loads(answer.body) == {"名称": "石家庄", "7": 2**70, "rows": [{"n": 1.5}]}
    assert "石家庄".encode() in answer.body  # UTF-8, not \\u escapes
    lone = ok({"text": "\ud800"})  # not UTF-8: escaped, not an internal error
    assert json.loads(lone.body) == {"text": "\ud800"}
