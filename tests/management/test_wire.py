"""Wire helpers: Kinde's cursor paging and RFC 3339 date-times, checked as properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from claimflow.errors import InvalidRequest
from claimflow.management.wire import cursor_page, expansions, iso

ids = st.lists(st.text("abcdef0123", min_size=1, max_size=6), unique=True, max_size=40)


@given(items=ids, size=st.integers(1, 15))
def test_paging_forward_visits_every_item_once_in_order(items: list[str], size: int) -> None:
    seen: list[str] = []
    page, has_more = cursor_page(
        items, str, page_size=size, starting_after=None, ending_before=None
    )
    seen += page
    while has_more:
        page, has_more = cursor_page(
            items, str, page_size=size, starting_after=seen[-1], ending_before=None
        )
        assert page
        seen += page
    assert seen == items


@given(items=ids, size=st.integers(1, 15), data=st.data())
def test_paging_backward_gives_the_items_just_before(
    items: list[str], size: int, data: st.DataObject
) -> None:
    if not items:
        return
    index = data.draw(st.integers(0, len(items) - 1))
    page, has_more = cursor_page(
        items, str, page_size=size, starting_after=None, ending_before=items[index]
    )
    assert page == items[max(0, index - size) : index]
    assert has_more == (index - size > 0)


def test_unknown_or_conflicting_cursors_are_refused() -> None:
    with pytest.raises(InvalidRequest):
        cursor_page(["a"], str, page_size=None, starting_after="z", ending_before=None)
    with pytest.raises(InvalidRequest):
        cursor_page(["a"], str, page_size=None, starting_after="a", ending_before="a")
    assert cursor_page(
        [str(i) for i in range(11)], str, page_size=None, starting_after=None, ending_before=None
    )[1]


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=11))]
        ),
    )
)
def test_datetimes_leave_in_utc_with_z(value: datetime) -> None:
    text = iso(value)
    assert text is not None and text.endswith("Z")
    assert datetime.fromisoformat(text) == value


def test_expand_refuses_unknown_values() -> None:
    assert expansions("billing, organizations", ("billing", "organizations")) == {
        "billing",
        "organizations",
    }
    assert expansions(None, ("billing",)) == frozenset()
    with pytest.raises(InvalidRequest):
        expansions("billing,secrets", ("billing",))
