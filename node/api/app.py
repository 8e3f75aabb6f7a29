"""The HTTP API (aiohttp): JSON under /api/v1, every command of ``domain.commands`` as a POST
route, records and status as GET routes, and an OpenAPI document generated from the same table.
Callers are users of ``users.toml``: a bearer token (with an expiry), or a console session
(a password login for a cookie and a CSRF token: ``auth.py``, ``sessions.py``). Records,
exports and logins go to the access log. Served over HTTPS with the ``[http]`` certificate;
plain HTTP only on a loopback address unless ``allow_plain``. Storage work runs in a single
writer thread (and reads in a small pool), never on the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
from collections.abc import AsyncIterator
from typing import TypeVar

from aiohttp import web

from domain.codes import tier_label
from domain.commands import BY_KIND, COLLECTIONS, SPECS, CommandSpec
from domain.errors import FieldError, Invalid, Refused
from domain.i18n import LANGUAGES, Text, _, catalogue, negotiate, render, speaking
from node.adapters import NodeSink
from node.api.auth import SESSION, SESSIONS, auth_middleware, login, logout, whoami
from node.api.openapi import openapi_document
from node.api.query import query
from node.api.sessions import Sessions
from node.api.shared import (
    API,
    CODE,
    RUNTIME,
    USER,
    WHO,
    Handler,
    HttpError,
    access_line,
    error,
    json_body,
    log,
    ok,
)
from node.config import Config
from node.errors import ConfigError, Conflict, NotFound
from node.replication.outbox import tree_sizes
from node.replication.parts import parts
from node.replication.status import PAGE, check_after, federation_view
from node.replication.uplink import Uplink
from node.runtime import Runtime
from node.sensors import counters, sources
from node.service import Node
from node.tls import server_context
from node.users import User
from projections.present import entry_times

T = TypeVar("T")
OPENAPI = web.AppKey("openapi", dict)


@web.middleware
async def language_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Everything a request reads, in the language its ``Accept-Language`` prefers (zh-CN
    unless it asks for English); the answer says which (``Content-Language``)."""
    lang = negotiate(request.headers.get("Accept-Language"))
    with speaking(lang):
        response = await handler(request)
    response.headers.setdefault("Content-Language", lang)
    return response


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Invalid as e:
        fields = [f.render() for f in e.errors]
        return error(422, e.code, render(e.args[0]), fields)  # "the request has invalid fields"
    except Refused as e:
        return error(422, e.code, str(e))
    except NotFound as e:
        return error(404, e.code, str(e))
    except Conflict as e:
        return error(409, e.code, str(e))
    except HttpError as e:
        return error(e.status, e.code, e.message, headers=e.headers)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        code, message = _http_error(request, e)
        allow = {"Allow": e.headers["Allow"]} if "Allow" in e.headers else None
        return error(e.status, code, message, headers=allow)
    except Exception:
        log.exception(
            _("internal error on {method} {path}", method=request.method, path=request.path)
        )
        return error(
            500,
            "internal",
            _(
                "internal error: nothing was recorded unless a later read shows it; the "
                "node's log has the details"
            ),
        )


def _http_error(request: web.Request, e: web.HTTPException) -> tuple[str, Text]:
    """The stable code and the message of an error aiohttp raised (no route, a method the
    route does not take, a body over the limit...)."""
    where = {"method": request.method, "path": request.path}
    if e.status == 404:
        return "not_found", _(
            "no such route: {method} {path} (the API's routes are listed in /api/v1/openapi.json)",
            **where,
        )
    if e.status == 405:
        allowed = ", ".join(sorted(getattr(e, "allowed_methods", ()) or ()))
        return "method_not_allowed", _(
            "{path} does not take {method}; it takes {allowed}", allowed=allowed, **where
        )
    if e.status == 413:
        limit = request.app[RUNTIME].node.config.http.max_body_bytes
        return "too_large", _(
            "the body is larger than the limit of {limit} bytes; nothing was recorded",
            limit=limit,
        )
    if e.status == 400:
        return "bad_request", _("the request is malformed; nothing was recorded")
    return e.reason.lower().replace(" ", "_"), _(
        "the request cannot be answered (HTTP {status} {reason}); nothing was recorded",
        status=e.status,
        reason=e.reason,
    )


# -- the access log ------------------------------------------------------------------------------
@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Records (each command, each batch) and exports go to the access log, refused or not."""
    response = await handler(request)
    if request.get(WHO) is None:  # refused before anyone was known: no one's act, free to send
        return response
    route = request.match_info.route.name
    if route in BY_KIND or route == "batch":
        target = request.match_info.get("id")
        if target is None and "Location" in response.headers:
            target = response.headers["Location"].rsplit("/", 1)[1]
        await access_line(request, "record", target, _result(response), kind=route)
    elif route == "query" and request.query.get("format", "json") != "json":
        query = request.match_info["name"]
        await access_line(request, "export", query, _result(response), query=request.query_string)
    return response


def _result(response: web.StreamResponse) -> str:
    if response.status < 400:
        return "ok"
    return str(response.get(CODE, response.status))


def command_handler(spec: CommandSpec) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        body = await json_body(request)
        rt = request.app[RUNTIME]
        user: User = request[USER]
        target = request.match_info.get("id")
        result = await rt.write(rt.node.execute, spec.kind, body, user=user.name, target=target)
        if spec.creates:
            location = f"{API}/{COLLECTIONS[result['kind']]}/{result['id']}"
            return ok(result, status=201, headers={"Location": location})
        return ok(result)

    return handle


def show_handler(kind: str | None) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        rt = request.app[RUNTIME]
        return ok(await rt.read(rt.node.show, request.match_info["id"], kind))

    return handle


async def batch(request: web.Request) -> web.Response:
    body = await json_body(request)
    rt = request.app[RUNTIME]
    user: User = request[USER]
    return ok(await rt.write(rt.node.execute_batch, body, user=user.name))


async def readings(request: web.Request) -> web.Response:
    body = await json_body(request)
    rt = request.app[RUNTIME]
    user: User = request[USER]
    result = await rt.write(rt.node.ingest, request.match_info["site"], body, user=user.name)
    return ok(result)


async def status(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    return ok(await rt.read(rt.node.status))


async def events(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    problems: list[FieldError] = []
    after = _whole_number(request, "after", 0, 0, 2**62 - 1, problems)
    limit = _whole_number(request, "limit", 100, 1, 1000, problems)
    if problems:
        raise Invalid(problems)
    time = request.query.get("time", "iso")
    if time not in ("iso", "epoch"):
        raise Invalid.field(
            "time", _("time is iso (China time, the default) or epoch"), code="bad_parameter"
        )
    entries = await rt.read(rt.node.log.read, after, limit)
    shown = entries if time == "epoch" else [entry_times(e) for e in entries]
    return ok(
        {"after": after, "events": shown, "next": entries[-1]["position"] if entries else after}
    )


def _whole_number(
    request: web.Request, name: str, default: int, low: int, high: int, problems: list[FieldError]
) -> int:
    """A query parameter that is a whole number from ``low`` to ``high``; a problem with it
    (named by the parameter, with pydantic's codes) goes to ``problems``."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        code = "int_parsing"
        value = default
    else:
        code = "greater_than_equal" if value < low else "less_than_equal" if value > high else ""
    if code:
        message = _(
            "the query parameter {name} must be a whole number from {low} to {high}, not {value!r}",
            name=name,
            low=low,
            high=high,
            value=raw[:40],
        )
        problems.append(FieldError(name, message, code))
    return value


async def federation(request: web.Request) -> web.Response:
    """Per child and per origin (a page: ``after``, ``limit``): applied, pending, lag,
    quarantined, unknown types; and how the uplink stands (connected, what the parent has
    applied, the backlog)."""
    rt = request.app[RUNTIME]
    problems: list[FieldError] = []
    limit = _whole_number(request, "limit", PAGE, 1, 1000, problems)
    after = request.query.get("after") or None
    if after is not None:
        try:
            check_after(after)
        except ValueError as e:
            problems.append(FieldError("after", e.args[0], "bad_parameter"))
    if problems:
        raise Invalid(problems)
    view = await rt.read(federation_view, rt.node, rt.node.clock(), after=after, limit=limit)
    uplink = next((p for p in rt.federation if isinstance(p, Uplink)), None)
    if uplink is not None:
        view["uplink"] = uplink.state(await rt.read(tree_sizes, rt.node.log))
    view["parts"] = {
        p.name: {"connected": p.connected, "last_error": p.last_error} for p in rt.federation
    }
    return ok(view)


async def hardware(request: web.Request) -> web.Response:
    """Per sensor adapter: batches and readings delivered, refused, malformed, reconnects,
    whether connected, the last error."""
    return ok({"sources": counters(request.app[RUNTIME].hardware)})


async def openapi(request: web.Request) -> web.Response:
    return ok(request.app[OPENAPI])


def make_app(node: Node) -> web.Application:
    http = node.config.http
    for lang in LANGUAGES:  # read the catalogues now, not on the event loop at the first error
        catalogue(lang)
    app = web.Application(
        client_max_size=http.max_body_bytes,
        middlewares=[language_middleware, access_middleware, errors_middleware, auth_middleware],
    )
    runtime = Runtime(node)
    app[RUNTIME] = runtime
    app[SESSIONS] = Sessions(http.session_idle_minutes, http.lockout_failures, http.lockout_minutes)
    app.on_response_prepare.append(_security_headers)
    for spec in SPECS:
        app.router.add_post(API + spec.path, command_handler(spec), name=spec.kind)
    app.router.add_post(f"{API}/sites/{{site}}/readings", readings, name="sensor.readings")
    app.router.add_post(f"{API}/batch", batch, name="batch")
    for kind, collection in COLLECTIONS.items():
        app.router.add_get(f"{API}/{collection}/{{id}}", show_handler(kind), name=f"{kind}.show")
    app.router.add_get(f"{API}/records/{{id}}", show_handler(None), name="record.show")
    app.router.add_get(f"{API}/query/{{name}}", query, name="query")
    app.router.add_get(f"{API}/events", events, name="events")
    app.router.add_get(f"{API}/status", status, name="status")
    app.router.add_get(f"{API}/federation", federation, name="federation")
    app.router.add_get(f"{API}/hardware", hardware, name="hardware")
    app.router.add_get(f"{API}/openapi.json", openapi, name="openapi")
    app.router.add_post(SESSION, login, name="session.login")
    app.router.add_get(SESSION, whoami, name="session.show")
    app.router.add_delete(SESSION, logout, name="session.logout")
    app[OPENAPI] = openapi_document(app)
    app.cleanup_ctx.append(_background)
    return app


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")


async def _background(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    tasks = [
        asyncio.create_task(runtime.watch_users()),
        asyncio.create_task(runtime.retention()),
        asyncio.create_task(runtime.close_windows()),
        asyncio.create_task(runtime.checkpoints()),
        asyncio.create_task(runtime.follow_projections()),
    ]
    runtime.federation = parts(runtime.node, runtime.read, runtime.write, runtime.importer)
    tasks += [asyncio.create_task(part.run()) for part in runtime.federation]
    runtime.hardware = sources(runtime.node.config)
    sink = NodeSink(runtime.node, runtime.write)
    tasks += [asyncio.create_task(source.run(sink)) for source in runtime.hardware]
    yield
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await asyncio.get_running_loop().run_in_executor(None, runtime.close)


def tls_context(config: Config, host: str) -> ssl.SSLContext | None:
    """The HTTPS context of ``[http] tls_cert``/``tls_key`` (relative to the node directory),
    or None for plain HTTP, which is refused on any but a loopback address unless
    ``[http] allow_plain``: tokens and passwords would cross the network readable."""
    http = config.http
    if http.tls_cert and http.tls_key:
        return server_context(config.directory / http.tls_cert, config.directory / http.tls_key)
    if http.tls_cert or http.tls_key:
        raise ConfigError(
            _(
                "{file}: [http] tls_cert and tls_key go together (the certificate and its "
                "key); set both, or neither for plain HTTP",
                file=config.directory / "node.toml",
            )
        )
    if not http.allow_plain and not _loopback(host):
        raise ConfigError(
            _(
                "refusing to serve plain HTTP on {host}: tokens and passwords would cross the "
                "network readable by anyone on the way. Set [http] tls_cert and tls_key in "
                "{file} (a certificate from your PKI, or `anjian tls ca` and `anjian tls "
                "issue`), or serve on 127.0.0.1 behind a TLS proxy, or, only if the network "
                "is protected otherwise, set [http] allow_plain = true",
                host=host or _("every address"),
                file=config.directory / "node.toml",
            )
        )
    return None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def serve(node: Node, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve until ``stop`` is set; logs the bound address (useful with port 0)."""
    context = tls_context(node.config, host)
    app = make_app(node)
    stale = sorted(u.name for u in app[RUNTIME].users.values() if u.expires_ms is None)
    if stale:
        log.warning(
            _(
                "these users' tokens have no expiry (issued before tokens expired) and are "
                "refused until each gets a new one with `anjian users rotate {directory} NAME`: "
                "{names}",
                directory=node.config.directory,
                names=", ".join(stale),
            )
        )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=context)
    await site.start()
    scheme = "https" if context is not None else "http"
    for address in runner.addresses:
        url = f"{scheme}://{address[0]}:{address[1]}{API}"
        log.info(
            _(
                "serving {tier} node {origin} on {url}",
                tier=tier_label(node.config.node.tier),
                origin=node.config.node.origin,
                url=url,
            )
        )
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
