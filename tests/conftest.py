import itertools
import os
from pathlib import Path

import pytest

from domain.base import to_ms
from domain.codes import Tier
from node import config as config_mod
from node.config import NodeSection
from node.keys import generate_node_key
from node.service import Node
from tests.factories import NOW


def pytest_configure(config):
    # what starts outside any test (a session's server) is marked the session's
    from tests.servers import SESSION, TAG

    os.environ[TAG] = SESSION
    # The tests read messages in English (the catalogue's source text), in this process and in
    # the nodes it starts; the tests of the Chinese a user reads by default ask for zh-CN.
    from domain.i18n import set_process_language

    os.environ["ANJIAN_LANG"] = "en"
    set_process_language("en")


def pytest_sessionfinish(session):
    # the last resort: nothing this session started outlives it
    from tests.servers import Processes

    Processes(None).end()


@pytest.fixture(autouse=True)
def processes(request):
    """Every process the test starts ends with it, passed or failed, and so do theirs: a serving
    node's projections process, the demo's servers, an orphan of a SIGKILLed parent."""
    from tests.servers import ended_with

    with ended_with(f"{os.getpid()}.{next(_tests)}") as started:
        yield started


_tests = itertools.count(1)


def pytest_collection_modifyitems(config, items):
    # The README test runs the README's test command in a fresh clone; that inner run checks
    # the command works and runs the fast domain tests only (it must not start itself again).
    if os.environ.get("ANJIAN_README_INNER_RUN") == "1":
        keep = [i for i in items if "/tests/domain/" in str(i.fspath)]
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


class Clock:
    """A settable clock for the node (milliseconds since the epoch)."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms


def make_node_dir(path: Path, tier: str = "county", region: str = "130102", **http: object) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    text = config_mod.render(NodeSection(origin=region, tier=Tier(tier), region=region))
    (path / config_mod.CONFIG_FILE).write_text(text, encoding="utf-8")
    generate_node_key(path)
    return path


@pytest.fixture
def node_dir(tmp_path):
    return make_node_dir(tmp_path / "county")


@pytest.fixture
def clock():
    return Clock(to_ms(NOW))


@pytest.fixture(scope="session")
def postgres():
    from tests.servers import Postgres

    server = Postgres()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def load_config(request, node_dir):
    """Loads the node directory's configuration for each storage backend in turn."""
    environ: dict[str, str] = {}
    if request.param == "postgres":
        server = request.getfixturevalue("postgres")
        dbname = server.create_database(
            f"node_{request.node.name.split('[')[0][-40:]}_{id(request)}"
        )
        environ = {
            "ANJIAN_STORE_BACKEND": "postgres",
            "ANJIAN_STORE_POSTGRES_PORT": str(server.port),
            "ANJIAN_STORE_POSTGRES_DBNAME": dbname,
            "ANJIAN_STORE_POSTGRES_USER": "anjian",
        }
    return lambda: config_mod.load(node_dir, environ=environ)


@pytest.fixture
def node(node_dir, clock):
    n = Node(config_mod.load(node_dir, environ={}), clock=clock)
    yield n
    n.close()


@pytest.fixture
def any_node(load_config, clock):
    """A node on each storage backend (the contract every backend must meet)."""
    n = Node(load_config(), clock=clock)
    yield n
    n.close()
