"""Data sets for the benchmarks (and the web console's page timings): logs of realistic mixes
written through the node's own store path (``Node._append``: envelopes, signatures, chain,
Merkle tree and checkpoints, as in service) in large transactions.

- ``county``: a county bureau's node with its province above it, deterministic for a seed.
  The county records enterprises, inspections and their cases (hazards, rectification orders,
  extensions, re-inspections; penalty cases to execution and closing), accidents (reports,
  near misses, supplements) and its coal mines' monitoring (5-minute summaries of 10 methane
  points per site, alarms and power cuts with their clearance). Licences are recorded by the
  province, the issuing authority (apply, accept, issue or refuse; suspensions, revocations,
  cancellations), and come down to the county as in service: the province's downward batch
  (``down_batch``) taken by the county's verified intake (``take_from_above``). About 60 % of
  the county's log is monitoring, 27 % enforcement, 8 % licences, 3 % accidents and 2 %
  enterprises (the rebuild benchmark's mix), at a pace far above a real county's: a million
  events span about 16 months from 1 January 2025 with four monitored mines.
- ``province_log``: the rebuild benchmark's provincial log (20 sites, two cases, a licence and
  an accident per 5-minute round), as it always was.

    from tests.bench.dataset import county
    dirs, made = county(Path("/tmp/bench"), events=200_000, seed=2026)

or, to keep one (then `anjian serve DIR/county`, `anjian users token DIR/county ...`):

    .venv/bin/python tests/bench/dataset.py DIR [--events 1000000] [--seed 2026]
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from domain.accident import Accident, ReportAccident, ReportNearMiss, SupplementAccident
from domain.base import CHINA, Actor, Aggregate, Command, Context, from_ms, to_ms
from domain.codes import Tier, record_id
from domain.enforcement import commands as c
from domain.enforcement.case import EnforcementCase
from domain.enterprise import CorrectEnterprise, Enterprise, RegisterEnterprise
from domain.licence import (
    AcceptLicence,
    ApplyLicence,
    CancelLicence,
    IssueLicence,
    Licence,
    RefuseLicence,
    ReinstateLicence,
    RevokeLicence,
    SuspendLicence,
)
from domain.sensors.readings import WINDOW_MS, Reading
from domain.sensors.site import RegisterPoint, RegisterSite, Site
from federation.keys import ROOT as ROOT_SIGNER
from federation.keys import certify
from federation.suite import SigningKey, load_key, public_pem
from node import config as config_mod
from node.config import NodeSection
from node.keys import generate_node_key
from node.replication.above import take_from_above
from node.replication.down import down_batch, remember_scanned
from node.replication.importer import Importer
from node.service import Node
from tests.factories import INSPECTORS, NOW, accident, credit_code, inspection, site

M = TypeVar("M", bound=Command)

COUNTY, PROVINCE = "130102", "130000"
START = to_ms(datetime(2025, 1, 1, tzinfo=CHINA))
HOUR, DAY = 3_600_000, 86_400_000


def parse(model: type[M], body: dict[str, Any]) -> M:
    """A command as the API reads it (strict JSON validation)."""
    return model.model_validate_json(json.dumps(body, ensure_ascii=False))


def iso(ms: int) -> str:
    return from_ms(ms).isoformat()


def make_node_dir(path: Path, tier: str, region: str) -> Path:
    """A new node directory, as `anjian init` leaves it (node.toml, the node's keys)."""
    path.mkdir(parents=True, exist_ok=True)
    section = NodeSection(origin=region, tier=Tier(tier), region=region)
    (path / config_mod.CONFIG_FILE).write_text(config_mod.render(section), encoding="utf-8")
    generate_node_key(path)
    return path


def ids(origin: str, rng: random.Random) -> Callable[[], uuid.UUID]:
    """Record ids as ``record_id`` makes them for ``origin``, their random bits from ``rng``."""
    tag = record_id(origin).bytes[:6]

    def new() -> uuid.UUID:
        raw = bytearray(tag + rng.getrandbits(80).to_bytes(10, "big"))
        raw[6] = (raw[6] & 0x0F) | 0x80
        raw[8] = (raw[8] & 0x3F) | 0x80
        return uuid.UUID(bytes=bytes(raw))

    return new


# -- a county ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CountyDirs:
    county: Path
    province: Path
    root_pub: Path  # the national root public key, held apart from the nodes


def county_dirs(base: Path) -> CountyDirs:
    """A county 130102 and its province 130000, the county's trust chain installed (root →
    province → county) as `anjian keys install` leaves it; the root key outside both."""
    root = SigningKey.generate()
    province_dir = make_node_dir(base / "province", "province", PROVINCE)
    county_dir = make_node_dir(base / "county", "county", COUNTY)
    province_key = load_key(province_dir / "node.key")
    county_key = load_key(county_dir / "node.key")
    docs = [
        certify(
            root,
            ROOT_SIGNER,
            origin=PROVINCE,
            region=PROVINCE,
            tier="province",
            public=province_key.public,
        ),
        certify(
            province_key,
            PROVINCE,
            origin=COUNTY,
            region=COUNTY,
            tier="county",
            public=county_key.public,
        ),
    ]
    trust = county_dir / "trust"
    trust.mkdir()
    (trust / "root.pub").write_bytes(public_pem(root.public))
    for i, doc in enumerate(docs):
        (trust / f"{i}.doc").write_bytes(doc)
    root_pub = base / "root.pub"
    root_pub.write_bytes(public_pem(root.public))
    return CountyDirs(county_dir, province_dir, root_pub)


INDUSTRIES = (  # (industry, share of enterprises, name, licence code)
    ("coal_mine", 0.10, "煤业", "MK"),
    ("non_coal_mine", 0.12, "矿业", "FM"),
    ("hazardous_chemicals", 0.18, "化工", "WH"),
    ("fireworks", 0.05, "烟花爆竹", "YH"),
    ("construction", 0.15, "建设工程", "JZ"),
    ("industry_trade", 0.40, "机械制造", None),
)
POINTS = [f"P{p:02d}" for p in range(10)]
LICENCE_CODES = {i: code for i, _share, _name, code in INDUSTRIES if code}


@dataclass
class Firm:
    code: str
    name: str
    industry: str
    agg: Enterprise


@dataclass(order=True)
class _Step:
    due: int
    order: int
    run: Callable[[int], None] = field(compare=False)


class CountyLog:
    """Writes a county's log; see the module's docstring. Everything random comes from one
    ``random.Random(seed)``, record ids included: the same seed gives the same records."""

    # per 5-minute round and monitored site: new records of each kind (the mix above, with
    # the mean events each record's life makes: a case about 5.7, a licence about 3.2)
    CASES, LICENCES, ACCIDENTS, FIRMS = 0.095, 0.045, 0.037, 0.02
    EXCURSION = 0.01  # windows with a methane excursion at some point (4 events each)
    FLUSH = 2_000  # events per transaction
    DOWN_EVERY = 20_000  # county events between two takes of the province's downward batch

    def __init__(self, county: Node, province: Node, seed: int = 2026, sites: int = 4) -> None:
        self.county, self.province = county, province
        self.rng = random.Random(seed)
        self.sites_count = sites
        self.new_id = ids(COUNTY, self.rng)
        self.new_province_id = ids(PROVINCE, self.rng)
        self.importer = Importer(county)
        self.pending: dict[uuid.UUID, Aggregate] = {}
        self.province_pending: dict[uuid.UUID, Aggregate] = {}
        self.unsaved = 0
        self.since_down = 0
        self.steps: list[_Step] = []
        self.order = 0
        self.firms: list[Firm] = []
        self.licensable: list[Firm] = []
        self.made: Counter[str] = Counter()
        self.reading_id = 0
        self.licence_serial = 0
        self.taken: list[tuple[int, float]] = []  # per take from above: envelopes, seconds

    # -- contexts and bookkeeping ---------------------------------------------------------------
    def ctx(self, now: int, user: str = "clerk") -> Context:
        return Context(
            Actor(user, COUNTY), now, "county", COUNTY, self.new_id, self.county.calendar
        )

    def pctx(self, now: int) -> Context:
        return Context(
            Actor("licensing", PROVINCE),
            now,
            "province",
            PROVINCE,
            self.new_province_id,
            self.province.calendar,
        )

    def keep(self, agg: Aggregate, kind: str, before: int = 0) -> None:
        """Queue the aggregate's new events (``before``: how many were pending already)."""
        n = len(agg.pending_events) - before
        self.made[kind] += n
        if kind == "licences":
            self.province_pending[agg.id] = agg
        else:
            self.pending[agg.id] = agg
            self.unsaved += n
            self.since_down += n

    def later(self, due: int, run: Callable[[int], None]) -> None:
        self.order += 1
        heapq.heappush(self.steps, _Step(due, self.order, run))

    def flush(self, down: bool = False) -> None:
        if self.pending:
            self.county._append(list(self.pending.values()))
            self.pending = {}
            self.unsaved = 0
        if self.province_pending:
            self.province._append(list(self.province_pending.values()))
            self.province_pending = {}
        if down or self.since_down >= self.DOWN_EVERY:
            self.down()

    def down(self) -> None:
        """What the province publishes downward, taken by the county as its downlink does."""
        self.since_down = 0
        while True:
            messages, positions = down_batch(self.province, 5_000)
            if messages:
                start = time.perf_counter()
                summary = take_from_above(self.importer, [(m.subject, m.data) for m in messages])
                self.taken.append((summary["kept"], time.perf_counter() - start))
                assert not summary["quarantined"], summary["quarantined"][:3]
            if not positions:
                return
            remember_scanned(self.province.log, positions)

    def total(self) -> int:
        return sum(self.made.values())

    # -- the log --------------------------------------------------------------------------------
    def run(self, events: int) -> Counter[str]:
        """Write about ``events`` events into the county's log (licences included)."""
        window = START
        for _ in range(max(60, events // 500)):
            self.register_firm(window - DAY)
        sites = [self.register_site(n, window - DAY) for n in range(self.sites_count)]
        self.flush()
        rates = [
            (self.CASES * self.sites_count, self.open_inspection),
            (self.LICENCES * self.sites_count, self.apply_licence),
            (self.ACCIDENTS * self.sites_count, self.report_accident),
            (self.FIRMS * self.sites_count, self.register_firm),
        ]
        while self.total() < events:
            while self.steps and self.steps[0].due <= window:
                heapq.heappop(self.steps).run(window)
            for agg in sites:
                self.monitor(agg, window)
            for rate, start in rates:
                for _ in range(int(rate) + (self.rng.random() < rate % 1)):
                    start(window)
            if self.unsaved >= self.FLUSH:
                self.flush()
            window += WINDOW_MS
        self.flush(down=True)
        self.made["first"], self.made["last"] = START, window
        return self.made

    # -- enterprises ----------------------------------------------------------------------------
    def register_firm(self, now: int) -> None:
        n = len(self.firms) + 1
        industry, _share, label, _code = self.rng.choices(
            INDUSTRIES, [share for _i, share, _l, _c in INDUSTRIES]
        )[0]
        name = f"长安区某{label}有限公司{n:05d}"
        code = credit_code(n, COUNTY)
        agg = Enterprise.register(
            parse(
                RegisterEnterprise,
                {
                    "name": name,
                    "credit_code": code,
                    "industry": industry,
                    "division": COUNTY,
                    "address": f"长安区某路{n}号",
                },
            ),
            self.ctx(now),
        )
        firm = Firm(code, name, industry, agg)
        self.firms.append(firm)
        if industry in LICENCE_CODES:
            self.licensable.append(firm)
        self.keep(agg, "enterprises")
        if self.rng.random() < 0.15:  # a correction of the address some months later
            self.later(now + self.rng.randint(30, 400) * DAY, lambda t: self.correct_firm(firm, t))

    def correct_firm(self, firm: Firm, now: int) -> None:
        agg = firm.agg
        agg.correct(
            parse(
                CorrectEnterprise,
                {
                    "address": f"长安区新路{self.rng.randint(1, 999)}号",
                    "reason": "地址变更",
                    "expected_version": agg.version,
                },
            ),
            self.ctx(now),
        )
        self.keep(agg, "enterprises")

    def firm(self) -> Firm:
        # a few enterprises are inspected and have accidents much more often than the others
        if self.rng.random() < 0.2:
            return self.firms[self.rng.randrange(min(len(self.firms), 50))]
        return self.rng.choice(self.firms)

    # -- monitoring -----------------------------------------------------------------------------
    def register_site(self, n: int, now: int) -> Site:
        mine = next(f for f in self.firms[n * 7 :] + self.firms if f.industry == "coal_mine")
        agg = Site.register(
            parse(
                RegisterSite,
                site(
                    site_code=f"{COUNTY}B{n + 1:04d}",
                    name=f"{mine.name}一号井",
                    enterprise_credit_code=mine.code,
                    enterprise_name=mine.name,
                    division=COUNTY,
                ),
            ),
            self.ctx(now, "monitoring"),
        )
        for p in range(10):
            location = "working_face" if p < 4 else "face_return"
            agg.register_point(
                parse(
                    RegisterPoint,
                    {"point_code": POINTS[p], "sensor_type": "methane", "location": location},
                ),
                self.ctx(now, "monitoring"),
            )
        self.keep(agg, "monitoring")
        return agg

    def monitor(self, agg: Site, window: int) -> None:
        """A window's readings (one per point; a second at each point when one exceeded, which
        clears what it raised), what they raise, and the window's summary."""
        before = len(agg.pending_events)
        rng = self.rng
        excursion = rng.randrange(10) if rng.random() < self.EXCURSION else -1
        readings = []
        for half in (0, 150_000) if excursion >= 0 else (0,):
            for p in range(10):
                self.reading_id += 1
                high = p == excursion and not half
                value = 16_000 if high else 1_500 + int(rng.random() * 3_000)
                readings.append(Reading(self.reading_id, POINTS[p], window + half + p, value))
        ctx = self.ctx(window + WINDOW_MS, "monitoring")
        agg.observe(readings, ctx, {})
        agg.summarize(window, readings, ctx)
        self.keep(agg, "monitoring", before)

    # -- inspections and cases ------------------------------------------------------------------
    def open_inspection(self, now: int) -> None:
        f = self.firm()
        ctx = self.ctx(now, "inspector")
        case = EnforcementCase.open_inspection(
            parse(
                c.OpenInspection,
                inspection(
                    enterprise_credit_code=f.code,
                    enterprise_name=f.name,
                    division=COUNTY,
                    started_at=iso(now - self.rng.randint(1, 4) * HOUR),
                    subject="日常执法检查" if self.rng.random() < 0.8 else "专项执法检查",
                ),
            ),
            ctx,
        )
        hazards = self.rng.choices((0, 1, 2, 3), (30, 30, 25, 15))[0]
        for _ in range(hazards):
            major = self.rng.random() < 0.15
            case.record_hazard(
                parse(
                    c.RecordHazard,
                    {
                        "hazard_class": "major" if major else "general",
                        "description": "安全出口堵塞" if not major else "瓦斯超限作业",
                        "rectified_on_site": not major and self.rng.random() < 0.25,
                    },
                ),
                ctx,
            )
            if major:
                case.take_measure(
                    parse(
                        c.TakeMeasure,
                        {
                            "measure": "withdraw_workers",
                            "description": "撤出作业人员",
                            "hazards": [len(case.hazards)],
                        },
                    ),
                    ctx,
                )
        self.keep(case, "enforcement")
        self.later(now + 2 * HOUR, lambda t: self.after_inspection(case, t))

    def after_inspection(self, case: EnforcementCase, now: int) -> None:
        ctx = self.ctx(now, "inspector")
        before = len(case.pending_events)
        open_ = case.hazards_open()
        if not open_:
            case.close(parse(c.CloseCase, {"outcome": "no_findings"}), ctx)
            self.keep(case, "enforcement", before)
            return
        deadline = now + self.rng.randint(15, 40) * DAY
        case.order_rectification(
            parse(
                c.OrderRectification,
                {
                    "deadline": iso(deadline),
                    "hazards": open_,
                    "document_no": f"长安安监责改〔{from_ms(now).year}〕{self.order}号",
                },
            ),
            ctx,
        )
        self.keep(case, "enforcement", before)
        if self.rng.random() < 0.1 and deadline - now > 12 * DAY:
            self.later(now + DAY, lambda t: self.extension(case, deadline, t))
        else:
            self.later(deadline - DAY, lambda t: self.reinspection(case, t))

    def extension(self, case: EnforcementCase, deadline: int, now: int) -> None:
        ctx = self.ctx(now, "inspector")
        before = len(case.pending_events)
        new_deadline = deadline + 15 * DAY
        case.request_extension(
            parse(c.RequestExtension, {"new_deadline": iso(new_deadline), "reason": "设备采购"}),
            ctx,
        )
        case.decide_extension(parse(c.DecideExtension, {"granted": True, "reason": "同意"}), ctx)
        self.keep(case, "enforcement", before)
        self.later(new_deadline - DAY, lambda t: self.reinspection(case, t))

    def reinspection(self, case: EnforcementCase, now: int) -> None:
        ctx = self.ctx(now, "inspector")
        before = len(case.pending_events)
        passed = self.rng.random() < 0.85
        case.reinspect(
            parse(
                c.Reinspect,
                {
                    "passed": passed,
                    "findings": "已整改" if passed else "未整改到位",
                    "inspectors": INSPECTORS,
                },
            ),
            ctx,
        )
        if passed:
            case.close(parse(c.CloseCase, {"outcome": "rectified"}), ctx)
            self.keep(case, "enforcement", before)
            return
        case.file_case(
            parse(c.FileCase, {"violations": "逾期未整改 (安全生产法第一百零二条)"}), ctx
        )
        for kind in ("笔录", "书证"):
            case.record_evidence(
                parse(
                    c.RecordEvidence,
                    {
                        "evidence_type": kind,
                        "description": "现场检查记录",
                        "collected_by": INSPECTORS,
                    },
                ),
                ctx,
            )
        self.keep(case, "enforcement", before)
        fine = self.rng.randint(1, 50) * 10_000
        self.later(now + 3 * DAY, lambda t: self.notice(case, fine, t))

    def notice(self, case: EnforcementCase, fine: int, now: int) -> None:
        ctx = self.ctx(now, "inspector")
        before = len(case.pending_events)
        penalties = [{"type": "fine", "amount_yuan": fine}]
        case.notify_penalty(
            parse(c.NotifyPenalty, {"penalties": penalties, "facts": "逾期未整改"}), ctx
        )
        if self.rng.random() < 0.05:
            case.recommend_licence_action(
                parse(
                    c.RecommendLicenceAction,
                    {
                        "licence_number": "（冀）MK安许证字〔2024〕0012",
                        "action": "suspend",
                        "reason": "重大事故隐患逾期未整改",
                    },
                ),
                ctx,
            )
        self.keep(case, "enforcement", before)
        if self.rng.random() < 0.1:
            self.later(now + DAY, lambda t: self.hearing(case, penalties, t))
        else:  # past the 5 working days to ask for a hearing, whatever the holidays
            self.later(now + 16 * DAY, lambda t: self.decision(case, penalties, t))

    def hearing(self, case: EnforcementCase, penalties: list[dict[str, Any]], now: int) -> None:
        case.request_hearing(parse(c.RequestHearing, {}), self.ctx(now, "inspector"))
        self.keep(case, "enforcement", len(case.pending_events) - 1)

        def hold(t: int) -> None:
            case.hold_hearing(
                parse(
                    c.HoldHearing,
                    {
                        "outcome": "维持",
                        "notified_at": iso(now + HOUR),
                        "place": "长安区应急管理局",
                    },
                ),
                self.ctx(t, "inspector"),
            )
            self.keep(case, "enforcement", len(case.pending_events) - 1)
            self.later(t + DAY, lambda t2: self.decision(case, penalties, t2))

        self.later(now + 20 * DAY, hold)

    def decision(self, case: EnforcementCase, penalties: list[dict[str, Any]], now: int) -> None:
        ctx = self.ctx(now, "inspector")
        before = len(case.pending_events)
        case.decide_penalty(
            parse(
                c.DecidePenalty,
                {"penalties": penalties, "decision_no": f"长安应急罚〔{self.order}〕号"},
            ),
            ctx,
        )
        case.serve_decision(parse(c.ServeDecision, {"served_at": iso(now), "method": "直接"}), ctx)
        self.keep(case, "enforcement", before)

        def execute(t: int) -> None:
            b = len(case.pending_events)
            ctx2 = self.ctx(t, "inspector")
            case.execute_penalty(parse(c.ExecutePenalty, {"note": "罚款已缴纳"}), ctx2)
            case.close(parse(c.CloseCase, {"outcome": "executed"}), ctx2)
            self.keep(case, "enforcement", b)

        self.later(now + self.rng.randint(10, 30) * DAY, execute)

    # -- accidents ------------------------------------------------------------------------------
    def report_accident(self, now: int) -> None:
        f = self.firm()
        occurred = now - 3 * HOUR - self.rng.randint(0, 180) * 60_000
        delay = self.rng.randint(15, 58) if self.rng.random() < 0.92 else self.rng.randint(61, 170)
        common = {
            "enterprise_credit_code": f.code,
            "enterprise_name": f.name,
            "division": COUNTY,
            "industry": f.industry,
            "place": self.rng.choice(("一号井 3201 工作面", "储罐区", "装置区", "仓库", "车间")),
            "reported_at": iso(occurred + delay * 60_000),
        }
        ctx = self.ctx(now)
        if self.rng.random() < 0.04:
            body = accident(from_ms(occurred), **common)
            for k in ("deaths", "missing", "serious_injuries", "direct_loss_yuan"):
                body.pop(k)
            body["trapped"] = self.rng.randint(3, 9)
            agg = Accident.report_near_miss(parse(ReportNearMiss, body), ctx)
            self.keep(agg, "accidents")
            return
        deaths = self.rng.choices((0, 1, 2, 3, 5), (80, 12, 5, 2, 1))[0]
        body = accident(
            from_ms(occurred),
            **common,
            deaths=deaths,
            missing=0,
            serious_injuries=self.rng.choices((0, 1, 2, 4, 12), (50, 30, 12, 6, 2))[0],
            direct_loss_yuan=self.rng.randint(0, 400) * 10_000,
        )
        agg = Accident.report(parse(ReportAccident, body), ctx)
        self.keep(agg, "accidents")
        if self.rng.random() < 0.15:  # 补报 within the 30 days (7 for some industries)
            self.later(now + 2 * DAY, lambda t: self.supplement(agg, deaths, t))

    def supplement(self, agg: Accident, deaths: int, now: int) -> None:
        agg.supplement(
            parse(
                SupplementAccident,
                {
                    "deaths": deaths + 1,
                    "note": "一名重伤人员经抢救无效死亡",
                    "expected_version": agg.version,
                },
            ),
            self.ctx(now),
        )
        self.keep(agg, "accidents", len(agg.pending_events) - 1)

    # -- licences (the province's) --------------------------------------------------------------
    def apply_licence(self, now: int) -> None:
        if not self.licensable:
            return
        f = self.rng.choice(self.licensable)
        agg = Licence.apply_for(
            parse(
                ApplyLicence,
                {
                    "enterprise_credit_code": f.code,
                    "enterprise_name": f.name,
                    "industry": f.industry,
                    "division": COUNTY,
                    "scope": "开采" if "mine" in f.industry else "生产、储存",
                },
            ),
            self.pctx(now),
        )
        self.keep(agg, "licences")
        self.later(now + self.rng.randint(1, 4) * DAY, lambda t: self.accept(agg, f, t))

    def accept(self, agg: Licence, f: Firm, now: int) -> None:
        agg.accept(parse(AcceptLicence, {}), self.pctx(now))
        self.keep(agg, "licences", len(agg.pending_events) - 1)
        self.later(now + self.rng.randint(10, 40) * DAY, lambda t: self.decide(agg, f, t))

    def decide(self, agg: Licence, f: Firm, now: int) -> None:
        before = len(agg.pending_events)
        if self.rng.random() < 0.08:
            agg.refuse(parse(RefuseLicence, {"reasons": ["安全设施未经验收"]}), self.pctx(now))
            self.keep(agg, "licences", before)
            return
        self.licence_serial += 1
        year = from_ms(now).year
        number = f"（冀）{LICENCE_CODES[f.industry]}安许证字〔{year}〕{self.licence_serial:05d}"
        agg.issue(parse(IssueLicence, {"number": number, "valid_from": iso(now)}), self.pctx(now))
        self.keep(agg, "licences", before)
        r = self.rng.random()
        if r < 0.05:
            self.later(now + self.rng.randint(60, 300) * DAY, lambda t: self.suspend(agg, t))
        elif r < 0.07:
            self.later(now + self.rng.randint(60, 600) * DAY, lambda t: self.end(agg, t, True))
        elif r < 0.10:
            self.later(now + self.rng.randint(60, 600) * DAY, lambda t: self.end(agg, t, False))

    def suspend(self, agg: Licence, now: int) -> None:
        agg.suspend(parse(SuspendLicence, {"reason": "重大事故隐患"}), self.pctx(now))
        self.keep(agg, "licences", len(agg.pending_events) - 1)

        def reinstate(t: int) -> None:
            agg.reinstate(parse(ReinstateLicence, {"reason": "整改合格"}), self.pctx(t))
            self.keep(agg, "licences", len(agg.pending_events) - 1)

        self.later(now + 30 * DAY, reinstate)

    def end(self, agg: Licence, now: int, revoke: bool) -> None:
        if revoke:
            agg.revoke(parse(RevokeLicence, {"reason": "发生重大事故"}), self.pctx(now))
        else:
            agg.cancel(parse(CancelLicence, {"reason": "企业申请注销"}), self.pctx(now))
        self.keep(agg, "licences", len(agg.pending_events) - 1)


def county(
    base: Path, events: int, seed: int = 2026, sites: int = 4
) -> tuple[CountyDirs, Counter[str]]:
    """Make a county (``county_dirs``) in ``base`` and write about ``events`` events into its
    log; the county's node is closed after. Returns its directories and the events made per
    kind (with ``first`` and ``last``: the span of the log's time, in ms)."""
    dirs = county_dirs(base)
    county_node = Node(config_mod.load(dirs.county, environ={}), clock=lambda: to_ms(NOW))
    province_node = Node(config_mod.load(dirs.province, environ={}), clock=lambda: to_ms(NOW))
    try:
        made = CountyLog(county_node, province_node, seed, sites).run(events)
        county_node.checkpoint()
    finally:
        county_node.close()
        province_node.close()
    return dirs, made


# -- the rebuild benchmark's provincial log ---------------------------------------------------
COUNTIES = ("130102", "130104", "130105", "130402", "130403")


def _province_ctx(ms: int) -> Context:
    return Context(Actor("bench", "130000"), ms, "province", "130000", uuid.uuid4)


def province_log(node: Node, total: int) -> None:
    """The rebuild benchmark's log at a province node: rounds of 5 minutes, each with every
    site's summary and a few excursions (≈ 60 %), two cases (≈ 25 %), a licence (≈ 10 %) and
    an accident (≈ 5 %), until ``total`` events."""
    ctx = _province_ctx
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
    parser = argparse.ArgumentParser(description="Write a county's data set into DIR.")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    start = time.perf_counter()
    dirs, made = county(args.directory, args.events, args.seed)
    print(
        f"{dirs.county}: {made.total() - made['first'] - made['last']:,} events"
        f" in {time.perf_counter() - start:.0f} s; the root key: {dirs.root_pub}"
    )


if __name__ == "__main__":
    main()
