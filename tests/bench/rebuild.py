"""Rebuilding the projections from zero, against reading and decoding the same notifications
without projecting, measured in the same run.

The log: a provincial node's events in a realistic mix — about 60 % sensor events (5-minute
summaries, alarms, power cuts), 25 % enforcement, 10 % licences, 5 % accidents.

    .venv/bin/python tests/bench/rebuild.py [--events 200000]

Prints the machine, both rates, and ``ratio: X`` (rebuild / read).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from domain.accident import Accident, ReportAccident  # noqa: E402
from domain.base import Actor, Aggregate, Context, from_ms, to_ms  # noqa: E402
from domain.enforcement import commands as c  # noqa: E402
from domain.enforcement.case import EnforcementCase  # noqa: E402
from domain.licence import AcceptLicence, ApplyLicence, IssueLicence, Licence  # noqa: E402
from domain.sensors.readings import WINDOW_MS, Reading  # noqa: E402
from domain.sensors.site import RegisterPoint, RegisterSite, Site  # noqa: E402
from node import config as config_mod  # noqa: E402
from node.projector import log_events, rebuild  # noqa: E402
from node.service import Node  # noqa: E402
from tests.conftest import make_node_dir  # noqa: E402
from tests.factories import INSPECTORS, NOW, accident, credit_code, inspection, site  # noqa: E402

COUNTIES = ("130102", "130104", "130105", "130402", "130403")


def ctx(ms: int) -> Context:
    return Context(Actor("bench", "130000"), ms, "province", "130000", uuid.uuid4)


def parse(model: type, body: dict) -> object:
    return model.model_validate_json(json.dumps(body))  # type: ignore[attr-defined]


def generate(node: Node, total: int) -> None:
    t0 = to_ms(NOW) - 40 * 86_400_000
    pending: list[Aggregate] = []
    made = 0

    def flush() -> None:
        nonlocal pending
        if pending:
            node._append(pending)
            pending = []

    # sensor sites: 20 sites × 10 points
    sites = []
    for s in range(20):
        region = COUNTIES[s % len(COUNTIES)]
        agg = Site.register(
            parse(RegisterSite, site(site_code=f"S{s:03d}", division=region)), ctx(t0)
        )
        for p in range(10):
            agg.register_point(
                parse(
                    RegisterPoint,
                    {"point_code": f"P{p}", "sensor_type": "methane", "location": "working_face"},
                ),
                ctx(t0),
            )
        sites.append(agg)
        pending.append(agg)
    flush()
    window, reading_id = t0, 0
    while made < total:
        # one round: every site a summary and a few excursions (≈ 60 %), cases (≈ 25 %),
        # a licence (≈ 10 %), an accident (≈ 5 %)
        for agg in sites:
            readings = []
            for p in range(10):
                reading_id += 1
                high = (reading_id % 97) == 0
                readings.append(Reading(reading_id, f"P{p}", window + p, 16000 if high else 3000))
            agg.observe(readings, ctx(window), {})
            calm = [Reading(reading_id + i + 1, f"P{i}", window + 100 + i, 2000) for i in range(10)]
            reading_id += 10
            agg.observe(calm, ctx(window), {})
            agg.summarize(window, sorted(readings + calm, key=lambda r: r.id), ctx(window))
            made += len(agg.pending_events)
            pending.append(agg)
        for k in range(2):
            region = COUNTIES[(made + k) % len(COUNTIES)]
            case = EnforcementCase.open_inspection(
                parse(
                    c.OpenInspection,
                    inspection(division=region, started_at=from_ms(window).isoformat()),
                ),
                ctx(window),
            )
            case.record_hazard(
                parse(c.RecordHazard, {"hazard_class": "general", "description": "d"}), ctx(window)
            )
            case.record_hazard(
                parse(c.RecordHazard, {"hazard_class": "major", "description": "d"}), ctx(window)
            )
            case.file_case(parse(c.FileCase, {"violations": "v"}), ctx(window))
            case.record_evidence(
                parse(
                    c.RecordEvidence,
                    {"evidence_type": "书证", "description": "d", "collected_by": INSPECTORS},
                ),
                ctx(window),
            )
            made += len(case.pending_events)
            pending.append(case)
        lic = Licence.apply_for(
            parse(
                ApplyLicence,
                {
                    "enterprise_credit_code": credit_code(made),
                    "enterprise_name": "某矿",
                    "industry": "coal_mine",
                    "division": COUNTIES[made % 5],
                    "scope": "s",
                },
            ),
            ctx(window),
        )
        lic.accept(parse(AcceptLicence, {}), ctx(window))
        lic.issue(
            parse(
                IssueLicence,
                {
                    "number": "（冀）MK安许证字〔2024〕0012",
                    "valid_from": "2024-01-10T00:00:00+08:00",
                },
            ),
            ctx(window),
        )
        made += len(lic.pending_events)
        pending.append(lic)
        occurred = from_ms(window - 7_200_000)
        acc = Accident.report(
            parse(ReportAccident, accident(occurred, division=COUNTIES[made % 5], deaths=made % 4)),
            ctx(window),
        )
        made += len(acc.pending_events)
        pending.append(acc)
        flush()
        window += WINDOW_MS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = make_node_dir(Path(tmp) / "province", tier="province", region="130000")
        config = config_mod.load(directory, environ={})
        node = Node(config, clock=lambda: to_ms(NOW))
        start = time.perf_counter()
        generate(node, args.events)
        made = node.status()["event_count"]
        print(f"generated {made} events in {time.perf_counter() - start:.0f} s")
        start = time.perf_counter()
        position = 0
        while events := log_events(node.log, position, 2000):
            position = events[-1].position
        read = made / (time.perf_counter() - start)
        start = time.perf_counter()
        rebuild(config, node.log)
        built = made / (time.perf_counter() - start)
        node.close()
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"read and decode the notifications: {read:,.0f} events/s")
    print(f"rebuild every projection from zero: {built:,.0f} events/s")
    print(f"ratio: {built / read:.2f}")


if __name__ == "__main__":
    main()
