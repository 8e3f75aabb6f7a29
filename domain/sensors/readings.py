"""Raw readings as the domain sees them, the 5-minute windows they fall in, the statistics of a
window, and the canonical digest that lets stored raw readings be proven against a summary."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from domain.sensors.thresholds import Range

WINDOW_MS = 300_000  # summaries every 5 minutes (AQ 6201 统计值 period)

# Status bits (docs/domain.md §4.3): values taken during calibration (标校, 4) or from a faulty
# sensor (传感器故障, 128) are stored but neither raise alarms nor enter min/mean/max. Values
# outside the point's measuring range are faults too, found by the value (§4.2).
EXCLUDED_STATUS = 4 | 128


@dataclass(frozen=True)
class Reading:
    id: int  # position in the readings store (ascending = arrival order)
    point: str
    t: int  # ms UTC
    value: int  # scaled integer
    status: int = 0

    @property
    def usable(self) -> bool:
        return not self.status & EXCLUDED_STATUS


def window_of(t: int) -> int:
    return t - t % WINDOW_MS


def canonical_line(r: Reading) -> bytes:
    return f"{r.point}\t{r.t}\t{r.value}\t{r.status}\n".encode()


def digest(readings: Iterable[Reading]) -> str:
    """SHA-256 over the canonical lines of the readings in store order."""
    h = hashlib.sha256()
    for r in readings:
        h.update(canonical_line(r))
    return h.hexdigest()


def statistics(
    readings: list[Reading], ranges: Mapping[str, Range | None] | None = None
) -> list[dict[str, Any]]:
    """Per point: count, flagged (excluded by status) and faulty (outside the point's measuring
    range in ``ranges``) counts, and min, mean (half-even) and max of the other values."""
    ranges = ranges or {}
    by_point: dict[str, list[Reading]] = {}
    for r in readings:
        by_point.setdefault(r.point, []).append(r)
    out = []
    for point in sorted(by_point):
        rows = by_point[point]
        usable = [r.value for r in rows if r.usable]
        rng = ranges.get(point)
        values = usable if rng is None else [v for v in usable if rng.side(v) is None]
        out.append(
            {
                "point": point,
                "count": len(rows),
                "flagged": len(rows) - len(usable),
                "faulty": len(usable) - len(values),
                "min": min(values) if values else None,
                "mean": round(Fraction(sum(values), len(values))) if values else None,
                "max": max(values) if values else None,
            }
        )
    return out
