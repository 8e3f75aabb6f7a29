"""The node's messages read in the reader's language: zh-CN (what a user reads by default) and
English (what the rest of the suite reads). Each would fail were its translation missing."""

import pytest

from domain.errors import Refused
from domain.i18n import EN, ZH, speaking
from node import config as config_mod
from node.errors import ConfigError, Conflict, NotFound
from node.service import Node
from tests.factories import accident, enterprise, js


def test_a_configuration_error_in_both_languages(tmp_path):
    with pytest.raises(ConfigError) as caught:
        config_mod.load(tmp_path, environ={})
    e = caught.value
    assert e.message(EN) == (
        f"{tmp_path} is not a node directory (no node.toml); create one with "
        f"`anjian init {tmp_path} --tier county --region CODE`"
    )
    assert e.message(ZH) == (
        f"{tmp_path} 不是节点目录（没有 node.toml）；请用 "
        f"`anjian init {tmp_path} --tier county --region CODE` 创建"
    )
    with speaking(ZH):
        assert str(e) == e.message(ZH)


def test_an_environment_variable_is_blamed_in_both_languages(node_dir):
    with pytest.raises(ConfigError) as caught:
        config_mod.load(node_dir, environ={"ANJIAN_HTTP_PROT": "1", "ANJIAN_STORE_BAKEND": "x"})
    e = caught.value
    assert e.message(EN) == (
        "ANJIAN_HTTP_PROT: no setting of node.toml has this name (ANJIAN_<SECTION>_<KEY>); did "
        "you mean ANJIAN_HTTP_PORT?; ANJIAN_STORE_BAKEND: no setting of node.toml has this name "
        "(ANJIAN_<SECTION>_<KEY>); did you mean ANJIAN_STORE_BACKEND?"
    )
    assert e.message(ZH) == (
        "ANJIAN_HTTP_PROT：node.toml 中没有这一名称的设置（ANJIAN_<SECTION>_<KEY>）；是否应为 "
        "ANJIAN_HTTP_PORT？；ANJIAN_STORE_BAKEND：node.toml 中没有这一名称的设置"
        "（ANJIAN_<SECTION>_<KEY>）；是否应为 ANJIAN_STORE_BACKEND？"
    )
    with pytest.raises(ConfigError) as caught:
        config_mod.load(node_dir, environ={"ANJIAN_NODE_PARENT": "http://x"})
    assert caught.value.message(ZH) == (
        "ANJIAN_NODE_PARENT：上级节点应为 NATS 地址，如 nats://city-host:4222，实为 'http://x'"
    )


def test_not_found_in_both_languages(node):
    missing = "6f0c5d1e-0000-4000-8000-000000000000"
    with pytest.raises(NotFound) as caught:
        node.show(missing, "accident")
    assert caught.value.message(EN) == f"no accident with id {missing}"
    assert caught.value.message(ZH) == f"没有 id 为 {missing} 的事故记录"
    with pytest.raises(NotFound) as caught:
        node.show("x")
    assert caught.value.message(ZH) == "没有 id 为 'x' 的记录：id 应为 UUID"


def test_a_command_of_a_batch_is_named_in_both_languages(node):
    with pytest.raises(NotFound) as caught:
        node.execute_batch(js({"commands": [{"kind": "nope", "body": {}}]}), user="zhang")
    assert caught.value.code == "not_found"
    assert caught.value.message(EN).startswith("commands.0 (nope): no command kind 'nope'; known")
    assert caught.value.message(ZH).startswith(
        "commands.0（nope）：没有命令类型 'nope'；已知类型："
    )


def test_a_conflict_in_both_languages(node):
    a = node.execute("accident.report", js(accident()), user="zhang")
    node.execute(
        "accident.supplement", js({"expected_version": 1, "deaths": 1}), user="z", target=a["id"]
    )
    with pytest.raises(Conflict) as caught:
        node.execute(
            "accident.supplement",
            js({"expected_version": 1, "deaths": 2}),
            user="li",
            target=a["id"],
        )
    id_ = a["id"]
    assert caught.value.message(EN) == (
        f"accident {id_} is at version 2, not 1: it changed since you read it; reload and retry"
    )
    assert caught.value.message(ZH) == (
        f"事故记录 {id_} 当前为版本 2，不是 1：读取后已被更改；请重新加载后重试"
    )
    node.execute("enterprise.register", js(enterprise()), user="zhang")
    with pytest.raises(Conflict) as caught:
        node.execute("enterprise.register", js(enterprise()), user="zhang")
    assert "已存在（版本 1）" in caught.value.message(ZH)


def test_a_refusal_of_the_node_in_both_languages(node_dir, clock):
    first = Node(config_mod.load(node_dir, environ={}), clock=clock)
    a = first.execute("accident.report", js(accident()), user="zhang")
    first.close()
    other = Node(
        config_mod.load(node_dir, environ={"ANJIAN_NODE_ORIGIN": "elsewhere"}), clock=clock
    )
    try:
        with pytest.raises(Refused) as caught:
            other.execute(
                "accident.supplement",
                js({"expected_version": 1, "deaths": 1}),
                user="li",
                target=a["id"],
            )
    finally:
        other.close()
    assert caught.value.code == "refused"
    assert caught.value.message(EN) == (
        f"accident {a['id']} belongs to node 130102, which alone records on it (one writing "
        "origin per record); record your own record that refers to it"
    )
    assert caught.value.message(ZH) == (
        f"事故记录 {a['id']} 属于节点 130102，只有该节点可在其上记录"
        "（每条记录只有一个写入来源节点）；请记录一条引用它的本节点记录"
    )
