"""The message reader: bad input is named by its line number, never by its content."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
from singer_sdk.exceptions import RecordsWithoutSchemaException
from singer_sdk.singerlib.exceptions import InvalidInputLine

from target_pardot.reader import NumberedSingerReader

SCHEMA = {"type": "SCHEMA", "stream": "users", "schema": {"properties": {}}}


def read(*messages: dict) -> list[dict]:
    seen: list[dict] = []
    callbacks = {kind: seen.append for kind in ("SCHEMA", "RECORD", "STATE")}
    lines = "".join(json.dumps(message) + "\n" for message in messages)
    NumberedSingerReader().process_lines(io.StringIO(lines), callbacks)
    return seen


def test_a_record_before_its_streams_schema_is_named_by_line_and_stream() -> None:
    with pytest.raises(RecordsWithoutSchemaException) as error:
        read(
            SCHEMA,
            {"type": "RECORD", "stream": "users", "record": {}},
            {"type": "RECORD", "stream": "orders", "record": {"email": "x@example.com"}},
        )
    assert str(error.value).startswith(
        "input line 3 is a RECORD for stream 'orders' before any SCHEMA for that stream; "
        "nothing after line 2 was applied"
    )
    assert "x@example.com" not in str(error.value)


def test_records_after_their_schema_are_read() -> None:
    record = {"type": "RECORD", "stream": "users", "record": {"email": "a@example.com"}}
    assert read(SCHEMA, record) == [SCHEMA, record]


def test_numbers_are_read_as_the_sdk_reads_them() -> None:
    # Fractions as Decimal (no float rounding of a tap's 0.1), whole numbers as int.
    record = {"type": "RECORD", "stream": "users", "record": {"score": 0.1, "seats": 40}}
    [_, seen] = read(SCHEMA, record)
    assert seen["record"] == {"score": Decimal("0.1"), "seats": 40}
    assert type(seen["record"]["score"]) is Decimal
    assert type(seen["record"]["seats"]) is int


def test_a_message_without_a_required_key_is_named_by_line_without_its_content() -> None:
    with pytest.raises(InvalidInputLine) as error:
        read(SCHEMA, {"stream": "users", "record": {"email": "hidden@example.com"}})
    assert str(error.value) == (
        "input line 2 is a Singer message without 'type'; nothing after line 1 was applied"
    )


def test_stop_lets_the_message_being_processed_finish_and_reads_no_more() -> None:
    reader = NumberedSingerReader()
    seen: list[dict] = []

    def on_record(message: dict) -> None:
        seen.append(message)
        if len(seen) == 2:
            reader.stop()  # as a signal handler would, while this record is processed

    lines = [SCHEMA] + [{"type": "RECORD", "stream": "users", "record": {"n": n}} for n in range(5)]
    text = "".join(json.dumps(message) + "\n" for message in lines)
    counts = reader.process_lines(
        io.StringIO(text), {"SCHEMA": lambda message: None, "RECORD": on_record}
    )
    assert [message["record"]["n"] for message in seen] == [0, 1]
    assert counts["RECORD"] == 2
    assert reader.line_number == 3
    assert not reader.reading
