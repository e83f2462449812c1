"""The message reader: bad input is named by its line number, never by its content."""

from __future__ import annotations

import gzip
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import IO

import pytest
from singer_sdk.exceptions import MissingKeyPropertiesError, RecordsWithoutSchemaException
from singer_sdk.singerlib.exceptions import InvalidInputLine

from target_pardot.reader import NumberedSingerReader

SCHEMA = {"type": "SCHEMA", "stream": "users", "schema": {"properties": {}}}


def process(
    reader: NumberedSingerReader, stdin: IO[str], callbacks: dict[str, Callable[[dict], None]]
) -> Counter[str]:
    """The input through `reader` as the target reads it: a broken line ends the input, and
    is raised once what came before it is handled (TargetPardot.process_endofpipe)."""
    counts = reader.process_lines(stdin, callbacks)
    if reader.input_error is not None:
        raise reader.input_error
    return counts


def feed(
    messages: Iterable[dict],
    callbacks: dict[str, Callable[[dict], None]],
    reader: NumberedSingerReader | None = None,
) -> Counter[str]:
    """The messages as input lines, through `reader` (a new one by default)."""
    text = "".join(json.dumps(message) + "\n" for message in messages)
    return process(reader or NumberedSingerReader(), io.StringIO(text), callbacks)


def read(*messages: dict) -> list[dict]:
    seen: list[dict] = []
    feed(messages, {kind: seen.append for kind in ("SCHEMA", "RECORD", "STATE")})
    return seen


def stopping_after(records: int, reader: NumberedSingerReader) -> tuple[list[dict], Callable]:
    """A RECORD callback that keeps what it is given and, on the `records`th, stops the reader
    as a signal handler would, while that record is processed."""
    seen: list[dict] = []

    def on_record(message: dict) -> None:
        seen.append(message)
        if len(seen) == records:
            reader.stop()

    return seen, on_record


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


@pytest.mark.parametrize("locale_encoding", ["utf-8", "latin-1", "ascii"])
def test_input_is_read_as_utf8_whatever_the_locale_and_a_bad_byte_costs_only_its_value(
    locale_encoding: str,
) -> None:
    # stdin as Python opens it: text in the locale's encoding, over the bytes. A strict UTF-8
    # decoder stopped the run with a traceback on one bad byte; another encoding misread
    # every accented name.
    data = (
        json.dumps(SCHEMA).encode()
        + b'\n{"type": "RECORD", "stream": "users", "record": {"name": "Zo\xc3\xab"}}'
        + b'\n{"type": "RECORD", "stream": "users", "record": {"name": "M\xfcller"}}\n'
    )
    stdin = io.TextIOWrapper(io.BytesIO(data), encoding=locale_encoding, errors="strict")
    seen: list[dict] = []

    process(NumberedSingerReader(), stdin, {"SCHEMA": seen.append, "RECORD": seen.append})

    # The bad byte is kept as Python's "surrogateescape" keeps it: its record is refused later,
    # naming the field (text.py), and the record after it is read.
    assert [message["record"]["name"] for message in seen[1:]] == ["Zoë", "M\udcfcller"]


def test_a_byte_order_mark_before_a_line_is_skipped_and_lines_keep_their_numbers() -> None:
    # Files saved by Windows tools start with one, and stay marked when put together.
    record = {"type": "RECORD", "stream": "users", "record": {"email": "a@example.com"}}
    text = "\ufeff" + json.dumps(SCHEMA) + "\n\ufeff" + json.dumps(record) + "\n{oops\n"
    seen: list[dict] = []
    reader = NumberedSingerReader()

    with pytest.raises(InvalidInputLine, match="input line 3 is not valid JSON"):
        process(reader, io.StringIO(text), {"SCHEMA": seen.append, "RECORD": seen.append})

    assert seen == [SCHEMA, record]


def test_blank_lines_are_skipped_and_still_counted() -> None:
    record = {"type": "RECORD", "stream": "users", "record": {"email": "a@example.com"}}
    text = json.dumps(SCHEMA) + "\n\n  \r\n" + json.dumps(record) + "\n\t\n{oops\n"
    seen: list[dict] = []

    with pytest.raises(InvalidInputLine, match="input line 6 is not valid JSON"):
        process(
            NumberedSingerReader(),
            io.StringIO(text),
            {"SCHEMA": seen.append, "RECORD": seen.append},
        )

    assert seen == [SCHEMA, record]


def test_a_message_without_a_required_key_is_named_by_line_without_its_content() -> None:
    with pytest.raises(InvalidInputLine) as error:
        read(SCHEMA, {"stream": "users", "record": {"email": "hidden@example.com"}})
    assert str(error.value) == (
        "input line 2 is a Singer message without 'type'; nothing after line 1 was applied"
    )


def test_stop_lets_the_message_being_processed_finish_and_reads_no_more() -> None:
    reader = NumberedSingerReader()
    seen, on_record = stopping_after(2, reader)
    lines = [SCHEMA] + [{"type": "RECORD", "stream": "users", "record": {"n": n}} for n in range(5)]
    counts = feed(lines, {"SCHEMA": lambda message: None, "RECORD": on_record}, reader)
    assert [message["record"]["n"] for message in seen] == [0, 1]
    assert counts["RECORD"] == 2
    assert reader.line_number == 3
    assert not reader.reading


def write_batch_file(path: Path, records: list[dict]) -> str:
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode()))
    return path.as_uri()


def batch_message(*urls: str) -> dict:
    return {
        "type": "BATCH",
        "stream": "users",
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "manifest": list(urls),
    }


def test_a_batch_message_is_handed_on_as_the_record_messages_it_stands_for(
    tmp_path: Path,
) -> None:
    # The SDK's own BATCH handling would give the sink whole files, past the per-record path
    # (and stream maps) that RECORD messages take.
    url = write_batch_file(tmp_path / "users-1.jsonl.gz", [{"n": 1, "score": 0.5}, {"n": 2}])
    before = {"type": "RECORD", "stream": "users", "record": {"n": 0}}
    after = {"type": "RECORD", "stream": "users", "record": {"n": 3}}
    assert read(SCHEMA, before, batch_message(url), after) == [
        SCHEMA,
        before,
        {"type": "RECORD", "stream": "users", "record": {"n": 1, "score": Decimal("0.5")}},
        {"type": "RECORD", "stream": "users", "record": {"n": 2}},
        after,
    ]


def test_a_batch_message_before_its_streams_schema_is_named_by_line() -> None:
    with pytest.raises(RecordsWithoutSchemaException, match="input line 1 is a BATCH"):
        read(batch_message("file:///nowhere.jsonl.gz"))


def test_a_batch_file_that_cannot_be_read_stops_reading_at_its_message(tmp_path: Path) -> None:
    seen: list[dict] = []
    callbacks = {kind: seen.append for kind in ("SCHEMA", "RECORD", "STATE")}
    messages = [
        SCHEMA,
        batch_message((tmp_path / "gone.jsonl.gz").as_uri()),
        {"type": "STATE", "value": {"after": "the batch"}},
    ]
    with pytest.raises(InvalidInputLine, match="input line 2 is a BATCH message"):
        feed(messages, callbacks)
    assert seen == [SCHEMA]


def test_stop_during_a_batch_message_ends_after_the_record_being_handed_on(
    tmp_path: Path,
) -> None:
    reader = NumberedSingerReader()
    seen, on_record = stopping_after(3, reader)
    url = write_batch_file(tmp_path / "users.jsonl.gz", [{"n": n} for n in range(10)])
    messages = [SCHEMA, batch_message(url), {"type": "STATE", "value": {"past": "the batch"}}]
    states: list[dict] = []
    counts = feed(
        messages,
        {"SCHEMA": lambda message: None, "RECORD": on_record, "STATE": states.append},
        reader,
    )
    assert [message["record"]["n"] for message in seen] == [0, 1, 2]
    assert states == []  # the STATE after the BATCH message was never read
    assert counts["BATCH"] == 1
    assert (reader.line_number, reader.batch_records_read) == (2, 3)


@pytest.mark.parametrize(
    ("record", "found"),
    [
        (None, "null"),
        ([{"email": "hidden@example.com"}], "an array"),
        ("text", "a string"),
        (42, "a number"),
        (True, "a boolean"),
    ],
)
def test_a_record_that_is_not_an_object_is_named_by_line_without_its_content(
    record: object, found: str
) -> None:
    # The SDK would drop a null record silently, and fail with a traceback on the others.
    with pytest.raises(InvalidInputLine) as error:
        read(SCHEMA, {"type": "RECORD", "stream": "users", "record": record})
    assert str(error.value) == (
        f"input line 2 is a RECORD for stream 'users' whose record is {found}, not a JSON "
        "object; nothing after line 1 was applied"
    )


def test_a_schema_that_is_not_an_object_is_named_by_line() -> None:
    # The SDK failed with a traceback (TypeError) on a null schema.
    with pytest.raises(InvalidInputLine) as error:
        read({"type": "SCHEMA", "stream": "users", "schema": None})
    assert str(error.value) == (
        "input line 1 is a SCHEMA for stream 'users' whose schema is null, not a JSON object; "
        "nothing was applied"
    )


@pytest.mark.parametrize("kind", ["FOO", None, ["RECORD"], "record"])
def test_a_message_of_an_unknown_type_is_named_by_line(kind: object) -> None:
    # The SDK failed with a traceback (ValueError); dropping it unread could lose records.
    with pytest.raises(InvalidInputLine) as error:
        read(SCHEMA, {"type": kind, "stream": "users", "record": {"email": "x@example.com"}})
    assert str(error.value) == (
        f"input line 2 is a Singer message of unknown type {kind!r} (known: BATCH, RECORD, "
        "SCHEMA, STATE); nothing after line 1 was applied"
    )


def test_the_message_types_of_a_target_are_all_known() -> None:
    # SCHEMA, RECORD, STATE, ACTIVATE_VERSION and BATCH, as the SDK's target hands them over.
    messages = (
        SCHEMA,
        {"type": "ACTIVATE_VERSION", "stream": "users", "version": 1},
        {"type": "STATE", "value": ["any JSON"]},
    )
    handled: list[str] = []
    callbacks = {
        kind: (lambda message: handled.append(message["type"]))
        for kind in ("SCHEMA", "RECORD", "STATE", "ACTIVATE_VERSION", "BATCH")
    }
    feed(messages, callbacks)
    assert handled == ["SCHEMA", "ACTIVATE_VERSION", "STATE"]


@pytest.mark.parametrize("stream", [None, ["users"], 7])
def test_a_record_whose_stream_is_not_a_name_is_named_by_line(stream: object) -> None:
    with pytest.raises(RecordsWithoutSchemaException, match="input line 2 is a RECORD for stream"):
        read(SCHEMA, {"type": "RECORD", "stream": stream, "record": {}})


def test_a_record_without_its_key_properties_is_named_by_line_and_stream() -> None:
    # The SDK raises MissingKeyPropertiesError from its record path (its standard target tests
    # expect that type); the reader names the line, and the run stops without a traceback.
    def sdk_record_path(message: dict) -> None:
        raise MissingKeyPropertiesError(
            "Record is missing one or more key_properties. \nKey Properties: ['id'], "
            "Record Keys: ['email']"
        )

    messages = (SCHEMA, {"type": "RECORD", "stream": "users", "record": {"email": "x"}})
    with pytest.raises(InvalidInputLine) as error:
        feed(messages, {"SCHEMA": lambda message: None, "RECORD": sdk_record_path})
    assert isinstance(error.value, MissingKeyPropertiesError)
    assert str(error.value) == (
        "input line 2 is a RECORD for stream 'users' with a record without its stream's key "
        "properties (Record is missing one or more key_properties. Key Properties: ['id'], "
        "Record Keys: ['email']); nothing after line 1 was applied"
    )


def test_an_error_that_did_not_come_from_a_stream_map_is_not_relabelled() -> None:
    # Only failures raised inside singer_sdk.mapper are reported as the stream map's.
    def failing_record_path(message: dict) -> None:
        raise KeyError("mail")

    messages = (SCHEMA, {"type": "RECORD", "stream": "users", "record": {}})
    with pytest.raises(KeyError):
        feed(messages, {"SCHEMA": lambda message: None, "RECORD": failing_record_path})


def test_a_broken_line_ends_the_input_there_and_is_kept_for_the_end() -> None:
    """What came before it is then handled as at the end of input (the SDK drains and relays
    STATE) before the run stops on it."""
    record = {"type": "RECORD", "stream": "users", "record": {"email": "a@example.com"}}
    after = {"type": "RECORD", "stream": "users", "record": {"email": "after@example.com"}}
    text = "".join(json.dumps(m) + "\n" for m in (SCHEMA, record)) + "{oops\n" + json.dumps(after)
    seen: list[dict] = []
    reader = NumberedSingerReader()

    reader.process_lines(io.StringIO(text), {"SCHEMA": seen.append, "RECORD": seen.append})

    assert seen == [SCHEMA, record]
    assert isinstance(reader.input_error, InvalidInputLine)
    assert "input line 3 is not valid JSON" in str(reader.input_error)
