"""The OpenAPI 3.1 document of the HTTP API, generated from the routes the server actually has
and the command models (so the two cannot drift apart)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from domain.commands import BY_KIND, SPECS
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
                        "required": ["field", "code", "message"],
                        "properties": {
                            "field": {"type": "string"},
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        }
    },
    "description": "`code` is stable (a program branches on it); `message` is for a person, in "
    "the language Accept-Language asks for (zh-CN unless it asks for en).",
}

# -- what the successful answers are -------------------------------------------------------------
_TIME = {"type": "string", "format": "date-time"}
_ACTOR = {
    "type": "object",
    "required": ["user", "node"],
    "properties": {"user": {"type": "string"}, "node": {"type": "string"}},
}
RECORD = {
    "type": "object",
    "description": "A record as it stands now: the fields every record has, then its kind's own.",
    "required": [
        "id",
        "kind",
        "version",
        "created_at",
        "modified_at",
        "voided",
        "origin",
        "history",
    ],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "kind": {"type": "string"},
        "version": {"type": "integer", "minimum": 1},
        "created_at": _TIME,
        "modified_at": _TIME,
        "voided": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "properties": {"at": _TIME, "reason": {"type": "string"}, "by": _ACTOR},
                },
            ]
        },
        "origin": {"type": "string", "description": "the node that alone records on it"},
        "history": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["version", "event", "recorded_at", "actor"],
                "properties": {
                    "version": {"type": "integer"},
                    "event": {"type": "string"},
                    "recorded_at": _TIME,
                    "actor": _ACTOR,
                },
            },
        },
    },
    "additionalProperties": True,
}
RECORDED = {
    "type": "object",
    "description": "A command recorded: the record's id, kind and new version, the log position"
    " of its last event, and the record as it stands now.",
    "required": ["id", "kind", "version", "position", "record"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "kind": {"type": "string"},
        "version": {"type": "integer", "minimum": 1},
        "position": {"type": "integer"},
        "record": {"$ref": "#/components/schemas/Record"},
    },
}
QUERY_ANSWER = {
    "type": "object",
    "description": "A named query's page of rows (each a flat object of the query's columns).",
    "required": ["query", "rows", "limit", "offset"],
    "properties": {
        "query": {"type": "string"},
        "rows": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
        "limit": {"type": "integer", "minimum": 1},
        "offset": {"type": "integer", "minimum": 0},
        "next": {
            "type": ["string", "null"],
            "description": "The `after` of the next page (registers paged in their order);"
            " null on the last page or for a query not paged by `after`.",
        },
    },
}
QUERY_LAYOUT = {
    "type": "object",
    "description": "A statistic in the layout of a national report (``?layout=``).",
    "required": ["query", "layout", "columns", "rows"],
    "properties": {
        "query": {"type": "string"},
        "layout": {"type": "string"},
        "title": {"type": "string"},
        "columns": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"key": {"type": "string"}, "title": {"type": "string"}},
            },
        },
        "rows": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
        "totals": {},
    },
}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STATUS = {
    "type": "object",
    "required": ["origin", "tier", "region", "event_count", "last_position", "signed_log"],
    "properties": {
        "origin": {"type": "string"},
        "tier": {"type": "string", "enum": ["county", "city", "province", "national", "backup"]},
        "region": {"type": "string"},
        "parent": {"type": ["string", "null"]},
        "store": {"type": "string"},
        "event_count": {"type": "integer"},
        "last_position": {"type": ["integer", "null"]},
        "raw_readings": {"type": "integer"},
        "signed_log": {
            "type": "object",
            "properties": {
                "key_id": {"type": "string"},
                "envelopes": {"type": "integer"},
                "root": {"type": "string"},
                "last_checkpoint": {"type": ["integer", "null"]},
            },
        },
        "clock": _TIME,
    },
    "additionalProperties": True,
}
BATCH_ANSWER = {
    "type": "object",
    "description": "The batch recorded whole: how many commands, the last log position, and "
    "each record it touched.",
    "required": ["recorded", "position", "records"],
    "properties": {
        "recorded": {"type": "integer", "minimum": 1},
        "position": {"type": "integer"},
        "records": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "kind", "version"],
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "kind": {"type": "string"},
                    "version": {"type": "integer"},
                },
            },
        },
    },
}
EVENTS = {
    "type": "object",
    "required": ["after", "events", "next"],
    "properties": {
        "after": {"type": "integer"},
        "next": {"type": "integer", "description": "the `after` of the next page"},
        "events": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["position", "event", "aggregate_id", "version", "actor", "payload"],
                "properties": {
                    "position": {"type": "integer"},
                    "event": {"type": "string", "description": "type/version"},
                    "aggregate_id": {"type": "string", "format": "uuid"},
                    "version": {"type": "integer"},
                    "recorded_at": {"type": ["string", "integer"]},
                    "actor": _ACTOR,
                    "payload": {"type": "object", "additionalProperties": True},
                },
            },
        },
    },
}
READINGS_ANSWER = {
    "type": "object",
    "required": ["site", "stored", "duplicates", "late", "events"],
    "properties": {
        "site": {"type": "string"},
        "stored": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "late": {"type": "integer"},
        "events": {"type": "array", "items": {"type": "string"}},
        "position": {"type": ["integer", "null"]},
    },
}
SESSION = {
    "type": "object",
    "required": ["user", "role", "via"],
    "properties": {
        "user": {"type": "string"},
        "role": {"type": "string", "enum": ["reader", "writer"]},
        "via": {"type": "string", "enum": ["session", "token"]},
        "csrf_token": {"type": "string"},
        "csrf_header": {"type": "string"},
        "idle_minutes": {"type": "integer"},
        "token_expires": _TIME,
    },
}
LOGGED_OUT = {
    "type": "object",
    "required": ["user", "logged_out"],
    "properties": {"user": {"type": "string"}, "logged_out": {"const": True}},
}
ANSWERS = {
    "Record": RECORD,
    "Recorded": RECORDED,
    "QueryAnswer": QUERY_ANSWER,
    "QueryLayout": QUERY_LAYOUT,
    "Status": STATUS,
    "BatchAnswer": BATCH_ANSWER,
    "Events": EVENTS,
    "ReadingsAnswer": READINGS_ANSWER,
    "Session": SESSION,
    "LoggedOut": LOGGED_OUT,
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def batch_schema(schemas: dict[str, Any]) -> dict[str, Any]:
    """The batch's body, its items typed by kind: one schema per command kind (``Batch.KIND``:
    the kind, the record's id for a command on one, the command's body), told apart by
    ``kind`` (a ``discriminator``)."""
    mapping = {}
    for spec in SPECS:
        name = f"Batch.{spec.kind}"
        properties: dict[str, Any] = {
            "kind": {"const": spec.kind},
            "body": _ref(spec.model.__name__),
        }
        required = ["kind", "body"]
        if spec.update is not None:
            properties["id"] = {"type": "string", "description": f"the {spec.aggregate.KIND}"}
            required.append("id")
        schemas[name] = {
            "type": "object",
            "title": spec.kind,
            "description": spec.summary,
            "required": required,
            "properties": properties,
            "additionalProperties": False,
        }
        mapping[spec.kind] = f"#/components/schemas/{name}"
    schema = Batch.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    schema["properties"]["commands"]["items"] = {
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "kind", "mapping": mapping},
    }
    return schema


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
    "federation": "Per child and per origin (a page of origins: `after`, `limit`): applied"
    " sequence, pending, lag in events and seconds, quarantined and unknown-type counts; the"
    " uplink's state.",
    "hardware": "Per sensor adapter: batches and readings delivered, refused, malformed,"
    " reconnects, whether connected, the last error.",
    "openapi": "This document.",
    "query": "A named query over the projections (see `anjian query --help`), with filters"
    " region, since, until, grade, industry, status, level, as_of, accident, limit, offset,"
    " after (a register's next page, as the last page's `next` gave it).",
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


def _responses(*codes: int, answer: dict[str, Any] | None = None) -> dict[str, Any]:
    """The responses of an operation: ``answer`` the schema of its success."""
    text = {
        200: "OK",
        201: "Recorded",
        400: "No session to end (a bearer token is not a session)",
        401: "No, unknown or expired token; no live session; or a failed login",
        403: "Role may not write, or a session's change without its X-CSRF-Token",
        404: "No such record or kind",
        409: "Version conflict or duplicate: reload and retry",
        413: "Body over the size limit",
        415: "The body is not JSON (its Content-Type), or not in UTF-8",
        422: "Invalid field(s) or refused by the rules",
        429: "Too many failed logins for this name: locked for a while (Retry-After)",
    }
    out: dict[str, Any] = {}
    for code in codes:
        schema = _ref("Error") if code >= 400 else (answer or {"type": "object"})
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
        _responses(200, 401, 415, 422, 429, answer=_ref("Session")),
    ),
    "session.show": (
        "Who the request is: user, role, and for a console session its CSRF token; for a "
        "token, when it expires.",
        _responses(200, 401, answer=_ref("Session")),
    ),
    "session.logout": (
        "End the console session (with its X-CSRF-Token).",
        _responses(200, 400, 401, 403, answer=_ref("LoggedOut")),
    ),
}


def openapi_document(app: web.Application) -> dict[str, Any]:
    schemas: dict[str, Any] = {"Error": ERROR, **ANSWERS}
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
            op["responses"] = _responses(
                200, 401, 403, 404, 409, 413, 415, 422, answer=_ref("ReadingsAnswer")
            )
        elif name == "batch":
            schemas["Batch"] = batch_schema(schemas)
            op["summary"] = (
                "Record many commands in one transaction: all, or on any error (named by "
                "its index) none. Each item: kind, id (for commands on a record), body."
            )
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Batch"}}},
            }
            op["responses"] = _responses(
                200, 401, 403, 404, 409, 413, 415, 422, answer=_ref("BatchAnswer")
            )
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
            op["responses"] = _responses(
                201 if spec.creates else 200,
                401,
                403,
                404,
                409,
                413,
                415,
                422,
                answer=_ref("Recorded"),
            )
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
                            "after",
                        )
                    ),
                    {
                        "name": "format",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["json", "csv", "xlsx"]},
                        "description": "csv, xlsx: the rows as a spreadsheet file (an export, "
                        "logged)",
                    },
                    {
                        "name": "time",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["iso", "epoch"]},
                        "description": "iso: China time (the default); epoch: milliseconds",
                    },
                    {
                        "name": "layout",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "a statistic in the layout of a national report",
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
                    {
                        "name": "time",
                        "in": "query",
                        "description": "times in China time (iso, the default) or as"
                        " milliseconds since 1970 (epoch), as recorded",
                        "schema": {"enum": ["iso", "epoch"]},
                    },
                ]
            answer = {
                "query": _ref("QueryAnswer"),
                "events": _ref("Events"),
                "status": _ref("Status"),
                "openapi": {"type": "object", "description": "OpenAPI 3.1"},
            }.get(name, _ref("Record") if name.endswith(".show") else None)
            op["responses"] = (
                _responses(200, 401, 404, 422, answer=answer)
                if name != "openapi"
                else _responses(200, answer=answer)
            )
            if name == "query":
                content = op["responses"]["200"]["content"]
                content["application/json"]["schema"] = {
                    "oneOf": [_ref("QueryAnswer"), _ref("QueryLayout")]
                }
                content["text/csv"] = {"schema": {"type": "string"}}
                content[XLSX] = {"schema": {"type": "string", "format": "binary"}}
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
