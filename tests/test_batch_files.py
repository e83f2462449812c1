"""Reading the files of BATCH messages: every record in order, and failures that name the input
line and the file (never a record's content)."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from singer_sdk.helpers.capabilities import BATCH_CONFIG
from singer_sdk.singerlib.exceptions import InvalidInputLine

from target_pardot.batch_files import (
    BATCH_CONFIG_SETTING,
    BatchFileError,
    BatchStorage,
    batch_records,
    shown_url,
)

DECODER = json.JSONDecoder(parse_float=Decimal)


def write_jsonl(path: Path, lines: list[str], *, gzipped: bool = False) -> str:
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    path.write_bytes(gzip.compress(data) if gzipped else data)
    return path.as_uri()


def batch(manifest: list[Any], *, compression: str | None = "gzip", **extra: Any) -> dict:
    return {
        "type": "BATCH",
        "stream": "users",
        "encoding": {"format": "jsonl", "compression": compression},
        "manifest": manifest,
        **extra,
    }


def records_of(message: dict, *, line: int = 7, storage: BatchStorage | None = None) -> list:
    return list(
        batch_records(
            message, line_number=line, storage=storage or BatchStorage(), decode=DECODER.decode
        )
    )


def test_every_record_of_every_file_in_manifest_then_file_order(tmp_path: Path) -> None:
    first = write_jsonl(
        tmp_path / "a.jsonl.gz",
        [json.dumps({"email": "a1@example.com"}), json.dumps({"email": "a2@example.com"})],
        gzipped=True,
    )
    second = write_jsonl(
        tmp_path / "b.jsonl.gz", [json.dumps({"email": "b1@example.com"})], gzipped=True
    )
    assert [r["email"] for r in records_of(batch([first, second]))] == [
        "a1@example.com",
        "a2@example.com",
        "b1@example.com",
    ]


@pytest.mark.parametrize("compression", ["none", None])
def test_uncompressed_files_are_read_too(tmp_path: Path, compression: str | None) -> None:
    url = write_jsonl(tmp_path / "a.jsonl", [json.dumps({"email": "a@example.com"})])
    assert records_of(batch([url], compression=compression)) == [{"email": "a@example.com"}]


def test_numbers_are_read_as_in_record_messages_and_blank_lines_are_skipped(
    tmp_path: Path,
) -> None:
    url = write_jsonl(
        tmp_path / "a.jsonl.gz",
        ['{"email": "a@example.com", "score": 0.1, "seats": 40}', "", "   "],
        gzipped=True,
    )
    [record] = records_of(batch([url]))
    assert record == {"email": "a@example.com", "score": Decimal("0.1"), "seats": 40}
    assert type(record["score"]) is Decimal


def test_a_batch_config_storage_root_reads_each_file_by_its_name_under_it(
    tmp_path: Path,
) -> None:
    # As singer-sdk targets do: the tap wrote under a path this target sees under another.
    (tmp_path / "mounted").mkdir()
    write_jsonl(
        tmp_path / "mounted" / "users-1.jsonl.gz",
        [json.dumps({"email": "a@example.com"})],
        gzipped=True,
    )
    storage = BatchStorage.from_config({"storage": {"root": (tmp_path / "mounted").as_uri()}})
    message = batch(["file:///where/the/tap/wrote/users-1.jsonl.gz"])
    assert records_of(message, storage=storage) == [{"email": "a@example.com"}]


def test_without_batch_config_the_manifest_url_is_read_as_it_is() -> None:
    assert BatchStorage.from_config(None).url_of("file:///x/y.gz") == "file:///x/y.gz"
    assert BatchStorage.from_config({"encoding": {"format": "jsonl"}}).root is None


def test_a_missing_file_names_the_input_line_and_the_file(tmp_path: Path) -> None:
    missing = (tmp_path / "gone.jsonl.gz").as_uri()
    with pytest.raises(BatchFileError) as error:
        records_of(batch([missing]), line=12)
    message = str(error.value)
    assert message.startswith(
        f"input line 12 is a BATCH message for stream 'users' whose file {missing} cannot be "
        "read (FileNotFoundError"
    )
    assert message.endswith("nothing from it was applied")
    # Stops the run like any malformed input line (target.STOPPING_ERRORS).
    assert isinstance(error.value, InvalidInputLine)


def test_records_before_a_bad_line_are_read_and_the_error_names_its_line_not_its_content(
    tmp_path: Path,
) -> None:
    url = write_jsonl(
        tmp_path / "a.jsonl.gz",
        [json.dumps({"email": "ok@example.com"}), '{"email": "secret@example.com"'],
        gzipped=True,
    )
    read: list[dict] = []
    with pytest.raises(BatchFileError) as error:
        for record in batch_records(
            batch([url]), line_number=3, storage=BatchStorage(), decode=DECODER.decode
        ):
            read.append(record)
    assert read == [{"email": "ok@example.com"}]
    message = str(error.value)
    assert f"whose file {url} has a line 2 that is not valid JSON" in message
    assert message.endswith("nothing after its line 1 was applied")
    assert "secret@example.com" not in message


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('["not", "an", "object"]', "that is not a JSON object"),
        ('"text"', "that is not a JSON object"),
    ],
)
def test_a_line_that_is_not_a_record_object_is_named(
    tmp_path: Path, line: str, problem: str
) -> None:
    url = write_jsonl(tmp_path / "a.jsonl", [line])
    with pytest.raises(BatchFileError, match=problem):
        records_of(batch([url], compression="none"))


def test_a_byte_that_is_not_utf8_is_read_as_the_reader_reads_one(tmp_path: Path) -> None:
    # Kept as a lone surrogate, as on the target's input: its record is refused naming the
    # field (text.py), and the rest of the file is read.
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"email": "caf\xe9@example.com"}\n{"email": "b@example.com"}\n')
    assert records_of(batch([path.as_uri()], compression="none")) == [
        {"email": "caf\udce9@example.com"},
        {"email": "b@example.com"},
    ]


def test_a_byte_order_mark_at_the_start_of_a_file_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"email": "a@example.com"}\n{"email": "b@example.com"}\n')
    assert records_of(batch([path.as_uri()], compression="none")) == [
        {"email": "a@example.com"},
        {"email": "b@example.com"},
    ]


def test_a_file_that_is_not_gzip_as_its_message_says_is_named(tmp_path: Path) -> None:
    url = write_jsonl(tmp_path / "a.jsonl.gz", [json.dumps({"email": "a@example.com"})])
    with pytest.raises(BatchFileError) as error:
        records_of(batch([url], compression="gzip"))
    assert f"whose file {url} cannot be read (BadGzipFile" in str(error.value)


def test_a_truncated_gzip_file_is_named_after_the_records_it_held(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl.gz"
    lines = [json.dumps({"email": f"u{n}@example.com", "pad": "x" * 200}) for n in range(200)]
    data = gzip.compress("".join(line + "\n" for line in lines).encode())
    path.write_bytes(data[: len(data) // 2])
    read: list[dict] = []
    with pytest.raises(BatchFileError, match="cannot be read"):
        for record in batch_records(
            batch([path.as_uri()]), line_number=3, storage=BatchStorage(), decode=DECODER.decode
        ):
            read.append(record)
    assert 0 < len(read) < 200
    assert [r["email"] for r in read] == [f"u{n}@example.com" for n in range(len(read))]


@pytest.mark.parametrize(
    "encoding",
    [
        {"format": "parquet", "compression": "none"},
        {"format": "csv"},
        {"format": "jsonl", "compression": "bz2"},
        {"compression": "gzip"},
    ],
)
def test_an_encoding_target_pardot_cannot_read_says_what_to_set(encoding: dict) -> None:
    message = {**batch(["file:///x.gz"]), "encoding": encoding}
    with pytest.raises(BatchFileError) as error:
        records_of(message, line=5)
    assert str(error.value).startswith("input line 5 is a BATCH message for stream 'users' in")
    assert "format jsonl (compression gzip or none)" in str(error.value)
    assert "nothing after line 4 was applied" in str(error.value)


@pytest.mark.parametrize(
    "message",
    [
        {"type": "BATCH", "stream": "users", "manifest": ["file:///x.gz"]},
        {"type": "BATCH", "stream": "users", "encoding": {"format": "jsonl"}},
        {"type": "BATCH", "stream": "users", "encoding": "jsonl", "manifest": []},
        {"type": "BATCH", "stream": "users", "encoding": {"format": "jsonl"}, "manifest": "x"},
    ],
)
def test_a_batch_message_without_encoding_or_manifest_is_named(message: dict) -> None:
    with pytest.raises(BatchFileError, match="without an 'encoding' object and a 'manifest'"):
        records_of(message)


@pytest.mark.parametrize("entry", [None, "", 42])
def test_a_manifest_entry_that_is_not_a_url_is_named_by_its_position(
    tmp_path: Path, entry: Any
) -> None:
    first = write_jsonl(tmp_path / "a.jsonl.gz", [json.dumps({"email": "a@x.com"})], gzipped=True)
    # Checked before any file is read, so that nothing of the message was handed on.
    with pytest.raises(BatchFileError) as error:
        next(
            batch_records(
                batch([first, entry]), line_number=3, storage=BatchStorage(), decode=DECODER.decode
            )
        )
    assert str(error.value) == (
        "input line 3 is a BATCH message for stream 'users' whose manifest entry 2 is not a "
        "file URL; nothing after line 2 was applied"
    )


def test_an_unknown_storage_protocol_is_named() -> None:
    with pytest.raises(BatchFileError, match="cannot be read"):
        records_of(batch(["nosuchprotocol://bucket/users.jsonl.gz"]))


def test_urls_are_shown_without_credentials_or_query() -> None:
    assert (
        shown_url("s3://key:secret@bucket/users.jsonl.gz?X-Amz-Signature=abc")
        == "s3://bucket/users.jsonl.gz"
    )
    assert shown_url("https://user:pw@files.example.com:8443/a.gz?sig=1") == (
        "https://files.example.com:8443/a.gz"
    )
    assert shown_url("file:///tmp/a.gz") == "file:///tmp/a.gz"


def test_the_batch_config_setting_is_described_for_a_target_that_reads_the_files() -> None:
    # The SDK's descriptions are a tap's ("Root path to use when writing batch files").
    ours = json.dumps(BATCH_CONFIG_SETTING)
    assert "writing" not in ours and "read" in ours
    assert "writing" in json.dumps(BATCH_CONFIG)  # the SDK's own schema is left as it was
