"""The streams' retention on a real nats-server: what goes up only bridges outages; the archive
(the restorable copy) and what comes down (which every future child must learn) are kept; a
stream made by an older version is brought to this retention."""

from __future__ import annotations

import asyncio

import nats
import pytest
from nats.js.api import StreamConfig

from federation.jetstream import ensure_stream
from federation.transport import ARCHIVE, DOWN, RETENTION, SUBJECTS, UP
from node.errors import ConfigError
from node.replication.natsd import NatsServer, nats_server_binary
from tests.servers import missing

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


@pytest.fixture
def server(tmp_path):
    try:
        nats_server_binary()
    except ConfigError:
        missing("nats-server", "apt-get install -y nats-server")
    s = NatsServer(tmp_path / "nats").start()
    yield s
    s.kill()


def test_retention_of_each_stream(server):
    async def run() -> dict[str, float]:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        # as an older version made it: everything expiring after 30 days
        await js.add_stream(
            StreamConfig(name=ARCHIVE, subjects=[SUBJECTS[ARCHIVE]], max_age=RETENTION)
        )
        ages = {}
        for name in (UP, DOWN, ARCHIVE):
            await ensure_stream(js, name)
            await ensure_stream(js, name)  # again: nothing changes
            ages[name] = (await js.stream_info(name)).config.max_age or 0.0
        await nc.close()
        return ages

    assert asyncio.run(run()) == {UP: RETENTION, DOWN: 0.0, ARCHIVE: 0.0}
