"""Text Pardot can store: Unicode, and nothing that only looks like it once decoded.

Two things decode into Python text that is not Unicode text, both as lone surrogates
(U+D800-U+DFFF): a byte of the input that is not UTF-8 (the reader keeps it as U+DC80-U+DCFF,
Python's "surrogateescape", so that one bad byte in one customer's name costs that record, not
the run), and a `\\ud83d`-style escape in the tap's JSON without its other half. Sent on, either
becomes an escape that Pardot's JSON parser refuses for the whole batch call (error 71, "bad
JSON"), or text that cannot be encoded for a form or a CSV at all. So the value is refused here,
naming its field.
"""

from __future__ import annotations

from target_pardot.errors import RecordError

_SURROGATES = range(0xD800, 0xE000)
# What the reader's "surrogateescape" makes of the bytes 0x80-0xFF that are not UTF-8.
_ESCAPED_BYTES = range(0xDC80, 0xDD00)


def check_unicode(path: str, text: str) -> str:
    """`text` when it is Unicode text (nearly always); otherwise RecordError naming `path`."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RecordError(path, not_unicode_reason(text)) from None
    return text


def not_unicode_reason(text: str) -> str:
    """Why `text` is not Unicode text, without quoting it (it is customer data)."""
    position, code = next(
        (index, ord(character))
        for index, character in enumerate(text)
        if ord(character) in _SURROGATES
    )
    if code in _ESCAPED_BYTES:
        # Both a byte the reader kept this way and the JSON escape of the same code point.
        return (
            f"character {position + 1} is not text: a byte 0x{code - 0xDC00:02x} that is not "
            f"UTF-8 (or the JSON escape \\u{code:04x}, half of a UTF-16 surrogate pair); "
            "Pardot stores only Unicode text"
        )
    return (
        f"character {position + 1} is not text: the JSON escape \\u{code:04x}, half of a "
        "UTF-16 surrogate pair without its other half; Pardot stores only Unicode text"
    )
