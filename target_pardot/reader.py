"""Reads Singer messages, counting lines so bad input is reported by its number.

Messages never appear in these errors: they hold customer data. Reading can be stopped between
two messages (`stop`, from a signal handler), so a run told to end applies exactly what it read.
A dry run passes no STATE on (`pass_state`): it applied nothing, so the tap's bookmarks must not
move past what the real run after it is to read. A BATCH message is handed on as the RECORD
messages it stands for, one record of its files at a time (batch_files.py).
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import IO

from singer_sdk.exceptions import (
    MappingError,
    MissingKeyPropertiesError,
    RecordsWithoutSchemaException,
)
from singer_sdk.io_base import SingerReader
from singer_sdk.singerlib.exceptions import InvalidInputLine
from singer_sdk.singerlib.json import deserialize_json

from target_pardot.batch_files import BatchStorage, batch_records

# What the SDK's deserialize_json does (numbers with a fraction as Decimal), with one decoder
# for the run: json.loads builds a new decoder for every line when given parse_float.
_DECODER = json.JSONDecoder(parse_float=Decimal)

# Stands in for a RECORD's missing record, which assert_line_requires names.
_NO_RECORD: dict = {}
# How such a part that is not an object is named (anything else is a number).
_JSON_TYPE_NAMES = {type(None): "null", list: "an array", str: "a string", bool: "a boolean"}

# Messages that belong to a stream and mean nothing before that stream's SCHEMA.
_NEEDS_SCHEMA = frozenset(("RECORD", "BATCH", "ACTIVATE_VERSION"))


def _ignore(message: dict) -> None:
    """A message read and deliberately not acted on."""


class RecordWithoutKeyProperties(MissingKeyPropertiesError, InvalidInputLine):
    """A record missing a key property of its stream: the SDK's error (its standard target
    tests expect that type), named by input line and stream, which stops the run cleanly."""


class StreamMapFailed(InvalidInputLine):
    """A stream map expression that failed on a record: it stops the run, naming the line."""


# Errors of map expressions whose message names no value of the record.
_SAFE_TO_QUOTE = (KeyError, AttributeError, TypeError, IndexError, ZeroDivisionError, MappingError)


def _raised_by_a_stream_map(error: BaseException) -> bool:
    """Whether the error came out of singer-sdk's stream map code."""
    trace = error.__traceback__
    while trace is not None:
        if trace.tb_frame.f_globals.get("__name__") == "singer_sdk.mapper":
            return True
        trace = trace.tb_next
    return False


def _described(error: BaseException) -> str:
    # Other messages (int('abc')'s ValueError...) may quote the record's values.
    if isinstance(error, _SAFE_TO_QUOTE):
        return f"{type(error).__name__}: {error}"
    return type(error).__name__


def _utf8_lines(source: IO[str]) -> IO[str]:
    """`source` read as UTF-8, whatever the locale, with a byte that is not UTF-8 kept as a
    lone surrogate (Python's "surrogateescape") rather than failing the whole run.

    Singer messages are JSON, which is UTF-8: a locale's other encoding would misread every
    name with an accent, and a strict decoder would stop the run with a traceback (and no line
    number) on one bad byte in one customer's name. Kept this way, such a value is refused
    with its record, naming the field (text.py), and the run goes on.
    """
    binary = getattr(source, "buffer", None)
    if binary is None:  # text that is already decoded (a StringIO in tests)
        return source
    # Lines end at "\n" only, as Python reads stdin: a "\r" before it is JSON whitespace.
    return io.TextIOWrapper(binary, encoding="utf-8", errors="surrogateescape", newline="\n")


class _StopReading(Exception):
    """Ends a read that is waiting for input; raised only from `stop`."""


class NumberedSingerReader(SingerReader):
    def __init__(self) -> None:
        super().__init__()
        self.line_number = 0
        self.reading = False
        self._streams_with_schema: set[str] = set()
        self._stop_requested = False
        self._waiting_for_input = False
        self.pass_state = True
        self.batch_storage = BatchStorage()
        self._message: dict = {}  # the message being processed
        # The message types there is a handler for (process_lines' callbacks).
        self._message_types: frozenset[str] = frozenset(
            ("SCHEMA", "RECORD", "STATE", "ACTIVATE_VERSION", "BATCH")
        )
        # Of a BATCH message read only in part (a stop signal came while its files were being
        # read, so it is the last line read): the records of it handed on.
        self.batch_records_read: int | None = None
        # The broken line that ended the input, raised once what came before it is applied.
        self.input_error: Exception | None = None

    def process_lines(
        self, file_input: IO[str] | None, callbacks: dict[str, Callable[[dict], None]]
    ) -> Counter[str]:
        self.reading = True
        if not self.pass_state:
            callbacks = {**callbacks, "STATE": _ignore}
        record_callback = callbacks["RECORD"]
        callbacks = {
            **callbacks,
            "BATCH": lambda message: self._hand_on_batch_records(message, record_callback),
        }
        self._message_types = frozenset(callbacks)
        try:
            return self._process_lines(file_input, callbacks)
        except (InvalidInputLine, RecordsWithoutSchemaException) as error:
            # A broken line ends the input there: what was read before it is applied as at
            # the end of input (the SDK drains every sink and relays STATE), and then the run
            # stops on it (TargetPardot.process_endofpipe raises it).
            self.input_error = error
            return Counter()
        finally:
            self.reading = False

    def _process_lines(
        self, file_input: IO[str] | None, callbacks: dict[str, Callable[[dict], None]]
    ) -> Counter[str]:
        try:
            lines = self._until_stopped(_utf8_lines(file_input or self.default_input))
            return super().process_lines(lines, callbacks)  # type: ignore[arg-type]
        except MissingKeyPropertiesError as error:
            raise RecordWithoutKeyProperties(
                f"input line {self.line_number} is a {self._message.get('type')} for stream "
                f"{self._message.get('stream')!r} with a record without its stream's key "
                f"properties ({' '.join(str(error).split())}); {self._nothing_after()}"
            ) from None
        except Exception as error:
            if not _raised_by_a_stream_map(error):
                raise
            # The SDK lets an expression's own error (KeyError for record['x'] on a record
            # without x...) through as it is: a bare "ERROR | x" and a traceback.
            raise StreamMapFailed(
                f"input line {self.line_number}: the stream map of stream "
                f"{self._message.get('stream')!r} failed on this record ({_described(error)}); "
                f"{self._nothing_after()}. Write map expressions for every record they may "
                "see, e.g. record.get('x') where a property can be missing"
            ) from None

    def stop(self) -> None:
        """Read no further message. Meant for a signal handler, which runs between bytecodes.

        While the reader waits for input, nothing is half done, so the wait is ended at once
        (by raising from the handler into that wait). Otherwise the message being processed
        is finished and the next one is not read; of a BATCH message, the record being handed
        on is the last.
        """
        if self._stop_requested:
            return
        self._stop_requested = True
        if self._waiting_for_input:
            raise _StopReading

    def _hand_on_batch_records(
        self, message: dict, record_callback: Callable[[dict], None]
    ) -> None:
        # The SDK's own BATCH handling gives a sink whole files (see batch_files.py).
        stream = message["stream"]
        records = batch_records(
            message,
            line_number=self.line_number,
            storage=self.batch_storage,
            decode=_DECODER.decode,
        )
        for handed_on, record in enumerate(records, start=1):
            record_callback({"type": "RECORD", "stream": stream, "record": record})
            if self._stop_requested:
                # Told to stop: what was read is applied, and STATE stays before this BATCH
                # message, so the next run sends it again, whole.
                records.close()
                self.batch_records_read = handed_on
                return

    def _until_stopped(self, lines: Iterable[str]) -> Iterator[str]:
        iterator = iter(lines)
        try:
            while not self._stop_requested:
                self._waiting_for_input = True
                line = next(iterator, None)
                self._waiting_for_input = False
                if line is None:
                    return
                if line.isspace():
                    # No message (an editor's or a concatenation's empty line): skipped, as
                    # nothing is lost, where the SDK would stop at it as "not JSON".
                    self.line_number += 1
                    continue
                yield line
        except _StopReading:
            return
        finally:
            self._waiting_for_input = False

    def deserialize_json(self, line: str) -> dict:  # type: ignore[override]
        self.line_number += 1
        try:
            message = _DECODER.decode(line) if type(line) is str else deserialize_json(line)
        except json.JSONDecodeError as error:
            if line[:1] == "\ufeff":
                # A byte order mark, which JSON readers may ignore (RFC 8259): a file saved
                # by a Windows editor, or several such files put together.
                return self._deserialized_after_bom(line)
            raise InvalidInputLine(
                f"input line {self.line_number} is not valid JSON ({error.msg} at column "
                f"{error.colno}); {self._nothing_after()}"
            ) from None
        if not isinstance(message, dict):
            raise InvalidInputLine(
                f"input line {self.line_number} is JSON but not a Singer message object"
            )
        self._check_message(message)
        self._message = message
        return message

    def _deserialized_after_bom(self, line: str) -> dict:
        self.line_number -= 1  # the line is counted again
        return self.deserialize_json(line[1:])

    def assert_line_requires(self, line_dict: dict, requires: set[str]) -> None:  # type: ignore[override]
        # Asked twice for every message: the check that nearly always passes comes first.
        for key in requires:
            if key not in line_dict:
                break
        else:
            return
        # The SDK's own message quotes the whole line, customer data included.
        missing = sorted(requires - set(line_dict))
        if missing:
            raise InvalidInputLine(
                f"input line {self.line_number} is a Singer message without "
                f"{', '.join(repr(key) for key in missing)}; {self._nothing_after()}"
            )

    def _check_message(self, message: dict) -> None:
        """What the SDK would fail on with a traceback, or let pass unnoticed, named by line."""
        kind, stream = message.get("type"), message.get("stream")
        if kind == "RECORD":  # nearly every message: its checks first, and nothing else
            if type(stream) is not str or stream not in self._streams_with_schema:
                self._no_schema_yet(kind, stream)
            if type(message.get("record", _NO_RECORD)) is not dict:
                # The SDK drops a null record without a word (as if a stream map had filtered
                # it out) and fails with a traceback on a list or a number.
                self._not_an_object(kind, stream, "record", message["record"])
            return
        if not isinstance(kind, str) or kind not in self._message_types:
            if "type" not in message:
                return  # assert_line_requires names it
            # The SDK fails with a traceback on a type it has no handler for.
            known = ", ".join(sorted(str(getattr(t, "value", t)) for t in self._message_types))
            raise InvalidInputLine(
                f"input line {self.line_number} is a Singer message of unknown type {kind!r} "
                f"(known: {known}); {self._nothing_after()}"
            )
        if kind == "SCHEMA":
            if "schema" in message and type(message["schema"]) is not dict:
                self._not_an_object(kind, stream, "schema", message["schema"])
            if isinstance(stream, str):
                self._streams_with_schema.add(stream)
        elif kind in _NEEDS_SCHEMA and (
            type(stream) is not str or stream not in self._streams_with_schema
        ):
            self._no_schema_yet(kind, stream)

    def _no_schema_yet(self, kind: str, stream: object) -> None:
        # The SDK's exception type, so callers and its standard tests recognise it.
        raise RecordsWithoutSchemaException(
            f"input line {self.line_number} is a {kind} for stream {stream!r} before any "
            f"SCHEMA for that stream; {self._nothing_after()}. The tap must send a "
            "stream's SCHEMA before its records."
        )

    def _not_an_object(self, kind: str, stream: object, part: str, value: object) -> None:
        found = _JSON_TYPE_NAMES.get(type(value), "a number")
        raise InvalidInputLine(
            f"input line {self.line_number} is a {kind} for stream {stream!r} whose {part} is "
            f"{found}, not a JSON object; {self._nothing_after()}"
        )

    def _nothing_after(self) -> str:
        if self.line_number <= 1:
            return "nothing was applied"
        return f"nothing after line {self.line_number - 1} was applied"
