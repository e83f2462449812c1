"""Preparing a batch record by record, as the sink hands each one over when the SDK reads it."""

from __future__ import annotations

import json
from pathlib import Path

from target_pardot.dialects.v3 import V3Dialect
from target_pardot.dialects.v4 import V4Dialect
from target_pardot.fields import CustomField, FieldCatalog
from target_pardot.identify import Identify
from target_pardot.outcomes import SKIP_SEGMENT_SWITCH, RejectFile, Result, RunReport
from target_pardot.prepare import BatchPreparer, Prepared
from target_pardot.settings import Settings

SETTINGS = Settings.from_config(
    {
        "business_unit_id": "0Uv000000000001AAA",
        "access_token": "token",
        "pardot_url": "http://127.0.0.1:1",
        "api_version": 3,
    }
)


class V3Rules:
    json_values = V3Dialect.json_values

    def require_identity(self, identify: Identify) -> None:
        V3Dialect.require_identity(self, identify)  # type: ignore[arg-type]


def report_at(path: Path) -> RunReport:
    return RunReport(RejectFile(str(path)), 1.0)


RECORDS = [
    {"email": "ada@example.com", "first_name": "Ada", "favourite_colour": "green"},
    {"email": "not an email", "first_name": "Bob"},
    {"type": "identify", "traits": {"email": "eve@example.com"}, "integrations": {"Pardot": False}},
    {"email": "cy@example.com", "city": "Oslo", "received_at": "2026-11-24T10:00:00Z"},
]


def test_a_bad_record_is_rejected_when_it_is_added_not_when_the_batch_ends(
    tmp_path: Path,
) -> None:
    report = report_at(tmp_path / "rejects.jsonl")
    batch = BatchPreparer(
        "users", settings=SETTINGS, catalog=FieldCatalog(), rules=V3Rules(), report=report
    )
    batch.add(RECORDS[0])
    batch.add(RECORDS[1])
    report.rejects.close()

    assert report.results[Result.REJECTED] == 1
    [line] = (tmp_path / "rejects.jsonl").read_text().splitlines()
    assert json.loads(line)["field"] == "email"
    assert json.loads(line)["record"] == RECORDS[1]
    assert batch.seen == 2


def test_a_finished_batch_gives_its_prepared_records_counts_and_notes(tmp_path: Path) -> None:
    report = report_at(tmp_path / "rejects.jsonl")
    batch = BatchPreparer(
        "users", settings=SETTINGS, catalog=FieldCatalog(), rules=V3Rules(), report=report
    )
    for record in RECORDS:
        batch.add(record)
    # Nothing but rejects is told before the batch ends: counts and names come with finish().
    assert "users" not in report.streams() or report.streams()["users"].received == 0
    assert not report.unknown_traits and not report.ignored_columns

    prepared = batch.finish()

    assert [(item.email, item.fields) for item in prepared] == [
        ("ada@example.com", {"first_name": "Ada"}),
        ("cy@example.com", {"city": "Oslo"}),
    ]
    tally = report.streams()["users"]
    assert tally.received == 4
    assert tally.results[Result.REJECTED] == 1
    assert tally.skip_reasons == {SKIP_SEGMENT_SWITCH: 1}
    assert set(report.unknown_traits) == {"favourite_colour"}
    assert set(report.ignored_columns) == {"received_at"}


def test_batches_of_several_streams_give_every_record_read_since_the_last_in_input_order(
    tmp_path: Path,
) -> None:
    """A tap sends stream a, then stream b: a's last records wait in a's batch while b's
    fills. Whichever batch is finished first hands over both streams' records, as they were
    read; the other then has only what was read after."""
    report = report_at(tmp_path / "rejects.jsonl")
    pending: list[Prepared] = []
    batches = {
        stream: BatchPreparer(
            stream,
            settings=SETTINGS,
            catalog=FieldCatalog(),
            rules=V3Rules(),
            report=report,
            pending=pending,
        )
        for stream in ("a", "b")
    }
    for stream, email in [("a", "1@x.com"), ("b", "2@x.com"), ("a", "3@x.com")]:
        batches[stream].add({"email": email})
    first = batches["b"].finish()
    assert [(item.identify.stream, item.email) for item in first] == [
        ("a", "1@x.com"),
        ("b", "2@x.com"),
        ("a", "3@x.com"),
    ]
    batches["a"].add({"email": "4@x.com"})
    assert [item.email for item in batches["a"].finish()] == ["4@x.com"]
    assert pending == []
    # Each batch still counts what its own stream read.
    assert {name: tally.received for name, tally in report.streams().items()} == {"a": 3, "b": 1}


class V4Rules:
    json_values = V4Dialect.json_values

    def require_identity(self, identify: Identify) -> None:
        V4Dialect.require_identity(self, identify)  # type: ignore[arg-type]


def v4_lookup_batch(report: RunReport, **settings: object) -> BatchPreparer:
    """A v4 batch matched by the custom field org_id (lookup_field)."""
    config = {
        "business_unit_id": "0Uv000000000001AAA",
        "access_token": "token",
        "pardot_url": "http://127.0.0.1:1",
        "api_version": 4,
        "lookup_field": "org_id",
        **settings,
    }
    return BatchPreparer(
        "users",
        settings=Settings.from_config(config),
        catalog=FieldCatalog.from_custom_fields([CustomField("org_id")]),
        rules=V4Rules(),
        report=report,
    )


def test_a_record_matched_by_pardot_id_carries_the_lookup_value_it_writes(
    tmp_path: Path,
) -> None:
    """Its prospect is the one a later record of that value finds: the run orders them, and
    the scan index learns the new value."""
    batch = v4_lookup_batch(report_at(tmp_path / "rejects.jsonl"))
    batch.add({"pardot_id": "7", "email": "a@x.com", "org_id": "o1"})
    batch.add({"pardot_id": "8", "email": "b@x.com"})  # writes none: needs none
    batch.add({"org_id": "o2", "email": "c@x.com"})
    by_id, without, by_lookup = batch.finish()
    assert (by_id.lookup_value, by_id.fields["org_id"]) == ("o1", "o1")
    assert without.lookup_value is None
    assert by_lookup.lookup_value == "o2"


def test_a_lookup_value_is_trimmed_and_written_trimmed_and_a_blank_one_is_none(
    tmp_path: Path,
) -> None:
    report = report_at(tmp_path / "rejects.jsonl")
    batch = v4_lookup_batch(report)
    batch.add({"org_id": " o1  ", "email": "a@x.com"})
    batch.add({"org_id": "   ", "email": "b@x.com"})
    batch.add({"pardot_id": "7", "org_id": "o2 "})
    report.rejects.close()

    padded, by_id = batch.finish()
    assert (padded.lookup_value, padded.fields["org_id"]) == ("o1", "o1")
    assert (by_id.lookup_value, by_id.fields["org_id"]) == ("o2", "o2")
    [line] = (tmp_path / "rejects.jsonl").read_text().splitlines()
    assert json.loads(line)["field"] == "org_id"


def test_a_user_id_that_is_not_unicode_text_is_refused_where_it_is_the_lookup_value(
    tmp_path: Path,
) -> None:
    report = report_at(tmp_path / "rejects.jsonl")
    batch = v4_lookup_batch(report, use_user_id_as_lookup=True)
    batch.add({"type": "identify", "userId": "u\udcfc", "traits": {"email": "a@x.com"}})
    batch.add({"type": "identify", "userId": "u2", "traits": {"email": "b@x.com"}})
    report.rejects.close()

    [kept] = batch.finish()
    assert kept.lookup_value == "u2"
    [line] = (tmp_path / "rejects.jsonl").read_text().splitlines()
    assert json.loads(line)["field"] == "userId"
    assert "is not text" in json.loads(line)["reason"]


def test_a_compact_batch_keeps_what_matching_needs_and_the_record_for_a_later_reject(
    tmp_path: Path,
) -> None:
    """Large batches (an import's 50,000 records) hold their records as JSON text once
    prepared; a record Pardot refuses later still reaches the reject file as it came."""
    records = [RECORDS[0], RECORDS[3], {"email": "zoë@example.com", "first_name": "Zoë"}]

    def prepare(compact: bool) -> list[Prepared]:
        batch = BatchPreparer(
            "users",
            settings=SETTINGS,
            catalog=FieldCatalog(),
            rules=V3Rules(),
            report=report_at(tmp_path / f"rejects-{compact}.jsonl"),
            compact=compact,
        )
        for record in records:
            batch.add(dict(record))
        return batch.finish()

    plain, compact = prepare(False), prepare(True)

    assert [(i.email, i.fields, i.lookup_value) for i in compact] == [
        (i.email, i.fields, i.lookup_value) for i in plain
    ]
    assert all(item.identify.source == {} for item in compact)
    assert all(item.identify.source != {} for item in plain)
    assert [item.reject("refused by Pardot").record for item in compact] == records
