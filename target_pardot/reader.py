"""Reads Singer messages, counting lines so bad input is reported by its number.

Messages never appear in these errors: they hold customer data.
"""

from __future__ import annotations

import json

from singer_sdk.exceptions import RecordsWithoutSchemaException
from singer_sdk.io_base import SingerReader
from singer_sdk.singerlib.exceptions import InvalidInputLine
from singer_sdk.singerlib.json import deserialize_json

# Messages that belong to a stream and mean nothing before that stream's SCHEMA.
_NEEDS_SCHEMA = frozenset(("RECORD", "BATCH", "ACTIVATE_VERSION"))


class NumberedSingerReader(SingerReader):
    def __init__(self) -> None:
        super().__init__()
        self.line_number = 0
        self._streams_with_schema: set[str] = set()

    def deserialize_json(self, line: str) -> dict:  # type: ignore[override]
        self.line_number += 1
        try:
            message = deserialize_json(line)
        except json.JSONDecodeError as error:
            raise InvalidInputLine(
                f"input line {self.line_number} is not valid JSON ({error.msg} at column "
                f"{error.colno}); {self._nothing_after()}"
            ) from None
        if not isinstance(message, dict):
            raise InvalidInputLine(
                f"input line {self.line_number} is JSON but not a Singer message object"
            )
        self._check_schema_came_first(message)
        return message

    def assert_line_requires(self, line_dict: dict, requires: set[str]) -> None:  # type: ignore[override]
        # The SDK's own message quotes the whole line, customer data included.
        missing = sorted(requires - set(line_dict))
        if missing:
            raise InvalidInputLine(
                f"input line {self.line_number} is a Singer message without "
                f"{', '.join(repr(key) for key in missing)}; {self._nothing_after()}"
            )

    def _check_schema_came_first(self, message: dict) -> None:
        kind, stream = message.get("type"), message.get("stream")
        if kind == "SCHEMA" and isinstance(stream, str):
            self._streams_with_schema.add(stream)
        elif kind in _NEEDS_SCHEMA and stream not in self._streams_with_schema:
            # The SDK's exception type, so callers and its standard tests recognise it.
            raise RecordsWithoutSchemaException(
                f"input line {self.line_number} is a {kind} for stream {stream!r} before any "
                f"SCHEMA for that stream; {self._nothing_after()}. The tap must send a "
                "stream's SCHEMA before its records."
            )

    def _nothing_after(self) -> str:
        if self.line_number <= 1:
            return "nothing was applied"
        return f"nothing after line {self.line_number - 1} was applied"
