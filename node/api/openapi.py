"""The OpenAPI 3.1 document of the HTTP API, generated from the routes the server actually has
and the command models (so the two cannot drift apart)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from domain.commands import BY_KIND
from domain.sensors.site import ReadingBatch
from node.service import Batch

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                    },
                },
            },
        }
    },
}

READS = {
    "enterprise.show": "Read an enterprise as it stands now, with its history.",
    "accident.show": "Read an accident: grade, deadlines, casualties, history.",
    "case.show": "Read an enforcement case: stage, hazards, orders, penalties.",
    "licence.show": "Read a licence: status, number, validity, renewal.",
    "investigation.show": "Read an accident investigation: deadlines and state.",
    "finding.show": "Read a finding of 漏报, 谎报 or 瞒报: the accident, who made it, against"
    " whom, its basis.",
    "site.show": "Read a monitoring site (by id or site code): points, active alarms.",
    "record.show": "Read any record by id.",
    "events": "The node's log after a position (`after`, `limit` ≤ 1000).",
    "status": "Origin, tier, region, event count and last log position.",
    "federation": "Per child and per origin: applied sequence, pending, lag in events and"
    " seconds, quarantined and unknown-type counts; the uplink's state.",
    "hardware": "Per sensor adapter: batches and readings delivered, refused, malformed,"
    " reconnects, whether connected, the last error.",
    "openapi": "This document.",
    "query": "A named query over the projections (see `anjian query --help`), with filters"
    " region, since, until, grade, industry, status, level, as_of, accident, limit, offset.",
}


LOGIN = {
    "type": "object",
    "required": ["name", "password"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 128},
        "password": {"type": "string", "minLength": 1, "maxLength": 1024},
    },
}


def _responses(*codes: int) -> dict[str, Any]:
    text = {
        200: "OK",
        201: "Recorded",
        400: "No session to end (a bearer token is not a session)",
        401: "No, unknown or expired token; no live session; or a failed login",
        403: "Role may not write, or a session's change without its X-CSRF-Token",
        404: "No such record or kind",
        409: "Version conflict or duplicate: reload and retry",
        413: "Body over the size limit",
        415: "The login is not JSON",
        422: "Invalid field(s) or refused by the rules",
        429: "Too many failed logins for this name: locked for a while (Retry-After)",
    }
    out: dict[str, Any] = {}
    for code in codes:
        schema = {"$ref": "#/components/schemas/Error"} if code >= 400 else {"type": "object"}
        out[str(code)] = {
            "description": text[code],
            "content": {"application/json": {"schema": schema}},
        }
    return out


SESSION_OPS: dict[str, tuple[str, dict[str, Any]]] = {
    "session.login": (
        "Log in to the console with a name and password: a session cookie (HttpOnly, "
        "SameSite=Strict, Secure over HTTPS) and the CSRF token every change must carry in "
        "X-CSRF-Token. A name is locked for a while after repeated failures.",
        _responses(200, 401, 415, 422, 429),
    ),
    "session.show": (
        "Who the request is: user, role, and for a console session its CSRF token; for a "
        "token, when it expires.",
        _responses(200, 401),
    ),
    "session.logout": (
        "End the console session (with its X-CSRF-Token).",
        _responses(200, 400, 401, 403),
    ),
}


def openapi_document(app: web.Application) -> dict[str, Any]:
    schemas: dict[str, Any] = {"Error": ERROR}
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        name = route.name
        if name is None or route.method == "HEAD":
            continue
        path = route.resource.canonical if route.resource else ""
        op: dict[str, Any] = {"operationId": name}
        params = [p for p in ("id",) if "{" + p + "}" in path]
        if params:
            op["parameters"] = [
                {
                    "name": "id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "format": "uuid"},
                }
            ]
        if name in SESSION_OPS:
            op["summary"], op["responses"] = SESSION_OPS[name]
            op["tags"] = ["session"]
            if name == "session.login":
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": LOGIN}},
                }
        elif name == "sensor.readings":
            schemas["ReadingBatch"] = ReadingBatch.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            schemas.update(schemas["ReadingBatch"].pop("$defs", {}))
            op["parameters"] = [
                {"name": "site", "in": "path", "required": True, "schema": {"type": "string"}}
            ]
            op["summary"] = (
                "A batch of raw readings: stored locally (not in the log); alarms, power cuts "
                "and closed 5-minute summaries are derived into the log."
            )
            op["tags"] = ["site"]
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ReadingBatch"}}
                },
            }
            op["responses"] = _responses(200, 401, 403, 404, 409, 413, 422)
        elif name == "batch":
            schemas["Batch"] = Batch.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schemas["Batch"].pop("$defs", {}))
            op["summary"] = (
                "Record many commands in one transaction: all, or on any error (named by "
                "its index) none. Each item: kind, id (for commands on a record), body."
            )
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Batch"}}},
            }
            op["responses"] = _responses(200, 401, 403, 404, 409, 413, 422)
        elif route.method == "POST":
            spec = BY_KIND[name]
            model = spec.model
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
            op["summary"] = spec.summary
            op["tags"] = [spec.aggregate.KIND]
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}
                    }
                },
            }
            op["responses"] = _responses(201 if spec.creates else 200, 401, 403, 404, 409, 413, 422)
        else:
            op["summary"] = READS[name]
            if name == "query":
                op["parameters"] = [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                    *(
                        {"name": f, "in": "query", "schema": {"type": "string"}}
                        for f in (
                            "region",
                            "since",
                            "until",
                            "grade",
                            "industry",
                            "status",
                            "level",
                            "as_of",
                            "accident",
                            "record",
                            "limit",
                            "offset",
                        )
                    ),
                    {
                        "name": "format",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["json", "csv"]},
                        "description": "csv: the rows as a spreadsheet file (an export, logged)",
                    },
                ]
            if name == "events":
                op["parameters"] = [
                    {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    },
                ]
            op["responses"] = (
                _responses(200, 401, 404, 422) if name != "openapi" else _responses(200)
            )
        if name not in ("openapi", "session.login"):
            op["security"] = [{"bearer": []}, {"session": []}]
        paths.setdefault(path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "anjian node API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                # the console's session: changes (POST, PUT, PATCH, DELETE) also carry the
                # session's CSRF token in the X-CSRF-Token header
                "session": {"type": "apiKey", "in": "cookie", "name": "anjian_session"},
            },
        },
    }
