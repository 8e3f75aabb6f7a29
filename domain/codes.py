"""Identifiers the law defines: unified social credit codes (GB 32100-2015), division codes
(GB/T 2260, checked against the table of ``domain.divisions``), and the tiers of the
supervision hierarchy."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Collection
from enum import StrEnum

from domain import divisions
from domain.i18n import N_, Text, _

# GB 32100-2015: 18 characters from this alphabet (no I, O, S, V, Z); the last is a check
# character over the first 17 with these weights, modulo 31.
CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

# uuid5 namespace for enterprise ids: every node derives the same id from the same code.
ENTERPRISE_NAMESPACE = uuid.UUID("6f1d5c62-6a3f-5e0e-9c1b-0a7e1d2b9c31")

NATIONAL_REGION = divisions.NATIONAL

# The 34 province-level codes of GB/T 2260 (31 mainland provinces, 台湾, 香港, 澳门).
PROVINCE_PREFIXES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 "  # noqa: SIM905 - a table
    "50 51 52 53 54 61 62 63 64 65 71 81 82".split()
)


class Tier(StrEnum):
    COUNTY = "county"
    CITY = "city"
    PROVINCE = "province"
    NATIONAL = "national"
    BACKUP = "backup"


# What a person reads for a tier (the value itself stays in configuration and on the wire).
TIER_LABELS = {
    "county": N_("county"),
    "city": N_("city"),
    "province": N_("province"),
    "national": N_("national"),
    "backup": N_("backup"),
}


def tier_label(tier: str) -> Text:
    """A tier (``county``…) as a person reads it, in their language (县级…)."""
    return Text(TIER_LABELS.get(str(tier), str(tier)), {})


def credit_code_check_character(first17: str) -> str:
    """The check character GB 32100-2015 assigns to the first 17 characters."""
    total = sum(
        CREDIT_CODE_ALPHABET.index(c) * w for c, w in zip(first17, CREDIT_CODE_WEIGHTS, strict=True)
    )
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def normalize_credit_code(raw: str) -> str:
    """Return the code upper-cased, or raise ValueError saying what is wrong with it."""
    code = raw.strip().upper()
    if len(code) != 18:
        raise ValueError(
            _(
                "a unified social credit code has 18 characters, this one has {count}",
                count=len(code),
            )
        )
    bad = sorted({c for c in code if c not in CREDIT_CODE_ALPHABET})
    if bad:
        raise ValueError(
            _(
                "characters {bad!r} cannot appear in a unified social credit code "
                "(allowed: digits and A-Y without I, O, S, V, Z)",
                bad="".join(bad),
            )
        )
    expected = credit_code_check_character(code[:17])
    if code[17] != expected:
        raise ValueError(
            _(
                "check character is {given!r} but GB 32100-2015 gives {expected!r} "
                "for the first 17 characters: the code is mistyped",
                given=code[17],
                expected=expected,
            )
        )
    return code


def enterprise_id(credit_code: str, division: str) -> uuid.UUID:
    """The id of the enterprise with ``credit_code`` as registered by the node of ``division``
    (the county where it is located): scoped to that node, so no other node can take it first.
    The same code registered in two divisions makes two records, which the exceptions list
    shows (docs/architecture.md §4)."""
    return uuid.uuid5(ENTERPRISE_NAMESPACE, f"{division}:{credit_code}")


def record_id(origin: str) -> uuid.UUID:
    """A new record's id, scoped to the origin that creates it: an RFC 9562 version 8 UUID whose
    first 48 bits are the origin's tag and whose other 74 free bits are random. Whoever sees the
    id can tell which origin alone may create it, so no other node can take it first, at any
    tier (docs/architecture.md §6 "In"); ids of records named by a real-world code are derived
    instead (``enterprise_id``...)."""
    raw = bytearray(_origin_tag(origin) + uuid.uuid4().bytes[6:])  # its random bits, ours
    raw[6] = (raw[6] & 0x0F) | 0x80  # version 8
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 9562 variant
    return uuid.UUID(bytes=bytes(raw))


def scoped_to(record: uuid.UUID, origin: str) -> bool:
    """Whether ``record`` is an id ``record_id`` makes for ``origin``."""
    return record.version == 8 and record.bytes[:6] == _origin_tag(origin)


def _origin_tag(origin: str) -> bytes:
    return hashlib.sha256(b"anjian record id\0" + origin.encode()).digest()[:6]


_DIVISION = re.compile(r"^\d{6}$")

# The reporting chain's tiers, upward (493号令 Art. 10: 逐级上报).
CHAIN_TIERS = (Tier.COUNTY, Tier.CITY, Tier.PROVINCE, Tier.NATIONAL)
_RANK = {t: i for i, t in enumerate(CHAIN_TIERS)}


def check_division_shape(code: str) -> str:
    """Return ``code`` if it has the shape of a GB/T 2260 code (six digits, one of the 34
    province prefixes), whether or not it is in the table; else raise ValueError."""
    if not _DIVISION.match(code):
        raise ValueError(_("a division code is six digits (GB/T 2260), got {code!r}", code=code))
    if code[:2] not in PROVINCE_PREFIXES:
        raise ValueError(
            _("{prefix!r} is not a province-level prefix of GB/T 2260", prefix=code[:2])
        )
    return code


def check_division(code: str, extra: Collection[str] = ()) -> str:
    """Return a GB/T 2260 division code, or raise ValueError saying what is wrong: the code must
    be in the 民政部 table shipped with this version (domain/divisions.tsv), among the codes the
    node declared (node.toml ``[divisions] extra``), or in ``extra``."""
    check_division_shape(code)
    if not divisions.known(code) and code not in extra:
        t = divisions.table()
        raise ValueError(
            _(
                "{code} is not a division code of GB/T 2260 (the 民政部 table of {date} this "
                "version ships): check the code; a division newer than the table is listed in "
                "node.toml [divisions] extra (anjian init --division CODE=NAME)",
                code=code,
                date=t.date,
            )
        )
    return code


def division_level(code: str) -> Tier:
    """The tier whose bureau a division code names: 000000 national, PP0000 province, PPCC00
    city, any other code county (by its digits; a city without counties is a city)."""
    if code == NATIONAL_REGION:
        return Tier.NATIONAL
    if code[2:] == "0000":
        return Tier.PROVINCE
    if code[4:] == "00":
        return Tier.CITY
    return Tier.COUNTY


def tier_rank(tier: str) -> int | None:
    """The place of a tier in the reporting chain (county 0 ... national 3); None for a tier
    outside it (backup)."""
    try:
        return _RANK[Tier(tier)]
    except (KeyError, ValueError):
        return None


def check_region(tier: Tier, region: str, extra: Collection[str] = ()) -> str:
    """A node's region must be a division (``check_division``; ``extra``: the node's
    ``[divisions] extra`` codes) whose level fits its tier; raise ValueError saying what does
    not. National and backup nodes have 000000."""
    if tier in (Tier.NATIONAL, Tier.BACKUP):
        if region != NATIONAL_REGION:
            raise ValueError(
                _(
                    "a {tier} node covers the whole country: its region is {region}",
                    tier=tier_label(tier),
                    region=NATIONAL_REGION,
                )
            )
        return region
    check_division_shape(region)
    level = division_level(region)
    if level != tier:
        raise ValueError(
            _(
                "{region} names a {level}-level division, not a {tier}",
                region=region,
                level=tier_label(level),
                tier=tier_label(tier),
            )
        )
    return check_division(region, extra)


def in_subtree(region: str, code: str) -> bool:
    """True when division ``code`` lies inside the area of the bureau for ``region``: all for
    000000, the 2-digit prefix for a province, the 4-digit prefix for a city (a city without
    counties: its own code alone), the code itself for a county. The same as ``region`` being
    in ``divisions.chain(code)`` for every region a node can have."""
    if region == NATIONAL_REGION:
        return True
    level = division_level(region)
    if level == Tier.PROVINCE:
        return code[:2] == region[:2]
    if level == Tier.CITY:
        return code[:4] == region[:4]
    return code == region


def region_chain(code: str) -> dict[str, str | None]:
    """County, city and province codes above (and including) a division code. The city is the
    listed PPCC00: none above 419001 (省直辖) or a municipality's district (110101)."""
    level = division_level(code)
    return {
        "county": code if level == Tier.COUNTY else None,
        "city": divisions.city_of(code),
        "province": code[:2] + "0000",
    }


def bureau_for(division: str, tier: Tier) -> str:
    """The region of the bureau that does ``tier``'s part for a place in ``division``: the
    lowest bureau of ``divisions.chain(division)`` at ``tier`` or above. A city without counties
    does the county's part (bureau_for("441900", COUNTY) = 441900); where no city stands above
    a county the province does the city's (bureau_for("419001", CITY) = 410000)."""
    want = _RANK[tier]
    for region in divisions.chain(division):
        if _RANK[division_level(region)] >= want:
            return region
    return NATIONAL_REGION  # not reached: every chain ends at the national centre
