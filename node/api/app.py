"""The HTTP API (aiohttp): JSON under /api/v1, bearer-token users, every command of
``domain.commands`` as a POST route, records and status as GET routes, and an OpenAPI document
generated from the same table. Storage work runs in a single writer thread (and reads in a
small pool), never on the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from domain.commands import COLLECTIONS, SPECS, CommandSpec
from domain.errors import Invalid, Refused
from node.adapters import NodeSink
from node.api.openapi import openapi_document
from node.errors import Conflict, NotFound
from node.replication.outbox import tree_sizes
from node.replication.parts import parts
from node.replication.status import federation_view
from node.replication.uplink import Uplink
from node.runtime import Runtime
from node.sensors import counters, sources
from node.service import Node
from node.users import User, digest
from projections.queries import Filters

log = logging.getLogger("anjian.http")
T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

API = "/api/v1"
PUBLIC = frozenset({f"{API}/openapi.json"})


RUNTIME = web.AppKey("runtime", Runtime)
OPENAPI = web.AppKey("openapi", dict)
USER = web.RequestKey("user", User)


def error(
    status: int,
    code: str,
    message: str,
    fields: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if fields:
        body["error"]["fields"] = fields
    return web.json_response(body, status=status, headers=headers, dumps=_dumps)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def ok(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers, dumps=_dumps)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Invalid as e:
        fields = [{"field": f.field, "message": f.message} for f in e.errors]
        return error(422, "invalid", "the request has invalid fields", fields)
    except Refused as e:
        return error(422, "refused", str(e))
    except NotFound as e:
        return error(404, "not_found", str(e))
    except Conflict as e:
        return error(409, "conflict", str(e))
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[RUNTIME].node.config.http.max_body_bytes
        return error(
            413,
            "too_large",
            f"the body is larger than the limit of {limit} bytes; nothing was recorded",
        )
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return error(e.status, e.reason.lower().replace(" ", "_"), e.text or e.reason)
    except Exception:
        log.exception("internal error on %s %s", request.method, request.path)
        return error(
            500,
            "internal",
            "internal error: nothing was recorded unless a later read "
            "shows it; the node's log has the details",
        )


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PUBLIC or not request.path.startswith(API):
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="anjian"'}
    if scheme.lower() != "bearer" or not token:
        return error(
            401,
            "unauthenticated",
            "send 'Authorization: Bearer <token>' "
            "(a node administrator issues tokens with `anjian users add`)",
            headers=challenge,
        )
    user = request.app[RUNTIME].users.get(digest(token.strip()))
    if user is None:
        return error(401, "unauthenticated", "unknown or revoked token", headers=challenge)
    if request.method not in ("GET", "HEAD") and not user.can_write():
        return error(
            403,
            "forbidden",
            f"user {user.name!r} has the role {user.role.value!r}; "
            "recording needs the 'writer' role",
        )
    request[USER] = user
    return await handler(request)


def command_handler(spec: CommandSpec) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
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
    body = await request.read()
    rt = request.app[RUNTIME]
    user: User = request[USER]
    return ok(await rt.write(rt.node.execute_batch, body, user=user.name))


async def readings(request: web.Request) -> web.Response:
    body = await request.read()
    rt = request.app[RUNTIME]
    user: User = request[USER]
    result = await rt.write(rt.node.ingest, request.match_info["site"], body, user=user.name)
    return ok(result)


async def query(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    try:
        filters = Filters.parse(request.query, rt.node.clock())
    except (ValueError, OverflowError) as e:
        raise Invalid.field("query", f"bad filter: {e}") from None
    if filters.limit > 10_000:
        raise Invalid.field("limit", "at most 10000 rows per page over HTTP")
    rows = await rt.read(rt.node.query, request.match_info["name"], filters)
    return ok(
        {
            "query": request.match_info["name"],
            "rows": rows,
            "limit": filters.limit,
            "offset": filters.offset,
        }
    )


async def status(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    return ok(await rt.read(rt.node.status))


async def events(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    try:
        after = int(request.query.get("after", "0"))
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        raise Invalid.field("after/limit", "must be integers") from None
    if not 0 <= after < 2**62 or not 1 <= limit <= 1000:
        raise Invalid.field("after/limit", "0 ≤ after < 2^62 and 1 ≤ limit ≤ 1000")
    entries = await rt.read(rt.node.log.read, after, limit)
    return ok(
        {"after": after, "events": entries, "next": entries[-1]["position"] if entries else after}
    )


async def federation(request: web.Request) -> web.Response:
    """Per child and per origin: applied, pending, lag, quarantined, unknown types; and how
    the uplink stands (connected, what the parent has applied, the backlog)."""
    rt = request.app[RUNTIME]
    view = await rt.read(federation_view, rt.node, rt.node.clock())
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
    app = web.Application(
        client_max_size=node.config.http.max_body_bytes,
        middlewares=[errors_middleware, auth_middleware],
    )
    runtime = Runtime(node)
    app[RUNTIME] = runtime
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
    app[OPENAPI] = openapi_document(app)
    app.cleanup_ctx.append(_background)
    return app


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


async def serve(node: Node, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve until ``stop`` is set; logs the bound address (useful with port 0)."""
    runner = web.AppRunner(make_app(node), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    for address in runner.addresses:
        log.info(
            "serving %s node %s on http://%s:%s%s",
            node.config.node.tier.value,
            node.config.node.origin,
            address[0],
            address[1],
            API,
        )
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
