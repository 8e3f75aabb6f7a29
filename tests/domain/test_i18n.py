"""Which language a reader gets, and messages that never fail whoever reads them."""

import pytest

from domain.i18n import EN, ZH, Text, negotiate, parse_language, speaking


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        (None, ZH),
        ("", ZH),
        ("en", EN),
        ("en-US,en;q=0.9", EN),
        ("zh-CN,zh;q=0.9,en;q=0.8", ZH),
        ("fr, en;q=0.5", EN),
        ("en;q=0.2, zh;q=0.8", ZH),
        ("en;q=0", ZH),  # not acceptable at all
        ("en;q=nan", ZH),
        ("*", ZH),
        ("de", ZH),
        ("en;q=x,,;;", ZH),
    ],
)
def test_accept_language_picks_ours_and_defaults_to_chinese(header, lang):
    assert negotiate(header) == lang


@pytest.mark.parametrize(
    ("tag", "lang"),
    [("zh_CN.UTF-8", ZH), ("zh-Hans", ZH), ("EN_us", EN), ("C", None), ("fr_FR", None), ("", None)],
)
def test_locale_names(tag, lang):
    assert parse_language(tag) == lang


def test_a_message_reads_in_the_readers_language_and_never_fails():
    text = Text("the request has invalid fields", {})
    with speaking(ZH):
        assert str(text) == "请求中有字段无效"
    assert text.render(EN) == "the request has invalid fields"
    assert Text("x {n}", {}).render(EN) == "x {n}"  # a value missing: the text as written
    # a template never reaches into a value, and a value's braces are only text
    assert Text("x {n.__class__}", {"n": 5}).render(EN) == "x {n.__class__}"
    assert Text("x {n!r}", {"n": "{y}"}).render(EN) == "x '{y}'"
