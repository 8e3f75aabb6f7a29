"""What an audit tells a person, in zh-CN (the default) and in English: a refusal, and the
messages of a verification report (its failure ``reason`` codes stay as they are), also those
found by worker processes (the suite itself runs in English)."""

from __future__ import annotations

import sqlite3

import pytest

from domain.i18n import speaking
from federation.keys import build_trust
from federation.suite import load_public
from node import config as config_mod
from node.audit import verify as audit_mod
from node.audit.export import node_source, open_source
from node.audit.proofs import prove_consistency
from node.errors import ConfigError


def test_a_file_that_is_no_export_is_refused_in_either_language(tmp_path):
    with pytest.raises(ConfigError) as caught, open_source(tmp_path / "nothing.anjian"):
        pass
    assert caught.value.message("zh-CN").endswith("：没有此导出文件或节点目录")
    assert caught.value.message("en").endswith(": no such export file or node directory")


def test_a_proof_between_sizes_the_wrong_way_round_is_refused_in_either_language(county):
    config = config_mod.load(county, environ={})
    with node_source(config) as source, pytest.raises(ConfigError) as caught:
        prove_consistency(source, "130102", 5, 3)
    assert caught.value.message("zh-CN") == "旧大小 5 大于新大小 3"
    assert caught.value.message("en") == "the old size 5 is larger than the new size 3"


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_reports_failures_read_in_the_language_it_is_made_in(county, tmp_path, jobs, monkeypatch):
    monkeypatch.setattr(audit_mod, "CHUNK", 2)  # chunks 1-2, 3-4, 5: with 2 jobs, in workers
    config = config_mod.load(county, environ={})
    db = sqlite3.connect(config.sqlite_file)
    db.execute("DELETE FROM envelopes WHERE origin = '130102' AND seq = 4")
    db.commit()
    db.close()
    reports = {}
    for lang in ("zh-CN", "en"):
        with speaking(lang), node_source(config) as source:
            trust, _problems = build_trust(load_public(tmp_path / "root.pub"), source.documents)
            reports[lang] = audit_mod.verify(source, trust, jobs=jobs)
    (zh,) = reports["zh-CN"]["failures"]
    (en,) = reports["en"]["failures"]
    assert zh["reason"] == en["reason"] == "sequence_gap"  # the stable code
    assert (zh["seq"], zh["message"]) == (4, "缺少事件包 4")
    assert (en["seq"], en["message"]) == (4, "envelope 4 is missing")
