"""What replication tells a person, in zh-CN (the default) and in English: a refusal, a line of
the log an operator acts on, and an error a status document carries, each read in its reader's
language when it is read (the suite itself runs in English)."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from domain.i18n import speaking
from federation.errors import VerificationError
from federation.transport import TransportError
from federation.verify import Grant, Trust
from node import config as config_mod
from node.errors import ConfigError
from node.replication.admit import _check_area
from node.replication.natsauth import authorised, listen_address, summary
from node.replication.outbox import Outbox
from node.replication.uplink import Uplink, believable
from node.service import Node
from tests.factories import enterprise, js


def test_a_refused_envelope_says_why_in_chinese_and_in_english():
    env = SimpleNamespace(
        origin="130102", seq=7, type="enterprise.registered/1", payload={"division": "130203"}
    )
    with pytest.raises(VerificationError) as caught:
        _check_area(env, "130102")  # type: ignore[arg-type]
    assert caught.value.reason == "foreign_aggregate"  # the stable code: never translated
    with speaking("zh-CN"):
        zh = str(caught.value)
    with speaking("en"):
        en = str(caught.value)
    assert "130102:7 在行政区划 130203 记录 enterprise.registered/1，超出其认证辖区 130102" in zh
    assert (
        "130102:7 records enterprise.registered/1 in division 130203, outside the area 130102"
        " it is certified for"
    ) in en
    assert zh.startswith("foreign_aggregate") and en.startswith("foreign_aggregate")


def test_a_node_without_a_nats_server_is_told_so_in_either_language(node_dir):
    config = config_mod.load(node_dir, environ={})
    with pytest.raises(ConfigError) as caught:
        listen_address(config)
    assert caught.value.code == "config"
    assert "本节点不运行 NATS 服务器（未设置 [federation] nats）" in caught.value.message("zh-CN")
    assert "this node runs no NATS server ([federation] nats is not set)" in (
        caught.value.message("en")
    )


def test_who_is_left_out_of_the_servers_authorisation_reads_in_the_readers_language():
    revoked = Grant("130102", b"k", "k1", until_seq=5, nats="NCHILD", tier="county")
    trust = Trust([revoked], {"130102": "130102"})
    users, left = authorised("130100", "city", "130100", "NTIER", trust)
    with speaking("zh-CN"):
        zh = summary(users, left)["left_out"]
    with speaking("en"):
        en = summary(users, left)["left_out"]
    assert zh == [{"origin": "130102", "reason": "其全部密钥均已撤销"}]
    assert en == [{"origin": "130102", "reason": "every key of it is revoked"}]


def test_the_uplinks_last_error_is_kept_and_read_in_each_readers_language(node):
    async def call(fn: Any, *args: Any) -> Any:
        return fn(*args)

    class Silent:
        async def request(self, *args: Any, **kwargs: Any) -> bytes:
            raise TransportError("timeout")

    uplink = Uplink(node, "nats://parent:4222", call, call, transport=object())  # type: ignore[arg-type]
    assert asyncio.run(uplink.ask(Silent())) is None  # type: ignore[arg-type]
    with speaking("zh-CN"):
        assert uplink.last_error == "上级节点未应答：timeout"
        assert uplink.state({})["last_error"] == "上级节点未应答：timeout"
    with speaking("en"):
        assert uplink.last_error == "the parent node did not answer: timeout"


def test_an_envelope_too_large_for_the_stream_is_said_in_the_status_in_either_language(node):
    node.execute("enterprise.register", js(enterprise()), user="c")
    origin = node.config.node.origin
    outbox = Outbox(lambda kind, o: f"anjian.up.x.{kind}.{o}", max_bytes=10)
    assert outbox.next_batch(node.log, 10) == []
    with speaking("zh-CN"):
        assert f"超过流可接收的 10 字节：{origin} 的上行到此停止" in str(outbox.blocked[origin])
    with speaking("en"):
        assert f"more than the 10 the stream takes: {origin} stops here" in str(
            outbox.blocked[origin]
        )


def test_a_parent_claiming_more_than_was_sent_is_logged_in_the_operators_language(
    node: Node, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.ERROR, "anjian.federation"):
        assert believable(node.log, {"130199": (5, 0)}) == {"130199": (0, 0)}
    (record,) = [r for r in caplog.records if r.name == "anjian.federation"]
    with speaking("zh-CN"):
        assert record.getMessage() == (
            "上行：上级节点称已应用 130199 至序号 5，但本节点只持有 0 个；从 0 处继续"
        )
    with speaking("en"):
        assert record.getMessage() == (
            "uplink: the parent says it applied 130199 up to 5, but this node holds 0 of it;"
            " going on from 0"
        )
