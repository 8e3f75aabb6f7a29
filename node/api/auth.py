"""Who is calling: a bearer token (``users.toml``, with an expiry), or a console session (a
password login for a cookie and a CSRF token, :mod:`node.api.sessions`). A change made with a
session cookie must carry the session's CSRF token; bearer requests carry no cookie and need
none. Logins and logouts go to the access log."""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from domain.i18n import _
from node.api.sessions import COOKIE, CSRF_HEADER, WAITING, Session, SessionEnded, Sessions
from node.api.shared import API, RUNTIME, USER, WHO, Handler, access_line, error, json_body, ok
from node.runtime import Runtime
from node.service import parse
from node.users import User, check_password, digest, iso_s

SESSION = f"{API}/session"
PUBLIC = frozenset({f"{API}/openapi.json"})
READ_METHODS = frozenset({"GET", "HEAD"})
SESSIONS = web.AppKey("sessions", Sessions)
COOKIE_VALUE = web.RequestKey("cookie", str)  # set when a session cookie authenticated it
CURRENT = web.RequestKey("session", Session)  # and the session it names


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PUBLIC or not request.path.startswith(API):
        return await handler(request)
    if request.path == SESSION and request.method == "POST":
        return await handler(request)  # the login
    rt = request.app[RUNTIME]
    now = rt.node.clock()
    header = request.headers.get("Authorization")
    cookie = request.cookies.get(COOKIE)
    if header is not None:  # a bearer token: no cookie, so no CSRF check
        found = _bearer_user(request, header, now)
    elif cookie:
        found = _session_user(request, cookie, now)
    else:
        return error(
            401,
            "unauthenticated",
            _(
                "send 'Authorization: Bearer <token>' (a node administrator issues tokens with "
                "`anjian users add`), or log in to the console: POST {session}",
                session=SESSION,
            ),
            headers=CHALLENGE,
        )
    if isinstance(found, web.Response):
        return found
    if request.method not in READ_METHODS and request.path != SESSION and not found.can_write():
        return error(
            403,
            "forbidden",
            _(
                "user {user!r} has the role {role!r}; recording needs the 'writer' role",
                user=found.name,
                role=found.role.value,
            ),
        )
    request[USER] = found
    return await handler(request)


CHALLENGE = {"WWW-Authenticate": 'Bearer realm="anjian"'}


def _bearer_user(request: web.Request, header: str, now: int) -> User | web.Response:
    scheme, _sep, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return error(
            401,
            "unauthenticated",
            _(
                "send 'Authorization: Bearer <token>' (a node administrator issues tokens "
                "with `anjian users add`)"
            ),
            headers=CHALLENGE,
        )
    user = request.app[RUNTIME].users.get(digest(token.strip()))
    if user is None:
        return error(401, "unauthenticated", _("unknown or revoked token"), headers=CHALLENGE)
    request[WHO] = user.name
    if user.token_expired(now):
        if user.expires_ms is not None:
            message = _(
                "the token of user {user!r} expired at {time}: ask a node administrator for a "
                "new one (`anjian users rotate DIR {user}`)",
                user=user.name,
                time=iso_s(user.expires_ms),
            )
        else:
            message = _(
                "the token of user {user!r} has no expiry (it was issued before tokens "
                "expired) and is no longer accepted: ask a node administrator for a new one "
                "(`anjian users rotate DIR {user}`)",
                user=user.name,
            )
        return error(401, "token_expired", message, headers=CHALLENGE)
    return user


def _session_user(request: web.Request, cookie: str, now: int) -> User | web.Response:
    sessions = request.app[SESSIONS]
    try:
        session = sessions.touch(cookie, now)
    except SessionEnded as e:
        response = error(401, "session_ended", str(e))
        response.del_cookie(COOKIE, path=API)
        return response
    request[WHO] = session.user
    user = _by_name(request.app[RUNTIME], session.user)
    if user is None or user.password != session.password:
        sessions.close(cookie)
        response = error(
            401,
            "session_ended",
            _("the session ended: the user was removed or their password changed; log in again"),
        )
        response.del_cookie(COOKIE, path=API)
        return response
    if request.method not in READ_METHODS and not hmac.compare_digest(
        request.headers.get(CSRF_HEADER, "").encode(), session.csrf.encode()
    ):
        return error(
            403,
            "csrf",
            _(
                "a change made with the console's session cookie must carry the session's "
                "CSRF token in the {header} header (the login's answer has it, and so has "
                "GET {session}); nothing was changed",
                header=CSRF_HEADER,
                session=SESSION,
            ),
        )
    request[COOKIE_VALUE], request[CURRENT] = cookie, session
    return user


def _by_name(rt: Runtime, name: str) -> User | None:
    return next((u for u in rt.users.values() if u.name == name), None)


# -- console sessions ----------------------------------------------------------------------------
class Login(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


async def login(request: web.Request) -> web.Response:
    """A user name and password for a session cookie and the session's CSRF token. After
    ``lockout_failures`` failures in a row a name is locked for ``lockout_minutes``; unknown
    names get exactly the answers known ones get."""
    body = await json_body(
        request,
        what=_(
            "send the login as a JSON object with a name and a password, with "
            "'Content-Type: application/json'"
        ),
    )
    form: Login = parse(Login, body)
    rt, sessions = request.app[RUNTIME], request.app[SESSIONS]
    http = rt.node.config.http
    now = rt.node.clock()
    request[WHO] = form.name
    if sessions.waiting >= WAITING:  # a flood: refused before it is counted or checked
        return error(
            503,
            "busy",
            _("too many logins are being checked at once; try again in a moment"),
            headers={"Retry-After": "1"},
        )
    locked_until = sessions.attempt(form.name, now)
    if locked_until is not None:
        if sessions.first_refusal(form.name):
            await access_line(request, "login", form.name, "locked")
        return error(
            429,
            "locked",
            _(
                "too many failed logins for {name!r} in a row: logins under this name are "
                "refused until {time}; try again then, or ask a node administrator",
                name=form.name,
                time=iso_s(locked_until),
            ),
            headers={"Retry-After": str(max(1, (locked_until - now + 999) // 1000))},
        )
    user = _by_name(rt, form.name)
    # the password is checked (slowly) for an unknown name too: the time tells nothing
    sessions.waiting += 1
    try:
        async with sessions.checks:
            right = await asyncio.to_thread(check_password, user, form.password)
    finally:
        sessions.waiting -= 1
    if not right or user is None:
        await access_line(request, "login", form.name, "failed")
        return error(
            401,
            "login_failed",
            _(
                "wrong user name or password (after {failures} failures in a row a name is "
                "locked for {minutes} minutes; a node administrator sets passwords with "
                "`anjian users password`)",
                failures=http.lockout_failures,
                minutes=http.lockout_minutes,
            ),
        )
    sessions.succeeded(form.name)
    assert user.password is not None
    cookie, session = sessions.open(user.name, user.password, now)
    await access_line(request, "login", user.name, "ok")
    response = ok(_session_view(user, session, sessions))
    # Secure over HTTPS, and behind a TLS proxy on loopback that says so (X-Forwarded-Proto:
    # the node sees plain HTTP while the browser speaks HTTPS): the cookie never goes in clear
    secure = request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"
    response.set_cookie(COOKIE, cookie, path=API, httponly=True, secure=secure, samesite="Strict")
    return response


async def logout(request: web.Request) -> web.Response:
    cookie = request.get(COOKIE_VALUE)
    if cookie is None:
        return error(
            400,
            "no_session",
            _(
                "this request has no session cookie: a bearer token is not a session (a node "
                "administrator revokes tokens with `anjian users rotate` or `anjian users "
                "remove`)"
            ),
        )
    request.app[SESSIONS].close(cookie)
    user: User = request[USER]
    await access_line(request, "logout", user.name, "ok")
    response = ok({"user": user.name, "logged_out": True})
    response.del_cookie(COOKIE, path=API)
    return response


async def whoami(request: web.Request) -> web.Response:
    """Who the request is: for a console session also its CSRF token (after a reload)."""
    user: User = request[USER]
    session = request.get(CURRENT)
    if session is not None:
        return ok(_session_view(user, session, request.app[SESSIONS]))
    assert user.expires_ms is not None  # an expired token never gets here
    return ok(
        {
            "user": user.name,
            "role": user.role.value,
            "via": "token",
            "token_expires": iso_s(user.expires_ms),
        }
    )


def _session_view(user: User, session: Session, sessions: Sessions) -> dict[str, Any]:
    return {
        "user": user.name,
        "role": user.role.value,
        "via": "session",
        "csrf_token": session.csrf,
        "csrf_header": CSRF_HEADER,
        "idle_minutes": sessions.idle_minutes,
    }
