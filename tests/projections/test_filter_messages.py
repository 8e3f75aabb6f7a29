"""A bad query filter reads in Chinese (the default) and in English, and names the parameter
both in its text and as ``parameter`` (for the edges: the CLI's ``--since``, the HTTP field)."""

import pickle

import pytest

from domain.i18n import EN, ZH, speaking
from projections.errors import BadFilter
from projections.queries import Filters, moment

NOW = 1_796_536_800_000


@pytest.mark.parametrize(
    ("params", "parameter", "zh", "en"),
    [
        (
            {"region": "abc"},
            "region",
            "参数 region 的值 'abc' 不是 6 位行政区划代码",
            "region 'abc' is not a 6-digit division code",
        ),
        (
            {"limit": "abc"},
            "limit",
            "参数 limit：'abc' 不是整数",
            "limit: 'abc' is not a whole number",
        ),
        (
            {"since": "yesterday"},
            "since",
            "参数 since：'yesterday' 不是 ISO 8601 格式的日期或时间",
            "since: 'yesterday' is not an ISO 8601 date or time",
        ),
        (
            {"level": "village"},
            "level",
            "参数 level 的值 'village' 不是 county（县级）、city（市级）或 province（省级）",
            "level 'village' is not county, city or province",
        ),
        (
            {"limit": "0"},
            "limit",
            "参数 limit 须为 1 至 100000，offset 不得为负数",
            "limit is 1 to 100000 and offset is not negative",
        ),
    ],
)
def test_a_bad_filter_reads_in_chinese_and_names_the_parameter(params, parameter, zh, en):
    with pytest.raises(BadFilter) as caught:
        Filters.parse(params, NOW)
    e = caught.value
    assert (e.message(ZH), e.message(EN)) == (zh, en)
    assert e.parameter == parameter and e.code == "bad_filter"
    with speaking(ZH):
        assert str(e) == zh and parameter in str(e)
    assert isinstance(e, ValueError)  # as before: code catching ValueError still does


def test_the_problem_without_the_parameter_for_an_edge_that_names_it_its_own_way():
    with pytest.raises(BadFilter) as caught:
        Filters.parse({"as_of": "soon"}, NOW)
    problem = caught.value.problem
    assert str(problem) == "'soon' is not an ISO 8601 date or time"
    with speaking(ZH):
        assert str(problem) == "'soon' 不是 ISO 8601 格式的日期或时间"
    with pytest.raises(BadFilter) as caught:
        moment("soon")
    assert caught.value.parameter is None


def test_a_bad_filter_survives_pickling_with_its_parameter():
    with pytest.raises(BadFilter) as caught:
        Filters.parse({"offset": "x"}, NOW)
    again = pickle.loads(pickle.dumps(caught.value))
    assert again.parameter == "offset" and again.message(ZH) == "参数 offset：'x' 不是整数"
