"""What the API's modules share: the application's and requests' keys, JSON answers and
errors, and the line a request leaves in the access log."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from node import access
from node.runtime import Runtime
from node.users import User

log = logging.getLogger("anjian.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

API = "/api/v1"
RUNTIME = web.AppKey("runtime", Runtime)
USER = web.RequestKey("user", User)
WHO = web.RequestKey("who", str)  # the user a request names, also when it is refused
CODE = web.ResponseKey("code", str)  # an error's code, for the access log


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
    response = web.json_response(body, status=status, headers=headers, dumps=_dumps)
    response[CODE] = code
    return response


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def ok(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers, dumps=_dumps)


async def access_line(
    request: web.Request, action: str, target: str | None, result: str, **detail: Any
) -> None:
    directory = request.app[RUNTIME].node.config.directory
    try:
        await asyncio.to_thread(
            access.record,
            directory,
            request.get(WHO),
            action,
            target,
            result,
            request.remote or "unknown",
            **detail,
        )
    except OSError as e:  # what was done stands; the operator must see the log is failing
        log.error("cannot write the access log in %s: %s", directory, e)
