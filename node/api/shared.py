"""What the API's modules share: the application's and requests' keys, JSON answers and
errors, and the line a request leaves in the access log."""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from domain.i18n import Text, _, render
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
    message: str | Text,
    fields: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A JSON error answer: a stable ``code`` a program branches on, and a ``message`` a person
    reads (a Text is read now, in the request's language)."""
    body: dict[str, Any] = {"error": {"code": code, "message": str(render(message))}}
    if fields:
        body["error"]["fields"] = fields
    response = ok(body, status, headers)
    response[CODE] = code
    return response


class HttpError(Exception):
    """An answer other than the domain's refusals, raised by a handler: its status, stable
    code and message (the errors middleware writes it)."""

    def __init__(
        self, status: int, code: str, message: Text, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def is_json(content_type: str) -> bool:
    """``application/json`` or a JSON-based type (``application/…+json``)."""
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


async def json_body(request: web.Request, *, what: Text | None = None) -> bytes:
    """A POST's JSON body, without a UTF-8 byte-order mark (Windows tools write one; the CLI
    takes it too). A ``Content-Type`` that is not JSON, or JSON in another charset than UTF-8,
    is answered 415. A request without one is read as JSON, unless ``what`` says what the
    body must be (a login: a form must not be able to send it)."""
    given = request.headers.get("Content-Type")
    if given is not None or what is not None:
        if not is_json(request.content_type):
            raise HttpError(
                415,
                "unsupported_media_type",
                what
                or _(
                    "the body must be JSON, sent with 'Content-Type: application/json' (this "
                    "request says {content_type!r}); nothing was recorded",
                    content_type=(given or "")[:100],
                ),
            )
        charset = (request.charset or "utf-8").lower()
        if charset not in ("utf-8", "utf8"):
            raise HttpError(
                415,
                "unsupported_media_type",
                _(
                    "JSON is sent in UTF-8, not in {charset}; nothing was recorded",
                    charset=charset[:40],
                ),
            )
    body = await request.read()
    return body.removeprefix(codecs.BOM_UTF8)


def _dumps(obj: Any) -> bytes:
    """JSON in UTF-8 (orjson: encoding a page of rows is a large part of what a request costs);
    what it does not take (an integer beyond 64 bits, a lone surrogate) goes through the
    standard library."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # orjson.JSONEncodeError
        text = json.dumps(obj, ensure_ascii=False)
        try:
            return text.encode()
        except UnicodeEncodeError:  # a lone surrogate: escaped
            return json.dumps(obj).encode()


def ok(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=_dumps(body),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


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
        log.error(
            _("cannot write the access log in {directory}: {error}", directory=directory, error=e)
        )
