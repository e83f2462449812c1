"""Reads Singer messages, counting lines so a malformed one is reported by its number."""

from __future__ import annotations

import json

from singer_sdk.io_base import SingerReader
from singer_sdk.singerlib.exceptions import InvalidInputLine
from singer_sdk.singerlib.json import deserialize_json


class NumberedSingerReader(SingerReader):
    def __init__(self) -> None:
        super().__init__()
        self.line_number = 0

    def deserialize_json(self, line: str) -> dict:  # type: ignore[override]
        self.line_number += 1
        try:
            message = deserialize_json(line)
        except json.JSONDecodeError as error:
            # The line itself is not repeated: it is customer data.
            raise InvalidInputLine(
                f"input line {self.line_number} is not valid JSON ({error.msg} at column "
                f"{error.colno}); nothing after line {self.line_number - 1} was applied"
            ) from None
        if not isinstance(message, dict):
            raise InvalidInputLine(
                f"input line {self.line_number} is JSON but not a Singer message object"
            )
        return message
