"""Specs for target_pardot.identify: one Singer record -> one normalised Identify."""

from __future__ import annotations

import copy
import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from target_pardot.errors import RecordError
from target_pardot.fields import FieldCatalog, map_traits
from target_pardot.identify import Identify, json_safe, json_text, normalise_record

UTC = dt.timezone.utc


def normalise(record: Any) -> Identify:
    return normalise_record("identifies", record)


def segment_event(**overrides: Any) -> dict[str, Any]:
    """A Segment identify event as the HTTP tracking API documents it."""
    event: dict[str, Any] = {
        "type": "identify",
        "messageId": "msg-1",
        "userId": "user-1",
        "anonymousId": "anon-1",
        "timestamp": "2024-05-01T10:00:00Z",
        "sentAt": "2024-05-01T10:00:01Z",
        "receivedAt": "2024-05-01T10:00:02Z",
        "originalTimestamp": "2024-05-01T10:00:00Z",
        "channel": "server",
        "version": 2,
        "context": {"ip": "203.0.113.9", "traits": {}},
        "integrations": {},
        "traits": {"email": "ann@example.com", "firstName": "Ann"},
    }
    event.update(overrides)
    return event


# --- RecordError ---------------------------------------------------------------------------


def test_record_error_text_is_field_then_reason() -> None:
    error = RecordError("traits.email", "must be text")
    assert (error.field, error.reason) == ("traits.email", "must be text")
    assert str(error) == "traits.email: must be text"
    assert isinstance(error, ValueError)


def test_record_error_without_field_is_just_the_reason() -> None:
    assert str(RecordError(None, "record must be an object")) == "record must be an object"


# --- Segment identify events ---------------------------------------------------------------


def test_segment_event_yields_identity_traits_and_ignored_system_keys() -> None:
    identify = normalise(segment_event())

    assert identify.stream == "identifies"
    assert identify.email == "ann@example.com"
    assert identify.email_field == "traits.email"
    assert identify.user_id == "user-1"
    assert (identify.pardot_id, identify.pardot_fid) == (None, None)
    assert identify.traits == {"firstName": "Ann"}
    assert identify.ignored == [
        "type",
        "messageId",
        "anonymousId",
        "timestamp",
        "sentAt",
        "receivedAt",
        "originalTimestamp",
        "channel",
        "version",
        "context",
        "integrations",
    ]


@pytest.mark.parametrize(
    "marker",
    [
        {"traits": {}},
        {"context": {}},
        {"integrations": {}},
        {"userId": "u1"},
        {"anonymousId": "a1"},
    ],
    ids=lambda marker: next(iter(marker)),
)
def test_any_segment_event_key_selects_the_event_shape(marker: dict[str, Any]) -> None:
    # The event shape drops unrecognised top-level keys; the flat shape would keep them.
    identify = normalise({**marker, "first_name": "Ann"})

    assert "first_name" not in identify.traits
    assert "first_name" in identify.ignored


def test_email_comes_from_traits_before_context_traits() -> None:
    record = segment_event(
        traits={"email": "traits@example.com"},
        context={"traits": {"email": "context@example.com"}},
        email="top@example.com",
    )

    identify = normalise(record)

    assert (identify.email, identify.email_field) == ("traits@example.com", "traits.email")


def test_email_falls_back_to_context_traits() -> None:
    record = segment_event(
        traits={"firstName": "Ann"},
        context={"traits": {"email": "context@example.com"}},
        email="top@example.com",
    )

    identify = normalise(record)

    assert (identify.email, identify.email_field) == (
        "context@example.com",
        "context.traits.email",
    )


def test_email_falls_back_to_the_top_level_email() -> None:
    identify = normalise(segment_event(traits={}, context={}, email="top@example.com"))

    assert (identify.email, identify.email_field) == ("top@example.com", "email")


@pytest.mark.parametrize("blank", ["", "   ", None])
def test_a_blank_email_falls_through_to_the_next_source(blank: str | None) -> None:
    record = segment_event(
        traits={"email": blank}, context={"traits": {"email": "context@example.com"}}
    )

    identify = normalise(record)

    assert identify.email == "context@example.com"


def test_email_surrounding_whitespace_is_trimmed() -> None:
    identify = normalise(segment_event(traits={"email": "  ann@example.com \t\n"}))

    assert identify.email == "ann@example.com"


def test_no_email_anywhere_gives_none() -> None:
    identify = normalise(segment_event(traits={"firstName": "Ann"}))

    assert (identify.email, identify.email_field) == (None, None)


def test_context_traits_merge_with_traits_and_traits_win() -> None:
    record = segment_event(
        traits={"email": "ann@example.com", "title": "CTO"},
        context={"traits": {"title": "Engineer", "company": "Acme", "email": "old@example.com"}},
    )

    identify = normalise(record)

    assert identify.traits == {"title": "CTO", "company": "Acme"}


def test_email_is_never_left_among_the_traits() -> None:
    record = segment_event(
        traits={"Email": "ann@example.com"}, context={"traits": {"email": "x@example.com"}}
    )

    identify = normalise(record)

    assert identify.traits == {}
    assert identify.email_field == "traits.Email"


@pytest.mark.parametrize("key", ["pardot_id", "pardot_fid", "userId", "user_id"])
def test_identity_keys_inside_traits_are_reported_not_passed_on(key: str) -> None:
    identify = normalise(segment_event(traits={key: "123", "firstName": "Ann"}))

    assert identify.traits == {"firstName": "Ann"}
    assert f"traits.{key}" in identify.ignored
    assert identify.pardot_id is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("user-1", "user-1"), (42, "42"), ("  u2  ", "u2"), ("", None), ("   ", None), (None, None)],
)
def test_user_id_comes_from_userId_as_text(value: Any, expected: str | None) -> None:
    assert normalise(segment_event(userId=value)).user_id == expected


@pytest.mark.parametrize("pardot_key", ["Pardot", "pardot", "PARDOT"])
def test_pardot_ids_come_from_integrations_in_any_case(pardot_key: str) -> None:
    record = segment_event(integrations={"All": True, pardot_key: {"id": 1234, "fid": "00Q5e0"}})

    identify = normalise(record)

    assert (identify.pardot_id, identify.pardot_fid) == ("1234", "00Q5e0")


@pytest.mark.parametrize("switch", [True, False, None])
def test_integrations_pardot_switch_carries_no_ids(switch: bool | None) -> None:
    identify = normalise(segment_event(integrations={"Pardot": switch}))

    assert (identify.pardot_id, identify.pardot_fid) == (None, None)


def test_type_is_optional_on_a_segment_event() -> None:
    record = segment_event()
    del record["type"]

    assert normalise(record).email == "ann@example.com"


@pytest.mark.parametrize("message_type", ["track", "page", "group", "alias", "screen"])
def test_segment_events_other_than_identify_are_rejected(message_type: str) -> None:
    with pytest.raises(RecordError, match="only identify events") as raised:
        normalise(segment_event(type=message_type, event="Signed Up"))

    assert raised.value.field == "type"


def test_a_bare_record_with_a_non_identify_segment_type_is_rejected() -> None:
    with pytest.raises(RecordError) as raised:
        normalise({"type": "track", "event": "Signed Up", "email": "ann@example.com"})

    assert raised.value.field == "type"


def test_identify_type_in_any_case_is_accepted() -> None:
    assert normalise(segment_event(type="Identify")).email == "ann@example.com"


# --- Flat rows: Segment warehouse rows and Pardot-named rows -------------------------------


def warehouse_row(**overrides: Any) -> dict[str, Any]:
    """A row of a Segment warehouse `identifies` table."""
    row: dict[str, Any] = {
        "id": "msg-1",
        "received_at": "2024-05-01T10:00:02Z",
        "sent_at": "2024-05-01T10:00:01Z",
        "timestamp": "2024-05-01T10:00:00Z",
        "original_timestamp": "2024-05-01T10:00:00Z",
        "uuid_ts": "2024-05-01T10:05:00Z",
        "loaded_at": "2024-05-01T10:05:00Z",
        "anonymous_id": "anon-1",
        "context_ip": "203.0.113.9",
        "context_library_name": "analytics-node",
        "_sdc_batched_at": "2024-05-01T11:00:00Z",
        "user_id": "user-1",
        "email": "ann@example.com",
        "first_name": "Ann",
        "address_city": "Oslo",
    }
    row.update(overrides)
    return row


def test_warehouse_row_keeps_trait_columns_and_ignores_system_columns() -> None:
    identify = normalise(warehouse_row())

    assert identify.email == "ann@example.com"
    assert identify.email_field == "email"
    assert identify.user_id == "user-1"
    assert identify.traits == {"first_name": "Ann", "address_city": "Oslo"}
    assert identify.ignored == [
        "id",
        "received_at",
        "sent_at",
        "timestamp",
        "original_timestamp",
        "uuid_ts",
        "loaded_at",
        "anonymous_id",
        "context_ip",
        "context_library_name",
        "_sdc_batched_at",
    ]


@pytest.mark.parametrize(
    "column",
    [
        "id",
        "received_at",
        "sent_at",
        "timestamp",
        "original_timestamp",
        "uuid_ts",
        "loaded_at",
        "anonymous_id",
        "event",
        "event_text",
        "message_id",
        "channel",
        "type",
        "version",
        "context_page_url",
        "_sdc_sequence",
        "RECEIVED_AT",
        "CONTEXT_IP",
    ],
)
def test_each_warehouse_system_column_is_ignored(column: str) -> None:
    identify = normalise({"email": "ann@example.com", column: "identify"})

    assert identify.traits == {}
    assert identify.ignored == [column]


def test_warehouse_id_column_is_the_message_id_not_a_pardot_id() -> None:
    identify = normalise(warehouse_row(id="12345"))

    assert identify.pardot_id is None
    assert "id" in identify.ignored


def test_flat_row_of_pardot_fields_with_id_columns() -> None:
    row = {
        "pardot_id": 987,
        "pardot_fid": " 0035e00000AbCdE ",
        "user_id": 55,
        "email": "ann@example.com",
        "first_name": "Ann",
        "job_title": "CTO",
    }

    identify = normalise(row)

    assert (identify.pardot_id, identify.pardot_fid, identify.user_id) == (
        "987",
        "0035e00000AbCdE",
        "55",
    )
    assert identify.traits == {"first_name": "Ann", "job_title": "CTO"}
    assert identify.ignored == []


@pytest.mark.parametrize(
    ("value", "expected"), [(987.0, "987"), (Decimal("987"), "987"), ("", None), (None, None)]
)
def test_pardot_id_column_accepts_whole_numbers_and_blank(value: Any, expected: str | None) -> None:
    assert normalise({"pardot_id": value}).pardot_id == expected


def test_uppercase_warehouse_columns_are_recognised() -> None:
    identify = normalise({"EMAIL": " ann@example.com ", "USER_ID": "u1", "FIRST_NAME": "Ann"})

    assert (identify.email, identify.email_field, identify.user_id) == (
        "ann@example.com",
        "EMAIL",
        "u1",
    )
    assert identify.traits == {"FIRST_NAME": "Ann"}


def test_flat_row_with_type_identify_keeps_its_trait_columns() -> None:
    identify = normalise({"type": "identify", "email": "ann@example.com", "first_name": "Ann"})

    assert identify.traits == {"first_name": "Ann"}
    assert identify.ignored == ["type"]


@pytest.mark.parametrize(
    "record",
    [{}, {"id": "msg-1", "received_at": "2024-05-01T00:00:00Z"}, {"email": "ann@example.com"}],
    ids=["empty", "only-system-columns", "only-email"],
)
def test_records_without_prospect_data_are_not_an_error_here(record: dict[str, Any]) -> None:
    identify = normalise(record)

    assert identify.traits == {}


# --- The record copy and the traits' Python values ----------------------------------------


def test_record_is_converted_to_json_safe_values_for_reject_files() -> None:
    record = segment_event(
        timestamp=dt.datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
        traits={
            "email": "ann@example.com",
            "birthday": dt.date(1990, 2, 3),
            "revenue": Decimal("12.50"),
            "seats": Decimal("40"),
            "tags": ("a", "b"),
        },
    )

    identify = normalise(record)

    assert identify.record["timestamp"] == "2024-05-01T10:00:00+00:00"
    assert identify.record["traits"] == {
        "email": "ann@example.com",
        "birthday": "1990-02-03",
        # JSON numbers stay numbers, so the reject file reads like the tap's record.
        "revenue": 12.5,
        "seats": 40,
        "tags": ["a", "b"],
    }
    json.dumps(identify.record)


def test_a_compacted_record_still_gives_the_reject_file_the_record_as_it_came() -> None:
    record = segment_event(
        timestamp=dt.datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
        traits={
            "email": "ann@example.com",
            "name": "Ånn Lee",
            "revenue": Decimal("12.50"),
            "tags": ("a", "b"),
            "address": {"city": "Oslo", "zip": None},
        },
    )
    identify = normalise(record)
    expected = identify.record

    identify.compact()

    assert identify.record == expected
    assert identify.record is not identify.record  # each reject gets a copy of its own
    # Only the JSON text is held: the decoded record and the traits taken from it are let go.
    assert identify.source == {} and identify.traits == {} and not identify.ignored
    assert (identify.email, identify.user_id, identify.stream) == (
        "ann@example.com",
        "user-1",
        "identifies",
    )


@pytest.mark.parametrize(
    "value",
    [
        {"a": Decimal("1.50"), "b": Decimal("2"), "when": dt.date(2024, 1, 2), "set": {3}},
        {"nested": [{"t": dt.time(10, 30)}, ("x", None)], "float": 0.1, "big": 10**30},
        {1: "an int key", 2.5: "a float key"},
        {(1, 2): "a key json cannot take", "other": Decimal("3")},
        {"text": 'Zoë \u2603 "quoted"', "other": dt.timedelta(seconds=5)},
    ],
)
def test_json_text_is_json_safe_as_text(value: dict[Any, Any]) -> None:
    assert json.loads(json_text(value)) == json.loads(json.dumps(json_safe(value)))


def _strict_json(text: str) -> Any:
    """What a strict JSON reader (jq, a warehouse loader) makes of `text`: NaN is refused."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_numbers_json_has_no_number_for_are_kept_as_text_in_reject_files() -> None:
    # Python taps write NaN and Infinity for float columns (json.dumps allows them), and
    # Python's json module reads them back; a reject file holding them would be refused whole
    # by jq and by warehouse loaders.
    record = {
        "email": "ann@example.com",
        "score": float("nan"),
        "limits": [float("inf"), float("-inf"), 1.5],
        "tiny": Decimal("1.5E-400"),  # 0.0 as a float
        "huge": Decimal("2.5E+400"),  # a whole number, however many digits
    }

    safe = json_safe(record)

    assert _strict_json(json.dumps(safe)) == {
        "email": "ann@example.com",
        "score": "NaN",
        "limits": ["Infinity", "-Infinity", 1.5],
        "tiny": "1.5E-400",
        "huge": 25 * 10**399,
    }
    assert _strict_json(json_text(record)) == _strict_json(json.dumps(safe))


def test_a_compacted_record_with_nan_gives_the_reject_file_strict_json() -> None:
    identify = normalise(segment_event(traits={"email": "ann@example.com", "score": float("nan")}))

    identify.compact()

    assert identify.record["traits"]["score"] == "NaN"
    _strict_json(json.dumps(identify.record, allow_nan=False))


def test_traits_keep_python_values_for_field_formatting() -> None:
    created = dt.datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    identify = normalise(warehouse_row(trial_started=created, annual_revenue=Decimal("1000.5")))

    assert identify.traits["trial_started"] is created
    assert identify.traits["annual_revenue"] == Decimal("1000.5")


@pytest.mark.parametrize(
    "record",
    [
        segment_event(
            traits={"name": "Ann Lee", "address": {"city": "Oslo", "zip": None}, "tags": ["a"]},
            context={"traits": {"company": {"name": "Acme", "plan": "pro"}}},
        ),
        warehouse_row(address={"city": "Oslo"}, context_ip="10.0.0.1", tags=["a", None]),
    ],
)
def test_preparing_a_record_leaves_it_as_it_came(record: dict[str, Any]) -> None:
    # Traits share nested objects with the record; the reject file shows the record as the
    # tap sent it, so nothing on the way to Pardot's fields may edit them.
    before = copy.deepcopy(record)

    identify = normalise(record)
    map_traits(identify.traits, FieldCatalog(), json_values=False)
    map_traits(identify.traits, FieldCatalog(), json_values=True)

    assert record == before


# --- Structurally bad records --------------------------------------------------------------


@pytest.mark.parametrize("record", [["email", "ann@example.com"], "ann@example.com", 42, None])
def test_a_record_that_is_not_an_object_is_rejected(record: Any) -> None:
    with pytest.raises(RecordError, match="must be a JSON object") as raised:
        normalise(record)

    assert raised.value.field is None


@pytest.mark.parametrize(
    ("record", "field"),
    [
        (segment_event(traits=["ann@example.com"]), "traits"),
        (segment_event(traits="ann@example.com"), "traits"),
        (segment_event(context="web"), "context"),
        (segment_event(context={"traits": ["x"]}), "context.traits"),
        (segment_event(integrations=["Pardot"]), "integrations"),
        (segment_event(integrations={"Pardot": "1234"}), "integrations.Pardot"),
    ],
    ids=[
        "traits-list",
        "traits-text",
        "context-text",
        "context-traits-list",
        "integrations-list",
        "integrations-pardot-text",
    ],
)
def test_objects_that_are_not_objects_are_rejected(record: dict[str, Any], field: str) -> None:
    with pytest.raises(RecordError, match="must be an object") as raised:
        normalise(record)

    assert raised.value.field == field


@pytest.mark.parametrize(
    ("record", "field"),
    [
        (segment_event(traits={"email": ["a@example.com"]}), "traits.email"),
        (segment_event(traits={}, context={"traits": {"email": 42}}), "context.traits.email"),
        (segment_event(traits={}, email={"address": "a@example.com"}), "email"),
        ({"email": True, "first_name": "Ann"}, "email"),
    ],
    ids=["traits", "context-traits", "top-level", "flat-row"],
)
def test_an_email_that_is_not_text_is_rejected(record: dict[str, Any], field: str) -> None:
    with pytest.raises(RecordError, match="must be text") as raised:
        normalise(record)

    assert raised.value.field == field


def test_a_bad_email_is_rejected_even_when_a_later_source_has_a_good_one() -> None:
    record = segment_event(traits={"email": 42}, context={"traits": {"email": "a@example.com"}})

    with pytest.raises(RecordError) as raised:
        normalise(record)

    assert raised.value.field == "traits.email"


@pytest.mark.parametrize(
    ("record", "field"),
    [
        (segment_event(integrations={"Pardot": {"id": True}}), "integrations.Pardot.id"),
        (segment_event(integrations={"pardot": {"fid": ["00Q"]}}), "integrations.pardot.fid"),
        (segment_event(userId={"id": 1}), "userId"),
        ({"pardot_id": 12.5}, "pardot_id"),
        ({"user_id": False}, "user_id"),
    ],
    ids=["integration-id-bool", "integration-fid-list", "userId-object", "fraction", "bool"],
)
def test_identifiers_that_are_not_text_or_whole_numbers_are_rejected(
    record: dict[str, Any], field: str
) -> None:
    with pytest.raises(RecordError, match="identifier") as raised:
        normalise(record)

    assert raised.value.field == field


def test_a_non_text_type_on_a_segment_event_is_rejected() -> None:
    with pytest.raises(RecordError) as raised:
        normalise(segment_event(type=7))

    assert raised.value.field == "type"


# --- Segment's per-event destination switch -------------------------------------------------


@pytest.mark.parametrize(
    ("integrations", "disabled"),
    [
        ({"Pardot": False}, True),
        ({"pardot": False}, True),
        ({"All": False}, True),
        ({"All": False, "Pardot": True}, False),
        ({"All": False, "Pardot": {"id": "17"}}, False),
        ({"Pardot": True}, False),
        ({"Pardot": {"fid": "00Q1"}}, False),
        ({"Salesforce": False}, False),
        ({}, False),
    ],
)
def test_integrations_switch_says_whether_the_event_goes_to_pardot(
    integrations: dict[str, Any], disabled: bool
) -> None:
    record = segment_event(traits={"email": "a@x.com"}, integrations=integrations)
    assert normalise(record).pardot_disabled is disabled


def test_flat_rows_are_never_switched_off() -> None:
    assert normalise({"email": "a@x.com", "all": False}).pardot_disabled is False


@pytest.mark.parametrize("separator", ["__", "."])
def test_an_event_whose_traits_were_flattened_is_refused_saying_so(separator: str) -> None:
    # singer-sdk's flattening_enabled turns traits.email into traits__email: the email is
    # there, but not where an event keeps it. "Email required" would mislead.
    event = {
        "type": "identify",
        "userId": "u1",
        f"context{separator}ip": "10.0.0.1",
        f"traits{separator}email": "a@example.com",
        f"traits{separator}firstName": "Ada",
        f"traits{separator}company{separator}name": "Acme",
        f"traits{separator}title": "CTO",
    }
    with pytest.raises(RecordError) as error:
        normalise_record("users", event)
    assert error.value.field == "traits"
    assert error.value.reason.startswith(
        f"the event's traits arrived flattened into columns (traits{separator}company"
        f"{separator}name, traits{separator}email, traits{separator}firstName, ...)"
    )
    assert "flattening_enabled off" in error.value.reason


def test_an_event_with_its_traits_nested_is_read_whatever_its_other_columns() -> None:
    event = {"type": "identify", "traits": {"email": "a@example.com"}, "context__ip": "x"}
    assert normalise_record("users", event).email == "a@example.com"
    # An email outside the traits is still found, flattened context or not.
    assert (
        normalise_record(
            "users", {"userId": "u1", "email": "b@example.com", "context__ip": "x"}
        ).email
        == "b@example.com"
    )


@pytest.mark.parametrize(
    ("record", "field"),
    [
        (segment_event(integrations={"Pardot": {"fid": "00Q\udcfc"}}), "integrations.Pardot.fid"),
        ({"email": "a@example.com", "pardot_fid": "00Q\ud83d"}, "pardot_fid"),
        ({"email": "a@example.com", "Pardot_Id": "\udcb9"}, "Pardot_Id"),
    ],
)
def test_a_pardot_id_that_is_not_unicode_text_is_refused_naming_it(
    record: dict[str, Any], field: str
) -> None:
    with pytest.raises(RecordError) as refused:
        normalise(record)
    assert refused.value.field == field
    assert "is not text" in refused.value.reason


def test_a_user_id_that_is_not_unicode_text_is_kept_where_it_is_not_sent() -> None:
    # Only a lookup by userId sends it (prepare.py checks it there); v3 never does.
    identify = normalise(segment_event(userId="u\udcfc"))
    assert identify.user_id == "u\udcfc"
