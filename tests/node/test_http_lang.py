"""The HTTP API in its reader's language: error bodies in zh-CN unless ``Accept-Language`` asks
for English, each with a stable ``code`` (and each bad field with its own) a program branches on;
and the HTTP details: a body with a UTF-8 byte-order mark is read, a body that is
not JSON is answered 415, a bad query parameter is named, every error aiohttp raises has a code
and a translated message, the OpenAPI document types answers and batch items."""

import codecs
import io
import json
import re
from datetime import timedelta

import pytest
from blockbuster import blockbuster_ctx

from domain.commands import SPECS
from domain.errors import PYDANTIC
from domain.i18n import EN, ZH, Text, gettext
from node.api.app import make_app
from tests.factories import accident, credit_code, enterprise

HAN = re.compile("[\u4e00-\u9fff]")
ENGLISH = {"Accept-Language": "en"}


def chinese(text: str) -> bool:
    return bool(HAN.search(text))


@pytest.fixture
async def api(aiohttp_client, node, tokens):
    """A client that says nothing about its language unless a test does (so: zh-CN)."""
    client = await aiohttp_client(make_app(node))

    async def call(method, path, body=None, token="writer", headers=None, **kw):
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {tokens[token]}"
        if body is not None:
            kw["json"] = body
        resp = await client.request(method, "/api/v1" + path, headers=sent, **kw)
        return resp.status, await resp.json(), resp

    call.client, call.tokens = client, tokens
    with blockbuster_ctx(excluded_modules=["aiohttp.test_utils"]):
        yield call
    await client.close()


def fields(body):
    return {f["field"]: (f["code"], f["message"]) for f in body["error"]["fields"]}


# -- validation and refusals, in both languages ----------------------------------------------------
async def test_a_validation_error_reads_in_chinese_by_default_with_each_fields_code(api):
    bad = accident(deaths=-1)
    del bad["place"]
    status, body, resp = await api("POST", "/accidents", bad)
    assert status == 422 and resp.headers["Content-Language"] == ZH
    assert body["error"]["code"] == "invalid"
    assert body["error"]["message"] == gettext("the request has invalid fields", ZH)
    assert chinese(body["error"]["message"])
    got = fields(body)
    assert set(got) == {"place", "deaths"}
    assert got["place"] == ("missing", gettext(PYDANTIC["missing"], ZH))
    assert got["deaths"] == (
        "greater_than_equal",
        Text(PYDANTIC["greater_than_equal"], {"ge": 0}).render(ZH),
    )
    assert all(chinese(message) for _code, message in got.values())


async def test_the_same_validation_error_reads_in_english_on_request(api):
    bad = accident(deaths=-1)
    del bad["place"]
    for asked in ("en", "en-US,en;q=0.9,zh-CN;q=0.5", "fr, en;q=0.8"):
        status, body, resp = await api(
            "POST", "/accidents", bad, headers={"Accept-Language": asked}
        )
        assert status == 422 and resp.headers["Content-Language"] == EN
        assert body["error"]["message"] == "the request has invalid fields"
        assert fields(body) == {
            "place": ("missing", "this field is required"),
            "deaths": ("greater_than_equal", "must be at least 0"),
        }
    assert (await api("GET", "/status"))[1]["event_count"] == 0


async def test_a_refusal_reads_in_both_languages(api, clock):
    _, a, _ = await api("POST", "/accidents", accident())
    clock.advance(int(timedelta(days=31).total_seconds() * 1000))
    path = f"/accidents/{a['id']}/supplements"
    late = {"deaths": 1, "expected_version": 1}
    status, zh, _ = await api("POST", path, late)
    assert status == 422 and zh["error"]["code"] == "refused"
    assert chinese(zh["error"]["message"]) and "30" in zh["error"]["message"]
    status, en, _ = await api("POST", path, late, headers=ENGLISH)
    assert status == 422 and en["error"]["code"] == "refused"
    assert "within 30 days" in en["error"]["message"]
    # the API's own refusals: a reader may not record
    status, zh, _ = await api("POST", "/enterprises", enterprise(), token="reader")
    assert status == 403 and zh["error"]["code"] == "forbidden"
    assert zh["error"]["message"] == "用户 'analyst' 的角色为 'reader'；记录需要“writer”角色"
    status, en, _ = await api("POST", "/enterprises", enterprise(), token="reader", headers=ENGLISH)
    assert en["error"]["message"] == (
        "user 'analyst' has the role 'reader'; recording needs the 'writer' role"
    )


async def test_who_is_refused_reads_why_in_chinese(api):
    status, body, resp = await api("GET", "/status", token=None)
    assert status == 401 and body["error"]["code"] == "unauthenticated"
    assert body["error"]["message"].startswith("请发送“Authorization: Bearer <令牌>”请求头")
    assert "POST /api/v1/session" in body["error"]["message"]
    resp = await api.client.get("/api/v1/status", headers={"Authorization": "Bearer nope"})
    body = await resp.json()
    assert resp.status == 401 and body["error"]["message"] == "令牌未知或已被撤销"
    resp = await api.client.get("/api/v1/status", cookies={"anjian_session": "made-up"})
    body = await resp.json()
    assert resp.status == 401 and body["error"]["code"] == "session_ended"
    assert (
        body["error"]["message"].startswith("会话不存在")
        and "请重新登录" in body["error"]["message"]
    )
    resp = await api.client.post("/api/v1/session", data={"name": "clerk", "password": "x"})
    body = await resp.json()
    assert resp.status == 415 and body["error"]["code"] == "unsupported_media_type"
    assert body["error"]["message"].startswith("请以 JSON 对象发送登录信息")


# -- what aiohttp raises: a code and a message in the reader's language -------------------------
async def test_unknown_routes_and_methods_read_in_chinese_with_a_stable_code(api):
    status, body, _ = await api("GET", "/nothing-here")
    assert status == 404 and body["error"]["code"] == "not_found"
    assert body["error"]["message"] == (
        "不存在该路由：GET /api/v1/nothing-here（API 的全部路由见 /api/v1/openapi.json）"
    )
    resp = await api.client.get("/elsewhere")  # outside the API: no token asked for
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    status, body, resp = await api("DELETE", "/status")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"
    assert "GET" in resp.headers["Allow"]
    assert body["error"]["message"].startswith("/api/v1/status 不接受 DELETE 请求")
    status, body, _ = await api("DELETE", "/status", headers=ENGLISH)
    assert body["error"]["message"].startswith("/api/v1/status does not take DELETE; it takes")


async def test_a_body_over_the_limit_reads_in_chinese(api, node):
    limit = node.config.http.max_body_bytes
    raw = io.BytesIO(json.dumps(enterprise(address="地" * limit)).encode())
    status, body, _ = await api(
        "POST", "/enterprises", data=raw, headers={"Content-Type": "application/json"}
    )
    assert status == 413 and body["error"]["code"] == "too_large"
    assert body["error"]["message"] == f"请求体超过 {limit} 字节的上限；未记录任何内容"


async def test_a_body_that_is_not_json_gets_415(api):
    raw = json.dumps(enterprise()).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        status, body, _ = await api(
            "POST", "/enterprises", data=raw, headers={"Content-Type": content_type}
        )
        assert status == 415 and body["error"]["code"] == "unsupported_media_type"
        assert body["error"]["message"].startswith("请求体须为 JSON")
        assert repr(content_type) in body["error"]["message"]
    status, body, _ = await api(
        "POST",
        "/enterprises",
        data=raw,
        headers={"Content-Type": "application/json; charset=GBK", **ENGLISH},
    )
    assert status == 415 and body["error"]["message"] == (
        "JSON is sent in UTF-8, not in gbk; nothing was recorded"
    )
    for path in ("/batch", "/sites/130102B0012/readings"):
        status, body, _ = await api("POST", path, data=raw, headers={"Content-Type": "text/csv"})
        assert status == 415, path
    assert (await api("GET", "/status"))[1]["event_count"] == 0
    # JSON by its type, or with none at all, is read
    status, _, _ = await api(
        "POST",
        "/enterprises",
        data=raw,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert status == 201
    status, _, _ = await api(
        "POST",
        "/enterprises",
        data=json.dumps(enterprise(credit_code=credit_code(2))).encode(),
        skip_auto_headers=["Content-Type"],
    )
    assert status == 201


async def test_a_body_with_a_utf8_byte_order_mark_is_read(api):
    raw = codecs.BOM_UTF8 + json.dumps(enterprise(), ensure_ascii=False).encode()
    status, created, _ = await api(
        "POST", "/enterprises", data=raw, headers={"Content-Type": "application/json"}
    )
    assert status == 201 and created["record"]["name"] == enterprise()["name"]
    items = [{"kind": "enterprise.register", "body": enterprise(credit_code=credit_code(3))}]
    raw = codecs.BOM_UTF8 + json.dumps({"commands": items}).encode()
    status, done, _ = await api(
        "POST", "/batch", data=raw, headers={"Content-Type": "application/json"}
    )
    assert status == 200 and done["recorded"] == 1


# -- query parameters ----------------------------------------------------------------------------
async def test_a_bad_query_parameter_is_named_not_pythons_words(api):
    status, body, _ = await api("GET", "/events?limit=abc", token="reader")
    assert status == 422 and body["error"]["code"] == "invalid"
    code, message = fields(body)["limit"]
    assert code == "int_parsing"
    assert message == "查询参数 limit 须为 1 至 1000 之间的整数，不能为 'abc'"
    assert "invalid literal" not in json.dumps(body)
    status, body, _ = await api("GET", "/events?after=abc&limit=0", headers=ENGLISH)
    assert fields(body) == {
        "after": (
            "int_parsing",
            "the query parameter after must be a whole number from 0 to 4611686018427387903, "
            "not 'abc'",
        ),
        "limit": (
            "greater_than_equal",
            "the query parameter limit must be a whole number from 1 to 1000, not '0'",
        ),
    }
    status, body, _ = await api("GET", "/events?limit=1001")
    assert status == 422 and fields(body)["limit"][0] == "less_than_equal"
    assert (await api("GET", "/events?after=0&limit=5"))[0] == 200


# -- the OpenAPI document ------------------------------------------------------------------------
async def test_openapi_types_the_batch_items_by_kind(api):
    status, doc, _ = await api("GET", "/openapi.json", token=None)
    assert status == 200
    schemas = doc["components"]["schemas"]
    items = schemas["Batch"]["properties"]["commands"]["items"]
    assert items["discriminator"]["propertyName"] == "kind"
    mapping = items["discriminator"]["mapping"]
    assert set(mapping) == {spec.kind for spec in SPECS}
    assert [one["$ref"] for one in items["oneOf"]] == list(mapping.values())
    for spec in SPECS:
        item = schemas[mapping[spec.kind].rsplit("/", 1)[1]]
        assert item["properties"]["kind"] == {"const": spec.kind}
        body = item["properties"]["body"]["$ref"].rsplit("/", 1)[1]
        assert body == spec.model.__name__ and body in schemas
        assert ("id" in item["required"]) == (spec.update is not None)


async def test_openapi_success_responses_have_schemas(api):
    _, doc, _ = await api("GET", "/openapi.json", token=None)
    schemas = doc["components"]["schemas"]
    ops = {op["operationId"]: op for ops in doc["paths"].values() for op in ops.values()}

    def answer(name, status="200"):
        schema = ops[name]["responses"][status]["content"]["application/json"]["schema"]
        return schema.get("$ref", "").rsplit("/", 1)[-1] or schema

    assert answer("accident.report", "201") == "Recorded"
    assert schemas["Recorded"]["properties"]["record"]["$ref"].endswith("/Record")
    assert {"id", "kind", "version", "history"} <= set(schemas["Record"]["required"])
    assert answer("accident.show") == "Record"
    assert answer("status") == "Status"
    assert answer("batch") == "BatchAnswer"
    assert set(schemas["BatchAnswer"]["required"]) == {"recorded", "position", "records"}
    assert answer("events") == "Events"
    query = answer("query")
    assert {"$ref": "#/components/schemas/QueryAnswer"} in query["oneOf"]
    assert set(schemas["QueryAnswer"]["required"]) == {"query", "rows", "limit", "offset"}
    assert "text/csv" in ops["query"]["responses"]["200"]["content"]
    assert "415" in ops["accident.report"]["responses"]
    assert set(
        schemas["Error"]["properties"]["error"]["properties"]["fields"]["items"]["required"]
    ) == {"field", "code", "message"}


async def test_the_answer_says_its_language(api):
    _, _, resp = await api("GET", "/status", headers={"Accept-Language": "zh-TW, en;q=0.1"})
    assert resp.headers["Content-Language"] == ZH
    _, _, resp = await api("GET", "/status", headers={"Accept-Language": "de"})
    assert resp.headers["Content-Language"] == ZH
