"""The sink's view of a stream's schema: singer-sdk is not given date formats to parse."""

from __future__ import annotations

import copy

from target_pardot.sink import without_date_formats

SCHEMA = {
    "type": "object",
    "properties": {
        "email": {"type": "string", "format": "email"},
        "created_at": {"type": ["string", "null"], "format": "date-time"},
        "birthday": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
        "opens_at": {"type": "string", "format": "time"},
        "traits": {"type": "object", "properties": {"since": {"format": "date-time"}}},
    },
    "key_properties": ["id"],
}


def test_date_formats_are_left_out_of_top_level_properties_and_their_options() -> None:
    seen = without_date_formats(SCHEMA)
    assert seen["properties"]["created_at"] == {"type": ["string", "null"]}
    assert seen["properties"]["birthday"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert seen["properties"]["opens_at"] == {"type": "string"}


def test_everything_else_is_kept_as_the_tap_sent_it() -> None:
    before = copy.deepcopy(SCHEMA)
    seen = without_date_formats(SCHEMA)
    assert seen["properties"]["email"] == {"type": "string", "format": "email"}
    # The SDK parses top-level properties only: nested ones are not its concern.
    assert seen["properties"]["traits"] == SCHEMA["properties"]["traits"]
    assert seen["key_properties"] == ["id"]
    assert before == SCHEMA  # the tap's schema itself is not changed


def test_a_schema_without_properties_is_given_as_it_is() -> None:
    assert without_date_formats({"type": "object"}) == {"type": "object"}
    odd = {"type": "object", "properties": {"x": True}}
    assert without_date_formats(odd) == odd
