"""The federation view: how fresh each origin this node holds from others is, and what each
child relays."""

from __future__ import annotations

from typing import Any

from domain.base import iso
from domain.i18n import _
from federation.envelope import parse
from node.service import Node

# -- the federation view ----------------------------------------------------------------------
PAGE = 100  # origins in one page of the view


def check_after(value: str) -> str:
    """``value`` if it can start a page (an origin's 6-digit code), else ValueError."""
    if not (len(value) == 6 and value.isdigit()):
        raise ValueError(
            _("the origin (a 6-digit code) the page starts after, not {value!r}", value=value[:40])
        )
    return value


def federation_view(
    node: Node, now: int, *, after: str | None = None, limit: int = PAGE
) -> dict[str, Any]:
    """Per origin this node holds from others, one page of ``limit`` origins after ``after``
    in code order (``page.next`` names the next page; a national centre holds some 3,300):
    applied sequence, what waits (pending), lag in events (the highest sequence known from
    envelopes or checkpoints, less the applied) and in seconds (the recording time of the
    newest envelope waiting, less that of the last applied; 0 when nothing waits),
    quarantined, dropped and unknown-type counts; and per child: the origins it relays,
    messages and when it was last heard from. What a page costs does not grow with the
    origins held beyond it."""
    log = node.log
    me = node.config.node.origin
    held = (
        "SELECT origin FROM merkle UNION SELECT origin FROM import_pending"
        " UNION SELECT origin FROM quarantine"
    )
    total = int(
        log.query(f"SELECT COUNT(*) AS n FROM ({held}) WHERE origin NOT IN (?, '?')", (me,))[0]["n"]
    )
    page = [
        str(r["origin"])
        for r in log.query(
            f"SELECT origin FROM ({held}) WHERE origin NOT IN (?, '?') AND origin > ?"
            " ORDER BY origin LIMIT ?",
            (me, after or "", limit + 1),
        )
    ]
    following, page = page[limit:], page[:limit]
    marks = ", ".join("?" * len(page)) or "NULL"

    def of_page(sql: str) -> list[Any]:
        return log.query(sql.format(page=marks), tuple(page))

    sizes = {
        str(r["origin"]): int(r["size"])
        for r in of_page("SELECT origin, size FROM merkle WHERE origin IN ({page})")
    }
    pending = {
        str(r["origin"]): (int(r["n"]), int(r["top"]))
        for r in of_page(
            "SELECT origin, COUNT(*) AS n, MAX(seq) AS top FROM import_pending"
            " WHERE origin IN ({page}) GROUP BY origin"
        )
    }
    announced = {
        str(r["origin"]): int(r["top"])
        for r in of_page(
            "SELECT origin, MAX(size) AS top FROM import_checkpoints WHERE origin IN ({page})"
            " GROUP BY origin"
        )
    }
    quarantined = {
        str(r["origin"]): int(r["n"])
        for r in log.query("SELECT origin, COUNT(*) AS n FROM quarantine GROUP BY origin")
    }
    stats = {
        str(r["origin"]): (int(r["unknown"]), int(r["last_at"]))
        for r in of_page(
            "SELECT origin, unknown, last_at FROM origin_stats WHERE origin IN ({page})"
        )
    }
    dropped = {
        str(r["origin"]): int(r["n"]) for r in log.query("SELECT origin, n FROM import_dropped")
    }
    routes = {
        str(r["origin"]): (str(r["child"]), int(r["messages"]), int(r["last_seen"]))
        for r in log.query("SELECT origin, child, messages, last_seen FROM routes")
    }
    origins: dict[str, Any] = {}
    for origin in page:
        applied = sizes.get(origin, 0)
        waiting, top = pending.get(origin, (0, 0))
        unknown, last_at = stats.get(origin, (0, 0))
        lag_s = 0.0
        if waiting:
            newest = log.query(
                "SELECT raw FROM import_pending WHERE origin = ? ORDER BY seq DESC LIMIT 1",
                (origin,),
            )
            lag_s = max(0.0, (parse(bytes(newest[0]["raw"])).at - last_at) / 1000)
        origins[origin] = {
            "applied": applied,
            "pending": waiting,
            "lag_events": max(top, announced.get(origin, 0), applied) - applied,
            "lag_seconds": lag_s,
            "last_recorded_at": last_at or None,
            "quarantined": quarantined.get(origin, 0),
            "dropped": dropped.get(origin, 0),
            "unknown_types": unknown,
            "child": routes.get(origin, ("", 0, 0))[0] or None,
        }
    children: dict[str, Any] = {}
    for origin, (child, messages, seen) in routes.items():
        entry = children.setdefault(
            child, {"origins": [], "messages": 0, "last_seen": 0, "lag_events": 0, "pending": 0}
        )
        entry["origins"].append(origin)
        entry["messages"] += messages
        entry["last_seen"] = max(entry["last_seen"], seen)
    for r in log.query(  # over every origin a child relays, not only this page's
        "SELECT r.child, SUM(COALESCE(p.n, 0)) AS pending, SUM(MAX(COALESCE(p.top, 0),"
        " COALESCE(c.top, 0), COALESCE(m.size, 0)) - COALESCE(m.size, 0)) AS lag"
        " FROM routes r LEFT JOIN merkle m ON m.origin = r.origin"
        " LEFT JOIN (SELECT origin, COUNT(*) AS n, MAX(seq) AS top FROM import_pending"
        " GROUP BY origin) p ON p.origin = r.origin"
        " LEFT JOIN (SELECT origin, MAX(size) AS top FROM import_checkpoints GROUP BY origin) c"
        " ON c.origin = r.origin GROUP BY r.child"
    ):
        children[str(r["child"])].update(pending=int(r["pending"]), lag_events=int(r["lag"]))
    down = log.query(
        "SELECT (SELECT COUNT(*) FROM downward) AS kept,"
        " (SELECT COUNT(*) FROM downward_pending) AS held"
    )[0]
    return {
        "origin": me,
        "tier": node.config.node.tier.value,
        "parent": node.config.node.parent,
        "nats": node.config.federation.nats,
        "origins": origins,
        "children": {
            c: {**v, "origins": sorted(v["origins"])} for c, v in sorted(children.items())
        },
        "page": {
            "after": after,
            "limit": limit,
            "next": page[-1] if following else None,
            "origins_held": total,
        },
        "quarantined": sum(quarantined.values()),
        # messages not kept because a bound was reached (waiting envelopes, the quarantine):
        # a flood, or an origin far ahead of what it can be judged by; see docs §6 "In"
        "dropped": sum(dropped.values()),
        "from_above": {
            "kept": int(down["kept"]),
            "held": int(down["held"]),
        },
        "as_of": iso(now),
    }
