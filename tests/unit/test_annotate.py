"""Moments in a recording and annotation text, as people type them."""

from __future__ import annotations

import pytest

from app.annotate import clean_text, parse_moment
from evidence.errors import InvalidInput


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("0", 0),
        ("83", 83_000),
        ("1:23", 83_000),
        (" 1:23.5 ", 83_500),
        ("1:02:03", 3_723_000),
        ("12.25", 12_250),
        ("100:00", 6_000_000),
    ],
)
def test_moments_parse_to_milliseconds(text: str, ms: int) -> None:
    assert parse_moment(text) == ms


@pytest.mark.parametrize("text", ["", "soon", "1:5", "1:60", "1:60:00", "-3", "1:23:45:67", "1e3"])
def test_impossible_moments_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_moment(text)


def test_text_is_collapsed_and_limited_and_hidden_characters_refused() -> None:
    assert clean_text("  a \n\t b  ", limit=10, what="x") == "a b"
    with pytest.raises(InvalidInput, match="limited to 3"):
        clean_text("abcd", limit=3, what="x")
    for hidden in ("a\u202eb", "a\u200bb", "a\x00b"):
        with pytest.raises(InvalidInput, match="cannot be shown"):
            clean_text(hidden, limit=10, what="x")
