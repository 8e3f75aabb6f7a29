"""One parser of query filters for the command line and the HTTP API: text in, Filters out, and
an error that names the parameter."""

from datetime import datetime

import pytest

from domain.base import CHINA, to_ms
from projections.queries import Filters

NOW = 1_796_536_800_000


def test_text_becomes_filters_with_defaults():
    f = Filters.parse(
        {"region": "130100", "since": "2026-06-01", "until": "1790000000000", "limit": "50"}, NOW
    )
    assert f.region == "130100" and f.limit == 50 and f.offset == 0
    assert f.since == to_ms(datetime(2026, 6, 1, tzinfo=CHINA))  # a bare date is China time
    assert f.until == 1_790_000_000_000 and f.as_of == NOW and f.level == "county"


def test_empty_values_are_absent():
    assert Filters.parse({"region": "", "since": "", "grade": None}, NOW) == Filters(as_of=NOW)


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"since": "yesterday"}, "since: 'yesterday' is not an ISO 8601"),
        ({"as_of": "soon"}, "as_of: 'soon'"),
        ({"limit": "ten"}, "limit: 'ten' is not a whole number"),
        ({"offset": "1.5"}, "offset: '1.5'"),
        ({"region": "13"}, "region '13' is not a 6-digit division code"),
        ({"level": "village"}, "level 'village'"),
    ],
)
def test_bad_text_names_the_parameter(params, named):
    with pytest.raises(ValueError, match=named.replace("(", r"\(").replace(".", r"\.")):
        Filters.parse(params, NOW)
