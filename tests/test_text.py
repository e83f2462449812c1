"""Text Pardot can store: lone surrogates (a byte that was not UTF-8, half a surrogate pair)
are refused naming the field, without quoting the value."""

from __future__ import annotations

import pytest

from target_pardot.errors import RecordError
from target_pardot.text import check_unicode


@pytest.mark.parametrize("text", ["plain", "Zoë Åsa", "Smile 😀", "日本語", ""])
def test_unicode_text_is_given_back_as_it_is(text: str) -> None:
    assert check_unicode("first_name", text) is text


def test_a_byte_that_was_not_utf8_is_refused_naming_the_field_and_the_byte() -> None:
    text = b"M\xfcller".decode("utf-8", "surrogateescape")  # as the reader reads it

    with pytest.raises(RecordError) as refused:
        check_unicode("last_name", text)

    assert refused.value.field == "last_name"
    assert refused.value.reason == (
        "character 2 is not text: a byte 0xfc that is not UTF-8 (or the JSON escape \\udcfc, "
        "half of a UTF-16 surrogate pair); Pardot stores only Unicode text"
    )
    assert "ller" not in refused.value.reason  # the value itself is customer data


def test_half_a_surrogate_pair_is_refused_as_the_escape_it_came_as() -> None:
    with pytest.raises(RecordError) as refused:
        check_unicode("company", "Smile \ud83d and more")

    assert refused.value.reason == (
        "character 7 is not text: the JSON escape \\ud83d, half of a UTF-16 surrogate pair "
        "without its other half; Pardot stores only Unicode text"
    )
