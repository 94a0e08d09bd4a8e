"""The body is checked for strings PostgreSQL cannot store or UTF-8 cannot carry, wherever they hide in the data."""

from datetime import UTC, datetime

import pytest

from events.envelope import render_body
from events.exceptions import InvalidPayload


def _body(data):
    return render_body(
        event_id="evt_1",
        event_type="message.received",
        occurred_at=datetime(2026, 12, 3, tzinfo=UTC),
        tenant_id="t",
        data=data,
    )


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"chat": {"tags": ["ok", {"a\x00b": 1}]}}, "NUL"),  # in a nested key
        ({"chat": {"tags": ["ok", "\ud800"]}}, "unpaired surrogates"),  # in a list
    ],
)
def test_an_unstorable_string_anywhere_in_the_data_is_refused(data, problem):
    with pytest.raises(InvalidPayload, match=problem):
        _body(data)


def test_text_that_only_spells_an_escape_is_kept():
    body = _body({"text": "\\u0000 and \\ud800 are escapes"})  # backslashes, not a NUL or a surrogate

    assert '"text":"\\\\u0000 and \\\\ud800 are escapes"' in body
