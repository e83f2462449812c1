"""Bad input end to end: every case is rejected with a reason naming the stream and the field,
or stops the run with a clear message; nothing is silently dropped, no secret is shown."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
import requests

from pardot_emulator import PardotEmulator
from tests.conftest import run_target, singer_messages, target_config

GOOD = {"email": "good@example.com", "first_name": "Good"}


@pytest.fixture
def v4(make_emulator: Any) -> PardotEmulator:
    emulator: PardotEmulator = make_emulator(ampsea=True)
    emulator.add_custom_field("seats", type="Number")
    return emulator


@pytest.mark.parametrize(
    ("record", "field", "reason"),
    [
        ({"first_name": "No email"}, "email", "email"),
        ({"email": "not-an-email"}, "email", "@"),
        ({"email": "x" * 250 + "@example.com"}, "email", "255"),
        ({"email": "a@example.com", "city": "x" * 300}, "city", "255"),
        ({"email": "a@example.com", "first_name": {"nested": 1}}, "first_name", "single value"),
        ({"email": "a@example.com", "company": ["a", "b"]}, "company", "single value"),
        ({"email": "a@example.com", "seats": "many"}, "seats", "number"),
        ({}, "email", "email"),
        ({"favourite_colour": "blue"}, "email", "email"),
        ({"type": "track", "userId": "u1", "event": "Clicked"}, "type", "identify"),
    ],
    ids=[
        "missing-email",
        "invalid-email",
        "email-over-255",
        "value-over-255",
        "object-for-scalar",
        "list-for-scalar",
        "non-numeric-number-field",
        "empty-record",
        "only-unknown-fields",
        "not-an-identify",
    ],
)
def test_record_that_can_never_succeed_is_rejected_naming_stream_and_field(
    v4: PardotEmulator, tmp_path: Path, record: dict[str, Any], field: str, reason: str
) -> None:
    result = run_target(
        target_config(v4, tmp_path), singer_messages("crm_users", [record, GOOD]), tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [reject] = result.rejects
    assert reject["stream"] == "crm_users"
    assert reject["field"] == field
    assert reason.lower() in reject["reason"].lower()
    assert reject["record"] == record
    assert [p["email"] for p in v4.prospects()] == ["good@example.com"]
    assert "1 rejected" in result.summary


def test_reject_file_is_owner_only(v4: PardotEmulator, tmp_path: Path) -> None:
    result = run_target(target_config(v4, tmp_path), singer_messages("s", [{}]), tmp_path)
    assert result.returncode == 0
    assert stat.S_IMODE(result.reject_file.stat().st_mode) == 0o600


def test_a_broken_mapping_stops_the_run_at_max_reject_ratio(
    v4: PardotEmulator, tmp_path: Path
) -> None:
    records = [{"mail": f"p{n}@example.com"} for n in range(40)]
    result = run_target(
        target_config(v4, tmp_path, max_reject_ratio=0.2),
        singer_messages("users", records, state={"done": True}),
        tmp_path,
    )
    assert result.returncode != 0
    assert "max_reject_ratio" in result.stderr
    assert result.states == []


def test_a_broken_mapping_stops_within_the_first_batch_before_any_write_of_it(
    v4: PardotEmulator, tmp_path: Path
) -> None:
    # Three records in four have no email under any name the target knows: with the default
    # batch of 500, all 40 records are one batch, whose 10 good records must not be written.
    records = [
        {"email": f"p{n}@example.com"} if n % 4 == 0 else {"mail": f"p{n}@example.com"}
        for n in range(40)
    ]
    result = run_target(
        target_config(v4, tmp_path, max_reject_ratio=0.5),
        singer_messages("users", records, state={"done": True}),
        tmp_path,
    )
    assert result.returncode == 1
    assert "max_reject_ratio" in result.stderr
    stats = requests.get(f"{v4.url}/_emulator/stats", timeout=10).json()
    calls = set(stats["call_counts"]) - {"oauth.token"}
    assert calls == {"v4.customField.query"}, stats  # no write of the batch, not even a read
    assert v4.prospects() == []
    assert result.states == []


def test_odd_schemas_from_unknown_streams_are_accepted(v4: PardotEmulator, tmp_path: Path) -> None:
    schema = {
        "type": "object",
        "properties": {
            "email": {"type": ["integer"]},  # wrong on purpose: the record's value is text
            "signed_up": {"type": "string", "format": "date-time"},
            "profile": {"type": "object"},
        },
    }
    record = {
        "email": "odd@example.com",
        "signed_up": "2024-05-01T10:00:00+00:00",
        "profile": {"x": 1},
    }
    result = run_target(
        target_config(v4, tmp_path),
        singer_messages("weird-stream.v2", [record], schema=schema),
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert [p["email"] for p in v4.prospects()] == ["odd@example.com"]
    assert "signed_up" in result.stderr and "profile" in result.stderr  # reported, not sent


def test_record_before_schema_fails_clearly_and_applies_only_what_came_before(
    v4: PardotEmulator, tmp_path: Path
) -> None:
    """Before: the records read before the broken line were dropped too, while the stop said
    'nothing after line 2 was applied'. Now they are applied, and the STATE after them
    relayed, as at the end of input (or on SIGTERM); then the run stops on the line."""
    messages = [
        *singer_messages("users", [GOOD], state={"bookmark": 1}),
        {"type": "RECORD", "stream": "orders", "record": {"email": "early@example.com"}},
        {"type": "RECORD", "stream": "users", "record": {"email": "after@example.com"}},
        {"type": "STATE", "value": {"bookmark": 2}},
    ]
    result = run_target(target_config(v4, tmp_path), messages, tmp_path)
    assert result.returncode == 1
    [stop] = [line for line in result.stderr.splitlines() if "target-pardot stopped:" in line]
    assert "input line 4" in stop and "'orders'" in stop and "SCHEMA" in stop
    assert "nothing after line 3 was applied" in stop
    assert "Traceback" not in result.stderr
    assert "early@example.com" not in result.stderr
    assert [p["email"] for p in v4.prospects()] == [GOOD["email"]]
    assert result.states == [{"bookmark": 1}]
    assert "1 created" in result.summary, result.summary


def test_malformed_json_line_fails_with_its_number_and_nothing_past_it_is_applied(
    v4: PardotEmulator, tmp_path: Path
) -> None:
    lines = [json.dumps(m) for m in singer_messages("users", [GOOD])]
    lines.append('{"type": "RECORD", "stream": "users", "record": {"email": "secret@x.com"')
    lines.append(
        json.dumps({"type": "RECORD", "stream": "users", "record": {"email": "after@example.com"}})
    )
    lines.append(json.dumps({"type": "STATE", "value": {"done": True}}))
    result = run_target(target_config(v4, tmp_path), "\n".join(lines) + "\n", tmp_path)
    assert result.returncode != 0
    assert "input line 3 is not valid JSON" in result.stderr
    assert "secret@x.com" not in result.stderr
    assert result.states == []
    assert "after@example.com" not in [p["email"] for p in v4.prospects()]


@pytest.mark.parametrize("record", [None, ["secret@x.com"]], ids=["null", "array"])
def test_a_record_that_is_not_an_object_stops_the_run_instead_of_vanishing(
    v4: PardotEmulator, tmp_path: Path, record: Any
) -> None:
    # The SDK drops a null record as if a stream map had filtered it out, and STATE moved
    # past it; an array failed with a traceback.
    messages = [
        *singer_messages("users", [GOOD]),
        {"type": "RECORD", "stream": "users", "record": record},
        {"type": "RECORD", "stream": "users", "record": {"email": "after@example.com"}},
        {"type": "STATE", "value": {"done": True}},
    ]
    result = run_target(target_config(v4, tmp_path), messages, tmp_path)
    assert result.returncode == 1
    [stop] = [line for line in result.stderr.splitlines() if "target-pardot stopped:" in line]
    assert "input line 3 is a RECORD for stream 'users' whose record is" in stop
    assert "not a JSON object; nothing after line 2 was applied" in stop
    assert "Traceback" not in result.stderr
    assert "secret@x.com" not in result.stderr
    assert result.states == []
    assert "after@example.com" not in [p["email"] for p in v4.prospects()]


def test_a_date_the_tap_typed_but_cannot_be_parsed_is_rejected_not_fatal(
    v4: PardotEmulator, tmp_path: Path
) -> None:
    # singer-sdk parses strings whose schema says date-time or date, and stopped the whole run
    # with a traceback quoting the value on the first it could not parse (a warehouse's
    # 0000-00-00). A Pardot date field now rejects such a record naming the field; a column
    # Pardot does not have is left out as usual.
    v4.add_custom_field("renewal_date", type="Date")
    schema = {
        "type": "object",
        "properties": {
            "email": {"type": "string"},
            "renewal_date": {"type": ["string", "null"], "format": "date"},
            "signed_up_at": {"type": ["string", "null"], "format": "date-time"},
        },
    }
    records = [
        {"email": "good@example.com", "renewal_date": "2027-01-31", "signed_up_at": "x"},
        {"email": "bad@example.com", "renewal_date": "0000-00-00"},
        {"email": "later@example.com", "renewal_date": None},
    ]
    result = run_target(
        target_config(v4, tmp_path),
        singer_messages("users", records, schema=schema, state={"done": True}),
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "0000-00-00" not in result.stderr
    landed = {p["email"]: p.get("renewal_date") for p in v4.prospects()}
    assert landed == {"good@example.com": "2027-01-31", "later@example.com": None}
    [reject] = result.rejects
    assert (reject["field"], reject["record"]) == ("renewal_date", records[1])
    assert result.states == [{"done": True}]


def test_a_record_without_its_streams_key_property_stops_the_run_naming_its_line(
    v4: PardotEmulator, tmp_path: Path
) -> None:
    # singer-sdk refuses such a record (MissingKeyPropertiesError); it stopped with a traceback.
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}
    messages = [
        *singer_messages("users", [{"id": 1, **GOOD}], schema=schema),
        {"type": "RECORD", "stream": "users", "record": {"email": "nokey@example.com"}},
        {"type": "STATE", "value": {"done": True}},
    ]
    messages[0]["key_properties"] = ["id"]
    result = run_target(target_config(v4, tmp_path), messages, tmp_path)
    assert result.returncode == 1
    [stop] = [line for line in result.stderr.splitlines() if "target-pardot stopped:" in line]
    assert (
        "input line 3 is a RECORD for stream 'users' with a record without its stream's key "
        "properties"
    ) in stop
    assert "Key Properties: ['id']" in stop
    assert "Traceback" not in result.stderr and "nokey@example.com" not in result.stderr
    assert result.states == []


@pytest.mark.parametrize(
    ("expression", "line", "error"),
    [
        ("record['mail'].lower()", 3, "(KeyError: 'mail')"),
        ("int(mail)", 2, "(ValueError)"),  # its message would quote the value: left out
    ],
)
def test_a_stream_map_that_fails_on_a_record_stops_the_run_naming_line_and_stream(
    v4: PardotEmulator, tmp_path: Path, expression: str, line: int, error: str
) -> None:
    # The SDK let the expression's own error through: "ERROR | mail" and a traceback.
    messages = [
        *singer_messages("users", [{"mail": "first@example.com"}]),
        {"type": "RECORD", "stream": "users", "record": {"email": "secret@example.com"}},
        {"type": "STATE", "value": {"done": True}},
    ]
    config = target_config(v4, tmp_path, stream_maps={"users": {"email": expression}})
    result = run_target(config, messages, tmp_path)
    assert result.returncode == 1
    [stop] = [line for line in result.stderr.splitlines() if "target-pardot stopped:" in line]
    assert f"input line {line}: the stream map of stream 'users' failed on this record " in stop
    assert error in stop and "record.get(" in stop
    assert "Traceback" not in result.stderr
    assert "secret@example.com" not in result.stderr and "first@example.com" not in result.stderr
    assert result.states == []


def test_segment_events_flattened_by_the_sdk_are_rejected_saying_why(
    v4: PardotEmulator, tmp_path: Path
) -> None:
    # With flattening_enabled, singer-sdk hands the sink traits__email instead of traits.email:
    # every event was rejected for a missing email that is plainly there.
    events = [
        {"type": "identify", "userId": f"u{n}", "traits": {"email": f"u{n}@example.com"}}
        for n in range(25)  # max_reject_ratio looks once 20 records were seen
    ]
    config = target_config(v4, tmp_path, flattening_enabled=True, flattening_max_depth=3)
    result = run_target(config, singer_messages("users", events), tmp_path)
    assert result.returncode == 1  # max_reject_ratio: every record was rejected
    assert v4.prospects() == []
    assert {reject["field"] for reject in result.rejects} == {"traits"}
    assert all(
        "traits arrived flattened into columns (traits__email)" in reject["reason"]
        and "flattening_enabled off" in reject["reason"]
        for reject in result.rejects
    )


def test_secrets_and_tokens_never_appear_in_logs_or_rejects(
    v4: PardotEmulator, tmp_path: Path
) -> None:
    oauth = target_config(v4, tmp_path)
    token = requests.post(
        f"{v4.url}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": oauth["refresh_token"],
            "client_id": oauth["client_id"],
            "client_secret": oauth["client_secret"],
        },
        timeout=10,
    ).json()["access_token"]
    (tmp_path / "static").mkdir()
    static = target_config(v4, tmp_path / "static", access_token=token)
    records = singer_messages("users", [{"email": "bad"}, GOOD])
    first = run_target(oauth, records, tmp_path, env={"LOGLEVEL": "DEBUG"})
    second = run_target(static, records, tmp_path / "static", env={"LOGLEVEL": "DEBUG"})
    assert first.returncode == second.returncode == 0, second.stderr[-3000:]
    shown = first.stdout + first.stderr + second.stdout + second.stderr
    shown += first.reject_file.read_text() + second.reject_file.read_text()
    for secret in (token, oauth["client_secret"], oauth["refresh_token"]):
        assert secret not in shown


def test_emails_are_not_logged_above_debug_level(v4: PardotEmulator, tmp_path: Path) -> None:
    records = [{"email": "visible-bad-email"}, {"email": "person@example.com", "x_trait": 1}]
    result = run_target(target_config(v4, tmp_path), singer_messages("users", records), tmp_path)
    assert result.returncode == 0
    assert "person@example.com" not in result.stderr
    assert "visible-bad-email" not in result.stderr
    assert "visible-bad-email" in result.reject_file.read_text()


@pytest.mark.parametrize(
    ("ampsea", "api_version"), [(False, 3), (True, 4), (True, 5)], ids=["v3", "v4", "v5"]
)
def test_text_that_is_not_unicode_rejects_its_record_not_the_run(
    make_emulator: Any, tmp_path: Path, ampsea: bool, api_version: int
) -> None:
    # A byte that is not UTF-8 in one customer's name, and a JSON escape of half a surrogate
    # pair: sent on, Pardot's JSON parser refuses the whole batch call (71, "bad JSON"). Before,
    # the first stopped the run with a traceback under a UTF-8 locale and reached Pardot as an
    # escape under another; the second was sent as it was. Read as UTF-8 whatever the locale
    # (PYTHONIOENCODING=latin-1 here), each now rejects its record, naming the field.
    emulator: PardotEmulator = make_emulator(ampsea=ampsea)
    schema = {"type": "SCHEMA", "stream": "users", "schema": {"properties": {}}}
    lines = [
        json.dumps(schema).encode(),
        b'{"type": "RECORD", "stream": "users", "record": '
        b'{"email": "byte@example.com", "first_name": "M\xfcller"}}',
        b'{"type": "RECORD", "stream": "users", "record": '
        b'{"email": "escape@example.com", "last_name": "Half \\ud83d"}}',
        b'{"type": "RECORD", "stream": "users", "record": '
        b'{"email": "emoji@example.com", "company": "Smile \\ud83d\\ude00"}}',
        json.dumps(
            {
                "type": "RECORD",
                "stream": "users",
                "record": {"email": "zoe@example.com", "first_name": "Zoë"},
            },
            ensure_ascii=False,
        ).encode("utf-8"),
    ]
    result = run_target(
        target_config(emulator, tmp_path, api_version=api_version),
        b"\n".join(lines) + b"\n",
        tmp_path,
        env={"PYTHONIOENCODING": "latin-1"},
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    landed = {p["email"]: (p.get("first_name"), p.get("company")) for p in emulator.prospects()}
    assert landed == {"emoji@example.com": (None, "Smile 😀"), "zoe@example.com": ("Zoë", None)}
    assert result.reject_file is not None
    # The reject file stays UTF-8 JSON, and gives each record back as it was read.
    rejects = [json.loads(line) for line in result.reject_file.read_bytes().decode().splitlines()]
    assert [(r["field"], r["record"]) for r in rejects] == [
        ("first_name", {"email": "byte@example.com", "first_name": "M\udcfcller"}),
        ("last_name", {"email": "escape@example.com", "last_name": "Half \ud83d"}),
    ]
    assert "character 2 is not text: a byte 0xfc that is not UTF-8" in rejects[0]["reason"]
    assert "character 6 is not text: the JSON escape \\ud83d, half of" in rejects[1]["reason"]


def test_input_saved_with_a_byte_order_mark_is_read(v4: PardotEmulator, tmp_path: Path) -> None:
    # A JSON Lines file saved by a Windows tool starts with a BOM; before, line 1 stopped the
    # run as "not valid JSON (Expecting value at column 1)", the mark being invisible.
    text = "".join(json.dumps(m) + "\n" for m in singer_messages("users", [GOOD]))
    result = run_target(target_config(v4, tmp_path), b"\xef\xbb\xbf" + text.encode(), tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    assert [p["email"] for p in v4.prospects()] == ["good@example.com"]
