"""The records of Singer BATCH messages, read from the files each message lists.

A singer-sdk tap with `batch_config` sends a stream's records as files (JSON Lines, gzipped or
not) and one BATCH message listing them, instead of a RECORD message per record:

    {"type": "BATCH", "stream": "users", "encoding": {"format": "jsonl", "compression": "gzip"},
     "manifest": ["file:///tmp/users-0001.jsonl.gz", ...]}

The SDK's own handling hands each whole file to the sink's `process_batch`, past the path on
which this target prepares each record as it arrives (and past stream maps). The reader
(reader.py) instead turns each BATCH message back into the RECORD messages it stands for,
one record at a time, from the records read here: batching, matching, rejects, metrics and
STATE are then exactly what they are for RECORD messages, and memory does not grow with the
size of a file.

Failures name the input line of the BATCH message and the file (and its line), never a
record's content, and stop the run like a malformed input line: STATE is not relayed past
that BATCH message, so the next run sends it again.
"""

from __future__ import annotations

import codecs
import copy
import zlib
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import fsspec
from singer_sdk.helpers.capabilities import BATCH_CONFIG
from singer_sdk.singerlib.exceptions import InvalidInputLine

FORMATS = ("jsonl",)
COMPRESSIONS = ("gzip", "none", None)

# The SDK's batch_config setting, described for a target: only its storage is used here.
BATCH_CONFIG_SETTING: dict[str, Any] = copy.deepcopy(BATCH_CONFIG["properties"]["batch_config"])
BATCH_CONFIG_SETTING["description"] = (
    "Where to read the files of BATCH messages (sent by taps with batch_config) from. Without "
    "it, each file is read from the URL its BATCH message gives; with storage.root set, each "
    "file is read by its name under that root, as singer-sdk targets do (for example when the "
    "tap wrote to a path this target sees under another name). The files' encoding comes from "
    "each BATCH message: JSON Lines, gzipped or not."
)
# The SDK describes the parts for a tap, which writes the files.
_PARTS = BATCH_CONFIG_SETTING["properties"]
_PARTS["encoding"]["description"] = "Not used: each BATCH message gives its files' encoding."
_PARTS["storage"]["description"] = (
    "Where the files of BATCH messages are read, instead of the URLs the messages give."
)
_PARTS["storage"]["properties"]["root"]["description"] = (
    "URL of the directory holding the tap's batch files (file:///mnt/batches, s3://bucket/dir): "
    "each file of a BATCH message is read by its name under it."
)
_PARTS["storage"]["properties"]["prefix"]["description"] = (
    "Not used: a tap names its files with it, and BATCH messages give their names."
)


class BatchFileError(InvalidInputLine):
    """A BATCH message, or one of its files, that cannot be read: it stops the run."""


@dataclass(frozen=True)
class BatchStorage:
    """Where the files of BATCH messages are read: the target's batch_config storage."""

    root: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, batch_config: Mapping[str, Any] | None) -> BatchStorage:
        storage = (batch_config or {}).get("storage") or {}
        root = storage.get("root")
        return cls(root=str(root) if root else None, params=dict(storage.get("params") or {}))

    def url_of(self, manifest_url: str) -> str:
        if self.root is None:
            return manifest_url
        name = manifest_url.rstrip("/").rsplit("/", 1)[-1]
        return f"{self.root.rstrip('/')}/{name}"


def batch_records(
    message: Mapping[str, Any],
    *,
    line_number: int,
    storage: BatchStorage,
    decode: Callable[[str], Any],
) -> Generator[dict[str, Any], None, None]:
    """Each record of each file of a BATCH message, in manifest order and file order."""
    where = f"input line {line_number} is a BATCH message for stream {message.get('stream')!r}"
    # Failures of the message itself are found before any of its records is handed on.
    nothing_after = f"nothing after line {line_number - 1} was applied"
    encoding = message.get("encoding")
    manifest = message.get("manifest")
    if not isinstance(encoding, Mapping) or not isinstance(manifest, list):
        raise BatchFileError(
            f"{where} without an 'encoding' object and a 'manifest' list of file URLs; "
            f"{nothing_after}"
        )
    file_format = encoding.get("format")
    compression = encoding.get("compression")
    if file_format not in FORMATS or compression not in COMPRESSIONS:
        raise BatchFileError(
            f"{where} in format {file_format!r} with compression {compression!r}, which "
            "target-pardot does not read (it reads JSON Lines files, gzipped or not); "
            f"{nothing_after}. Set the tap's batch_config encoding to format jsonl "
            "(compression gzip or none)"
        )
    for position, url in enumerate(manifest, start=1):
        if not isinstance(url, str) or not url:
            raise BatchFileError(
                f"{where} whose manifest entry {position} is not a file URL; {nothing_after}"
            )
    for url in manifest:
        yield from _records_of_file(
            storage.url_of(url),
            storage.params,
            gzipped=compression == "gzip",
            where=where,
            decode=decode,
        )


def _records_of_file(
    url: str,
    options: Mapping[str, Any],
    *,
    gzipped: bool,
    where: str,
    decode: Callable[[str], Any],
) -> Iterator[dict[str, Any]]:
    shown = shown_url(url)
    file_line = 0
    try:
        opened = fsspec.open(url, mode="rb", compression="gzip" if gzipped else None, **options)
        with opened as handle:
            for raw in handle:
                file_line += 1
                if not raw.strip():
                    continue
                yield _record_of_line(
                    raw, where=where, shown=shown, file_line=file_line, decode=decode
                )
    except (OSError, ValueError, ImportError, EOFError, zlib.error) as error:
        done = (
            f"nothing after its line {file_line - 1} was applied"
            if file_line > 1
            else "nothing from it was applied"
        )
        raise BatchFileError(
            f"{where} whose file {shown} cannot be read ({type(error).__name__}: {error}); {done}"
        ) from None


def _record_of_line(
    raw: bytes, *, where: str, shown: str, file_line: int, decode: Callable[[str], Any]
) -> dict[str, Any]:
    nothing_after = f"nothing after its line {file_line - 1} was applied"
    try:
        # As the reader reads its input (reader._utf8_lines): a byte that is not UTF-8 costs
        # its record, refused naming the field, not the run.
        if file_line == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]  # a byte order mark, which JSON readers may skip
        record = decode(raw.decode("utf-8", "surrogateescape"))
    except ValueError as error:  # json.JSONDecodeError
        column = getattr(error, "colno", None)
        at = f" at column {column}" if column else ""
        reason = getattr(error, "msg", "invalid JSON")
        raise BatchFileError(
            f"{where} whose file {shown} has a line {file_line} that is not valid JSON "
            f"({reason}{at}); {nothing_after}"
        ) from None
    if not isinstance(record, dict):
        raise BatchFileError(
            f"{where} whose file {shown} has a line {file_line} that is not a JSON object "
            f"(a batch file holds one record per line); {nothing_after}"
        )
    return record


def shown_url(url: str) -> str:
    """The URL without credentials or query, which may carry them (signed links)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
