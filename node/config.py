"""The node's configuration: ``node.toml`` in the node directory, parsed once into a frozen
object. Environment variables ``ANJIAN_<SECTION>_<KEY>`` override single values (for example
``ANJIAN_HTTP_PORT=8650``); nothing below ``node/`` reads the environment. A bad value of a
variable, or an ``ANJIAN_`` variable that names no setting, is an error that names the variable
(not node.toml, which may be right)."""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from domain.codes import Tier, check_region
from domain.divisions import check_extra
from domain.errors import pydantic_message
from domain.i18n import Text, _
from node.errors import ConfigError, Listed, said

CONFIG_FILE = "node.toml"
USERS_FILE = "users.toml"
KEY_FILE = "node.key"  # the node's Ed25519 private key (0600)
PUBLIC_KEY_FILE = "node.pub"
ENV_PREFIX = "ANJIAN_"
# ANJIAN_ variables the product reads itself, not overrides of node.toml (the CLI's language,
# the nats-server to run)
PRODUCT_VARIABLES = frozenset({"ANJIAN_LANG", "ANJIAN_NATS_SERVER"})


_NATS_URL = re.compile(r"^(nats|tls)://[A-Za-z0-9.-]+(:\d{1,5})?/?$")


def nats_url(url: str, what: str | Text) -> str:
    match = _NATS_URL.match(url)
    if not match or (match.group(2) and not 0 < int(match.group(2)[1:]) < 65536):
        raise ValueError(
            _("{what} is a NATS URL such as nats://city-host:4222, got {url!r}", what=what, url=url)
        )
    return url


def _check_parent(url: str) -> str:
    return nats_url(url, _("the parent"))


def _check_nats(url: str) -> str:
    return nats_url(url, _("this tier's NATS server"))


class _Section(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True
    )  # lax: "8640" from the environment is a port


class NodeSection(_Section):
    origin: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    tier: Tier
    region: str
    parent: Annotated[str, AfterValidator(_check_parent)] | None = None

    @model_validator(mode="after")
    def _region_fits_tier(self, info: ValidationInfo) -> NodeSection:
        # a division of the shipped table, or one of node.toml's [divisions] extra, which
        # load() passes as the validation context {"divisions": {code: name}}
        context = info.context if isinstance(info.context, dict) else {}
        extra = context.get("divisions") or {}
        check_region(self.tier, self.region, extra if isinstance(extra, dict) else {})
        return self


class FederationSection(_Section):
    """This tier's own NATS server (city and above; leaf counties have none: they are clients
    of their parent's), and how much moves per batch."""

    nats: Annotated[str, AfterValidator(_check_nats)] | None = None
    batch: int = Field(default=1000, ge=1, le=10_000)
    # this node's NATS identity: an nkey user seed (0600), relative to the node directory;
    # its public key is in the node's certification, from which a tier's server config is made
    nats_key: str = "nats.nk"
    # TLS for NATS connections: the CA that signed the servers' certificates (turns TLS on),
    # and this node's client certificate and key for servers that require mutual TLS
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    # where `anjian nats config` wrote this tier's server configuration: the node rewrites its
    # authorisation there and has the server reload it when a child is certified or revoked
    server_dir: str | None = None
    # the largest envelope recorded, imported or relayed (bytes): well under NATS's 1 MB
    max_envelope: int = Field(default=262_144, ge=4096, le=1_000_000)
    # envelopes kept waiting for their turn: per origin with a certified key, and in all for
    # envelopes whose key is not known yet; beyond that they are dropped (counted), not kept
    hold_per_origin: int = Field(default=5000, ge=100)
    hold_unknown: int = Field(default=10_000, ge=100)


class PostgresSection(_Section):
    dbname: str = "anjian"
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "anjian"
    password: str = ""


class StoreSection(_Section):
    backend: Literal["sqlite", "postgres"] = "sqlite"
    sqlite_path: str = "events.db"
    postgres: PostgresSection = PostgresSection()


class HttpSection(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8640, ge=0, le=65535)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # HTTPS: certificate (chain) and key files; without them the API speaks plain HTTP, which
    # is allowed only on a loopback address unless ``allow_plain`` says otherwise
    tls_cert: str | None = None
    tls_key: str | None = None
    allow_plain: bool = False
    token_days: int = Field(default=90, ge=1, le=3650)  # API tokens expire after this
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)  # console sessions
    lockout_failures: int = Field(default=5, ge=1, le=100)  # failed logins before a lockout
    lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)


class ReadingsSection(_Section):
    path: str = "readings.db"
    retention_days: int = Field(default=92, ge=1)  # AQ 6201: real-time values ≥ 3 months
    max_batch: int = Field(default=10_000, ge=1, le=1_000_000)


class ModbusPointSection(_Section):
    point: str = Field(min_length=1, description="测点编码, as registered at the site")
    address: int = Field(ge=0, le=65535, description="the register holding the value")
    scale: Decimal = Field(default=Decimal(1), gt=0, description="value = raw register × scale")
    signed: bool = False
    status_register: int | None = Field(default=None, ge=0, le=65535)
    kind: Literal["holding", "input"] = "holding"


class ModbusSection(_Section):
    """A site's Modbus TCP outstation, polled every ``interval`` seconds (AQ 6201: ≤ 10 s)."""

    site: str = Field(min_length=1)
    host: str
    port: int = Field(default=502, ge=1, le=65535)
    unit: int = Field(default=1, ge=0, le=255)
    interval: float = Field(default=10.0, gt=0, le=60)
    timeout: float = Field(default=3.0, gt=0)
    points: list[ModbusPointSection] = Field(min_length=1)

    @model_validator(mode="after")
    def _points_once(self) -> ModbusSection:
        codes = [p.point for p in self.points]
        twice = sorted({c for c in codes if codes.count(c) > 1})
        if twice:
            raise ValueError(
                _(
                    "site {site}: points listed twice: {points}",
                    site=self.site,
                    points=", ".join(twice),
                )
            )
        return self


class MqttSection(_Section):
    """A site's readings as JSON on an MQTT topic, one batch per ``interval`` seconds."""

    site: str = Field(min_length=1)
    topic: str = Field(min_length=1)
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    interval: float = Field(default=10.0, gt=0, le=60)
    username: str | None = None
    password: str | None = None
    client_id: str | None = None


class FileDropSection(_Section):
    """A folder monitoring-system files (CDDY point definitions, CDSS real-time values) are
    dropped into; ``sites`` maps a file's 矿井编码 to a site code (default: the same)."""

    directory: str
    interval: float = Field(default=2.0, gt=0)
    max_file_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)  # larger files: rejected
    sites: dict[str, str] = Field(default_factory=dict)


class HardwareSection(_Section):
    modbus: list[ModbusSection] = Field(default_factory=list)
    mqtt: list[MqttSection] = Field(default_factory=list)
    filedrop: list[FileDropSection] = Field(default_factory=list)

    @model_validator(mode="after")
    def _each_once(self) -> HardwareSection:
        for what, keys in (
            (_("[[hardware.mqtt]] subscriptions"), [(m.host, m.port, m.topic) for m in self.mqtt]),
            (_("[[hardware.mqtt]] client ids"), [m.client_id for m in self.mqtt if m.client_id]),
            (_("[[hardware.filedrop]] folders"), [f.directory for f in self.filedrop]),
        ):
            if len(set(keys)) != len(keys):
                raise ValueError(
                    _("{what} must differ (a broker drops one of two equal ones)", what=what)
                )
        return self


class CalendarSection(_Section):
    """China's statutory holidays (放假) and make-up working days (调休上班) of years the shipped
    calendar does not know yet, copied from the State Council's notice of each year (国务院办公厅
    关于部分节假日安排的通知): working-day periods of the enforcement procedure count by them."""

    holidays: list[date] = Field(default_factory=list)
    workdays: list[date] = Field(default_factory=list)


class DivisionsSection(_Section):
    """Division codes newer than the shipped GB/T 2260 table (code → name), until an update of
    the software ships them."""

    extra: Annotated[dict[str, str], AfterValidator(check_extra)] = Field(default_factory=dict)


class Config(_Section):
    directory: Path
    node: NodeSection
    store: StoreSection = StoreSection()
    http: HttpSection = HttpSection()
    readings: ReadingsSection = ReadingsSection()
    federation: FederationSection = FederationSection()
    hardware: HardwareSection = HardwareSection()
    calendar: CalendarSection = CalendarSection()
    divisions: DivisionsSection = DivisionsSection()

    # resolved once (asked at every request); a copy with another directory is made by
    # load(), never by model_copy (which would carry these over)
    @cached_property
    def projections_file(self) -> Path:
        return (self.directory / "projections.db").resolve()

    @cached_property
    def readings_file(self) -> Path:
        return (self.directory / self.readings.path).resolve()

    @cached_property
    def sqlite_file(self) -> Path:
        return (self.directory / self.store.sqlite_path).resolve()

    @property
    def users_file(self) -> Path:
        return self.directory / USERS_FILE

    @property
    def key_file(self) -> Path:
        return self.directory / KEY_FILE

    @property
    def public_key_file(self) -> Path:
        return self.directory / PUBLIC_KEY_FILE

    @property
    def trust_dir(self) -> Path:
        """The node's trust chain: key documents up to the root, and root.pub."""
        return self.directory / "trust"

    @property
    def root_key_file(self) -> Path:
        return self.trust_dir / "root.pub"


def load(directory: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read ``DIR/node.toml`` with environment overrides; raise ConfigError saying what is wrong
    (and where: node.toml, or the variable that set a value)."""
    directory = Path(directory)
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(
            _(
                "{directory} is not a node directory (no {file}); create one with "
                "`anjian init {directory} --tier county --region CODE`",
                directory=directory,
                file=CONFIG_FILE,
            )
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(_("{file}: not valid TOML: {error}", file=path, error=said(e))) from None
    set_by = _apply_overrides(data, os.environ if environ is None else environ)
    divisions = data.get("divisions")
    extra = divisions.get("extra") if isinstance(divisions, dict) else None
    try:
        return Config.model_validate(
            {**data, "directory": directory.resolve()},
            context={"divisions": extra if isinstance(extra, dict) else {}},
        )
    except ValidationError as e:
        in_file: list[Text] = []
        in_environment: list[Text] = []
        for err in e.errors():
            loc = tuple(str(p) for p in err["loc"])
            variable = next((v for p, v in set_by.items() if loc[: len(p)] == p), None)
            # a check of a whole section (the region fits the tier) some variables took part in
            within = [v for p, v in set_by.items() if len(p) > len(loc) and p[: len(loc)] == loc]
            if variable is not None:
                in_environment.append(_at(variable, pydantic_message(err)))
            elif within:
                in_environment.append(
                    _(
                        "{variables} with [{section}] of {file}: {problem}",
                        variables=", ".join(within),
                        section=".".join(loc),
                        file=path,
                        problem=pydantic_message(err),
                    )
                )
            else:
                in_file.append(_at(".".join(loc), pydantic_message(err)))
        problems = [_at(str(path), Listed(in_file))] if in_file else []
        raise ConfigError(Listed(problems + in_environment)) from None


def _at(where: str, problem: str | Text) -> Text:
    """A problem and where it is (a file, a setting, a variable)."""
    return _("{where}: {problem}", where=where, problem=problem)


# the sections whose single values ANJIAN_<SECTION>_<KEY> overrides ([store.postgres] as
# ANJIAN_STORE_POSTGRES_<KEY>)
_OVERRIDDEN: dict[tuple[str, ...], type[BaseModel]] = {
    ("node",): NodeSection,
    ("store",): StoreSection,
    ("store", "postgres"): PostgresSection,
    ("http",): HttpSection,
    ("readings",): ReadingsSection,
    ("federation",): FederationSection,
}


def override_variables() -> dict[str, tuple[str, ...]]:
    """Every variable that overrides a setting, and the setting's place in node.toml."""
    found = {}
    for section, model in _OVERRIDDEN.items():
        for key, field in model.model_fields.items():
            kind = field.annotation
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                continue  # a section of its own, overridden key by key
            found[ENV_PREFIX + "_".join((*section, key)).upper()] = (*section, key)
    return found


def _apply_overrides(
    data: dict[str, Any], environ: Mapping[str, str]
) -> dict[tuple[str, ...], str]:
    """Put the environment's overrides into ``data``; returns which variable set each setting.
    ConfigError names the ANJIAN_ variables that override no setting."""
    settings = override_variables()
    set_by: dict[tuple[str, ...], str] = {}
    unknown: list[Text] = []
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name in PRODUCT_VARIABLES:
            continue
        place = settings.get(name.upper())
        if place is None:
            unknown.append(_unknown_variable(name, settings))
            continue
        target: Any = data
        for part in place[:-1]:
            target = target.setdefault(part, {}) if isinstance(target, dict) else None
        if isinstance(target, dict):  # else node.toml's section is not a table: said below
            target[place[-1]] = value  # text: the schema converts what must be a number
            set_by[place] = name
    if unknown:
        raise ConfigError(Listed(unknown))
    return set_by


def _unknown_variable(name: str, settings: Mapping[str, tuple[str, ...]]) -> Text:
    close = difflib.get_close_matches(name.upper(), settings, n=1)
    if close:
        return _(
            "{variable}: no setting of node.toml has this name (ANJIAN_<SECTION>_<KEY>); "
            "did you mean {suggestion}?",
            variable=name,
            suggestion=close[0],
        )
    return _(
        "{variable}: no setting of node.toml has this name (ANJIAN_<SECTION>_<KEY> overrides "
        "a setting of [node], [store], [http], [readings] or [federation], e.g. "
        "ANJIAN_HTTP_PORT)",
        variable=name,
    )


def new_node_toml(
    tier: str,
    region: str,
    parent: str | None,
    nats: str | None,
    origin: str | None,
    divisions: Mapping[str, str] | None = None,
) -> str:
    """The node.toml of a new node, after checking what it is given (ConfigError names each
    setting that is wrong and why). The origin defaults to the region code ("backup" for a
    backup centre); ``divisions``: codes newer than the shipped table ([divisions] extra)."""
    if origin is None:
        origin = "backup" if tier == Tier.BACKUP else region
    try:
        extra = check_extra(divisions or {})
    except ValueError as e:
        raise ConfigError(said(e)) from None
    try:
        section = NodeSection.model_validate(
            {"origin": origin, "tier": tier, "region": region, "parent": parent},
            context={"divisions": extra},
        )
    except ValidationError as e:
        raise ConfigError(
            Listed(
                _at(".".join(map(str, err["loc"])) or "region", pydantic_message(err))
                for err in e.errors()
            )
        ) from None
    if nats is not None:
        try:
            FederationSection(nats=nats)
        except ValidationError as e:
            raise ConfigError(_at("--nats", pydantic_message(e.errors()[0]))) from None
    return render(section, nats, extra)


def render(
    node: NodeSection, nats_url: str | None = None, divisions: Mapping[str, str] | None = None
) -> str:
    """The text of a new node.toml: every setting shown, commented where it has a default."""
    parent = f'parent = "{node.parent}"' if node.parent else '# parent = "nats://parent-host:4222"'
    nats = (
        f'nats = "{nats_url}"'
        if nats_url
        else '# nats = "nats://127.0.0.1:4222"  # this tier\'s own NATS (city and above)'
    )
    return f"""\
# anjian node configuration. Environment variables ANJIAN_<SECTION>_<KEY> override a value.

[node]
origin = "{node.origin}"      # stable for the node's whole life
tier = "{node.tier}"          # county | city | province | national | backup
region = "{node.region}"      # GB/T 2260 division code of the bureau's area
{parent}

[store]
backend = "sqlite"            # or "postgres" (pip install 'anjian[postgres]')
sqlite_path = "events.db"     # relative to this directory
# [store.postgres]
# dbname = "anjian"
# host = "127.0.0.1"
# port = 5432
# user = "anjian"
# password = ""               # better: ANJIAN_STORE_POSTGRES_PASSWORD

[http]
host = "127.0.0.1"
port = 8640
max_body_bytes = 1048576

[federation]
{nats}
batch = 1000                  # envelopes per publish or import batch

[readings]                    # raw sensor readings: local only, never in the log
path = "readings.db"
retention_days = 92           # AQ 6201: real-time values kept at least 3 months
max_batch = 10000             # readings per batch

# [calendar]    # working days of a year the shipped calendar does not know (2027 on): copy the
#               # year's whole State Council notice (国务院办公厅关于部分节假日安排的通知), every
#               # day off of every holiday (1 January and at least the 13 statutory days) and
#               # every make-up working day (调休上班). 2026's notice, for example, reads:
# holidays = [
#   2026-01-01, 2026-01-02, 2026-01-03,                                      # 元旦
#   2026-02-15, 2026-02-16, 2026-02-17, 2026-02-18, 2026-02-19, 2026-02-20,  # 春节
#   2026-02-21, 2026-02-22, 2026-02-23,
#   2026-04-04, 2026-04-05, 2026-04-06,                                      # 清明节
#   2026-05-01, 2026-05-02, 2026-05-03, 2026-05-04, 2026-05-05,              # 劳动节
#   2026-06-19, 2026-06-20, 2026-06-21,                                      # 端午节
#   2026-09-25, 2026-09-26, 2026-09-27,                                      # 中秋节
#   2026-10-01, 2026-10-02, 2026-10-03, 2026-10-04, 2026-10-05, 2026-10-06,  # 国庆节
#   2026-10-07,
# ]
# workdays = [2026-01-04, 2026-02-14, 2026-02-28, 2026-05-09, 2026-09-20, 2026-10-10]

{_divisions(divisions)}"""


def _divisions(extra: Mapping[str, str] | None) -> str:
    if not extra:
        return (
            "# [divisions]      # division codes newer than the shipped GB/T 2260 table\n"
            '# extra = { "139999" = "名称" }\n'
        )
    listed = ", ".join(
        f"{json.dumps(code)} = {json.dumps(name, ensure_ascii=False)}"
        for code, name in sorted(extra.items())
    )
    return (
        "[divisions]                   # division codes newer than the shipped GB/T 2260 table\n"
        f"extra = {{ {listed} }}\n"
    )
