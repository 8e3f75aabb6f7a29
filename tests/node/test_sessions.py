"""The web console's login sessions over HTTP: a password login gives an HttpOnly, SameSite=Strict
cookie and a CSRF token every change must carry; sessions end at logout, after the idle time
(the node's clock, set by the test), with a new password or a removed user; a name is locked
after repeated failures, and unknown names are answered exactly like known ones."""

import asyncio

import pytest
from blockbuster import blockbuster_ctx

from node import access
from node.api.app import make_app
from node.api.shared import RUNTIME
from node.users import Role, add_user, read_table, remove_user, set_password
from tests.factories import credit_code, enterprise

PASSWORD = "correct horse battery"
MINUTE = 60_000


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    """argon2id at its cheapest: these tests are about sessions, not the cost of a hash
    (tests/node/test_users.py checks the real one)."""
    from argon2 import PasswordHasher

    from node import users

    monkeypatch.setattr(users, "_hasher", PasswordHasher(1, 1024, 1))
    users._nobody.cache_clear()
    yield
    users._nobody.cache_clear()


@pytest.fixture
def users(node):
    path = node.config.users_file
    tokens = {"clerk": add_user(path, "clerk", Role.WRITER), "analyst": "x"}
    add_user(path, "analyst", Role.READER)
    set_password(path, "clerk", PASSWORD)
    set_password(path, "analyst", PASSWORD)
    return tokens


@pytest.fixture
async def console(aiohttp_client, node, users):
    # the tests below read the English texts (the default language over HTTP is zh-CN)
    client = await aiohttp_client(make_app(node), headers={"Accept-Language": "en"})

    async def call(method, path, body=None, headers=None, **kw):
        resp = await client.request(method, "/api/v1" + path, json=body, headers=headers, **kw)
        return resp.status, await resp.json(), resp

    async def login(name="clerk", password=PASSWORD):
        return await call("POST", "/session", {"name": name, "password": password})

    async def reload_users():
        users = await asyncio.to_thread(read_table, node.config.users_file)
        client.server.app[RUNTIME].users = users

    call.client, call.login, call.reload_users = client, login, reload_users
    with blockbuster_ctx(excluded_modules=["aiohttp.test_utils"]):
        yield call
    await client.close()


async def access_log(node):
    return (await asyncio.to_thread(access.read, node.config.directory))[0]


async def test_a_login_gives_a_strict_httponly_cookie_and_a_csrf_token(console, node):
    status, body, resp = await console.login()
    assert status == 200 and body["user"] == "clerk" and body["role"] == "writer"
    assert body["via"] == "session" and body["csrf_header"] == "X-CSRF-Token"
    cookie = resp.cookies["anjian_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/api/v1"
    assert not cookie["secure"]  # plain HTTP on loopback here; HTTPS: tests/integration
    assert cookie.value not in str(body)
    status, me, _ = await console("GET", "/session")
    assert status == 200 and me["csrf_token"] == body["csrf_token"]  # e.g. after a reload
    assert (await console("GET", "/status"))[0] == 200
    entries = await access_log(node)
    assert [(e["user"], e["action"], e["result"]) for e in entries] == [("clerk", "login", "ok")]


async def test_a_change_with_the_cookie_needs_the_csrf_token(console, node, users):
    _, body, _ = await console.login()
    csrf = {"X-CSRF-Token": body["csrf_token"]}
    status, err, _ = await console("POST", "/enterprises", enterprise())
    assert status == 403 and err["error"]["code"] == "csrf"
    assert "X-CSRF-Token" in err["error"]["message"]
    wrong = {"X-CSRF-Token": body["csrf_token"][:-1] + "x"}
    assert (await console("POST", "/enterprises", enterprise(), headers=wrong))[0] == 403
    assert (await console("GET", "/status"))[1]["event_count"] == 0  # nothing was recorded
    status, created, _ = await console("POST", "/enterprises", enterprise(), headers=csrf)
    assert status == 201 and created["record"]["name"] == enterprise()["name"]
    _, shown, _ = await console("GET", f"/enterprises/{created['id']}")
    assert shown["history"][0]["actor"]["user"] == "clerk"
    # a bearer request is not a cookie's: no CSRF token needed, also with the cookie present
    bearer = {"Authorization": f"Bearer {users['clerk']}"}
    body2 = enterprise(credit_code=credit_code(80))
    assert (await console("POST", "/enterprises", body2, headers=bearer))[0] == 201
    results = [(e["action"], e["result"]) for e in await access_log(node)]
    assert results[:4] == [
        ("login", "ok"),
        ("record", "csrf"),
        ("record", "csrf"),
        ("record", "ok"),
    ]


async def test_a_reader_session_may_read_but_not_record(console):
    _, body, _ = await console.login("analyst")
    csrf = {"X-CSRF-Token": body["csrf_token"]}
    assert (await console("GET", "/status"))[0] == 200
    status, err, _ = await console("POST", "/enterprises", enterprise(), headers=csrf)
    assert status == 403 and err["error"]["code"] == "forbidden"
    assert (await console("DELETE", "/session", headers=csrf))[0] == 200  # but log out


async def test_logout_ends_the_session(console, node):
    _, body, _ = await console.login()
    cookie = console.client.session.cookie_jar.filter_cookies(
        console.client.make_url("/api/v1/status")
    )["anjian_session"].value
    status, err, _ = await console("DELETE", "/session")  # without the CSRF token
    assert status == 403 and err["error"]["code"] == "csrf"
    status, out, resp = await console(
        "DELETE", "/session", headers={"X-CSRF-Token": body["csrf_token"]}
    )
    assert status == 200 and out == {"user": "clerk", "logged_out": True}
    assert resp.cookies["anjian_session"].value == ""  # the browser forgets it
    headers = {"Cookie": f"anjian_session={cookie}"}  # the old cookie, sent anyway
    status, err, _ = await console("GET", "/status", headers=headers)
    assert status == 401 and err["error"]["code"] == "session_ended"
    assert [e["action"] for e in await access_log(node)] == ["login", "logout"]


async def test_a_bearer_token_is_not_a_session_to_end(console, users):
    bearer = {"Authorization": f"Bearer {users['clerk']}"}
    status, err, _ = await console("DELETE", "/session", headers=bearer)
    assert status == 400 and err["error"]["code"] == "no_session"


async def test_a_session_ends_after_the_idle_time_but_not_while_used(console, clock, node):
    idle = node.config.http.session_idle_minutes
    await console.login()
    for _ in range(3):  # each request restarts the idle time
        clock.advance((idle - 1) * MINUTE)
        assert (await console("GET", "/status"))[0] == 200
    clock.advance(idle * MINUTE)
    status, err, _ = await console("GET", "/status")
    assert status == 401 and err["error"]["code"] == "session_ended"
    assert f"after {idle} minutes without a request" in err["error"]["message"]
    assert (await console.login())[0] == 200


async def test_a_new_password_or_a_removed_user_ends_the_session(console, node):
    await console.login()
    await asyncio.to_thread(set_password, node.config.users_file, "clerk", PASSWORD + "!")
    await console.reload_users()
    status, err, _ = await console("GET", "/status")
    assert status == 401 and "password changed" in err["error"]["message"]
    assert (await console.login(password=PASSWORD + "!"))[0] == 200
    await asyncio.to_thread(remove_user, node.config.users_file, "clerk")
    await console.reload_users()
    assert (await console("GET", "/status"))[0] == 401


async def test_repeated_failures_lock_a_name_and_unknown_names_get_the_same_answers(
    console, node, clock
):
    http = node.config.http
    assert http.lockout_failures == 5

    async def attempts(name):
        answers = []
        for _ in range(http.lockout_failures):
            status, body, _ = await console.login(name, "not the password")
            answers.append((status, body["error"]["code"], body["error"]["message"]))
        status, body, resp = await console.login(name, PASSWORD)  # right, for clerk: too late
        answers.append((status, body["error"]["code"], resp.headers.get("Retry-After")))
        return answers

    known = await attempts("clerk")
    unknown = await attempts("nobody")
    assert known == unknown  # nothing tells the two apart
    assert [a[0] for a in known] == [401] * 5 + [429]
    assert "wrong user name or password" in known[0][2]
    assert known[-1][2] == str(http.lockout_minutes * 60)
    _, body, _ = await console.login("clerk", PASSWORD)
    assert "refused until 2026-11-29T16:15:00+08:00" in body["error"]["message"]
    assert "nobody" not in body["error"]["message"]
    assert (await console.login("analyst"))[0] == 200  # per name: others log in

    clock.advance(http.lockout_minutes * MINUTE)
    assert (await console.login("clerk"))[0] == 200
    # a success clears the count: four failures later the name is not locked
    for _ in range(http.lockout_failures - 1):
        assert (await console.login("clerk", "wrong"))[0] == 401
    assert (await console.login("clerk"))[0] == 200

    logins = [(e["user"], e["result"]) for e in await access_log(node) if e["action"] == "login"]
    assert logins[:6] == [("clerk", "failed")] * 5 + [("clerk", "locked")]
    assert logins[6:12] == [("nobody", "failed")] * 5 + [("nobody", "locked")]
    # one "locked" line per lockout: refusing a locked name costs nothing, so each one logged
    # would let anyone fill the disk
    assert logins.count(("clerk", "locked")) == 1
    assert all(e["remote"] == "127.0.0.1" for e in await access_log(node))


async def test_a_login_must_be_json_with_a_name_and_a_password(console):
    resp = await console.client.post(
        "/api/v1/session", data={"name": "clerk", "password": PASSWORD}
    )  # a form post, as a cross-site page could send
    assert resp.status == 415
    status, body, _ = await console("POST", "/session", {"name": "clerk"})
    assert status == 422 and body["error"]["fields"][0]["field"] == "password"
    status, body, _ = await console("GET", "/status")
    assert status == 401 and "POST /api/v1/session" in body["error"]["message"]


async def test_a_flood_of_logins_is_answered_busy_before_it_is_checked(console, node):
    """Beyond WAITING logins waiting for a password check, one is refused at once (503 with
    Retry-After), counts against no name and costs no check."""
    from node.api.auth import SESSIONS
    from node.api.sessions import WAITING

    sessions = console.client.server.app[SESSIONS]
    sessions.waiting = WAITING  # as many as may wait are waiting
    status, body, resp = await console.login("clerk", "not the password")
    assert status == 503 and body["error"]["code"] == "busy"
    assert resp.headers["Retry-After"] == "1"
    sessions.waiting = 0
    assert (await console.login())[0] == 200  # not counted as a failure of clerk's


def test_made_up_names_cannot_wipe_a_real_names_failures():
    """Past the names it remembers, the node forgets the names with the fewest failures first:
    10,000 made-up names tried once leave clerk's four failures, so the fifth locks it."""
    from node.api.sessions import MAX_NAMES, Sessions

    sessions = Sessions(idle_minutes=30, lockout_failures=5, lockout_minutes=15)
    for _ in range(4):
        assert sessions.attempt("clerk", 0) is None
    for n in range(MAX_NAMES):
        assert sessions.attempt(f"junk{n}", 0) is None
    assert sessions.attempt("clerk", 0) is None  # the fifth failure in a row: now locked
    assert sessions.attempt("clerk", 1) == 15 * 60_000
