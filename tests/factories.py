"""Builders of valid inputs for tests: credit codes with correct check characters, commands."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.base import Actor, Context, to_ms
from domain.codes import credit_code_check_character

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def credit_code(serial: int, region: str = "130102") -> str:
    """A well-formed unified social credit code: 91 (enterprise, market regulator), division
    code, nine-character organisation code, check character."""
    first17 = f"91{region}{serial:08d}X"[:17]
    return first17 + credit_code_check_character(first17)


def ctx(
    now: datetime = NOW, region: str = "130102", tier: str = "county", user: str = "zhang"
) -> Context:
    return Context(Actor(user, region), to_ms(now), tier, region, uuid.uuid4)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def enterprise(**over: Any) -> dict[str, Any]:
    body = {
        "name": "石家庄某煤业有限公司",
        "credit_code": credit_code(1),
        "industry": "coal_mine",
        "division": "130102",
        "address": "长安区某路1号",
    }
    body.update(over)
    return body


def accident(occurred: datetime = NOW - timedelta(hours=2), **over: Any) -> dict[str, Any]:
    body = {
        "enterprise_credit_code": credit_code(1),
        "enterprise_name": "石家庄某煤业有限公司",
        "occurred_at": iso(occurred),
        "place": "一号井 3201 工作面",
        "division": "130102",
        "industry": "coal_mine",
        "summary": "顶板冒落",
        "measures_taken": "启动应急预案, 组织救援",
        "reported_at": iso(occurred + timedelta(minutes=40)),
        "deaths": 0,
        "missing": 0,
        "serious_injuries": 0,
        "direct_loss_yuan": 0,
    }
    body.update(over)
    return body


def near_miss(occurred: datetime = NOW - timedelta(hours=2), **over: Any) -> dict[str, Any]:
    body = accident(occurred)
    for k in ("deaths", "missing", "serious_injuries", "direct_loss_yuan"):
        body.pop(k)
    body.update(trapped=3)
    body.update(over)
    return body


def js(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False)


INSPECTORS = [{"name": "王建国", "badge": "13010001"}, {"name": "李明", "badge": "13010002"}]


def inspection(**over: Any) -> dict[str, Any]:
    body = {
        "enterprise_credit_code": credit_code(1),
        "enterprise_name": "石家庄某煤业有限公司",
        "division": "130102",
        "inspectors": INSPECTORS,
        "started_at": iso(NOW - timedelta(hours=1)),
        "subject": "2026 年度执法检查",
    }
    body.update(over)
    return body


SITE_CODE = "130102B0012"


def site(**over: Any) -> dict[str, Any]:
    body = {
        "site_code": SITE_CODE,
        "name": "某煤矿一号井",
        "site_type": "coal_mine",
        "enterprise_credit_code": credit_code(1),
        "enterprise_name": "石家庄某煤业有限公司",
        "division": "130102",
    }
    body.update(over)
    return body


def resealed(base: Any, key: Any, origin: str, seq: int, prev: bytes) -> bytes:
    """The event of envelope ``base`` (parsed) as a new record of ``origin`` at ``seq`` after
    ``prev``, signed with ``key``: in its division, under an id scoped to it."""
    from domain.codes import record_id
    from federation.envelope import seal

    return seal(
        key,
        origin=origin,
        seq=seq,
        prev=prev,
        at=base.at,
        type=base.type,
        aggregate=str(record_id(origin)),
        version=1,
        actor={"user": "clerk", "node": origin},
        payload={**base.payload, "division": origin},
    )
