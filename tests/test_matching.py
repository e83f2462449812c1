"""Matching rules: which identity a record has in each version, and how repeats merge."""

from __future__ import annotations

from typing import Any

import pytest

from target_pardot.dialects import DIALECTS, RunTools
from target_pardot.identify import normalise_record
from target_pardot.matching import Identity, first_layer
from target_pardot.prepare import Prepared
from target_pardot.settings import Settings

BASE = {"business_unit_id": "0Uv000000000001AAA", "access_token": "t"}


def settings(**overrides: Any) -> Settings:
    return Settings.from_config({**BASE, **overrides})


def identity_of(item: Prepared, config: Settings) -> Identity:
    """The identity the configured API version's dialect gives the record."""
    tools = RunTools(config, None, None, None, None)  # type: ignore[arg-type]
    return DIALECTS[config.api_version](tools).identity_of(item)


def prepared(
    record: dict[str, Any], fields: dict[str, Any] | None = None, lookup: str | None = None
) -> Prepared:
    return Prepared(normalise_record("users", record), fields or {}, lookup)


def test_pardot_id_wins_over_fid_lookup_and_email() -> None:
    record = {
        "userId": "u1",
        "traits": {"email": "a@x.com", "org_id": "o1"},
        "integrations": {"Pardot": {"id": "17", "fid": "00Q1"}},
    }
    identity = identity_of(prepared(record, lookup="o1"), settings(lookup_field="org_id"))
    assert (identity.kind, identity.value, identity.fid) == ("id", "17", "00Q1")


def test_fid_wins_over_lookup_and_email() -> None:
    record = {
        "userId": "u1",
        "traits": {"email": "a@x.com"},
        "integrations": {"Pardot": {"fid": "00Q1"}},
    }
    assert identity_of(prepared(record, lookup="o1"), settings(lookup_field="org")).kind == "fid"


def test_lookup_wins_over_email() -> None:
    identity = identity_of(prepared({"email": "a@x.com"}, lookup="o1"), settings(lookup_field="o"))
    assert (identity.kind, identity.value) == ("lookup", "o1")


def test_email_is_matched_case_insensitively() -> None:
    identity = identity_of(prepared({"email": "Ann@X.com"}), settings())
    assert (identity.kind, identity.value) == ("email", "ann@x.com")


def test_v3_ignores_fid_and_uses_the_email() -> None:
    record = {"email": "a@x.com", "pardot_fid": "00Q1"}
    assert identity_of(prepared(record), settings(api_version=3)).kind == "email"


def test_without_match_by_email_every_email_only_record_is_new() -> None:
    config = settings(match_by_email=False)
    first = identity_of(prepared({"email": "a@x.com"}), config)
    second = identity_of(prepared({"email": "a@x.com"}), config)
    assert first.kind == second.kind == "new"
    assert first != second


def test_repeats_of_one_identity_merge_in_order_later_values_win() -> None:
    records = [
        prepared({"email": "a@x.com"}, {"first_name": "Ann", "city": "Oslo"}),
        prepared({"email": "b@x.com"}, {"first_name": "Bob"}),
        prepared({"email": "A@x.com"}, {"city": "Bergen"}),
    ]
    config = settings()
    groups, members, _keys, _later = first_layer(records, lambda item: identity_of(item, config))
    assert members == records
    assert [g.identity.value for g in groups] == ["a@x.com", "b@x.com"]
    assert groups[0].fields == {"first_name": "Ann", "city": "Bergen"}
    assert groups[0].email == "A@x.com"
    assert len(groups[0].members) == 2


def layers(records: list[Prepared], config: Settings) -> list[list[str]]:
    """The batch as the run hands it over: layer after layer, each record by its city, each
    pass starting from the floors the one before left."""
    handed_over = []
    rest = records
    floor: dict[int, int] = {}
    while rest:
        layer = first_layer(rest, lambda item: identity_of(item, config), floor=floor)
        handed_over.append([item.fields["city"] for item in layer.records])
        rest = [item for item in rest if all(item is not taken for taken in layer.records)]
        floor = layer.later
    return handed_over


def test_a_batch_with_one_identity_per_prospect_is_one_layer() -> None:
    records = [
        prepared({"email": "a@x.com"}, {"city": "1"}),
        prepared({"email": "b@x.com", "pardot_id": "7"}, {"city": "2"}),
        prepared({"email": "c@x.com", "pardot_fid": "00Q1"}, {"city": "3"}),
        prepared({"email": "a@x.com"}, {"city": "4"}),  # same identity: merged
    ]
    assert layers(records, settings()) == [["1", "2", "3", "4"]]


def test_a_record_naming_an_earlier_records_email_through_another_identity_waits() -> None:
    records = [
        prepared({"email": "a@x.com"}, {"city": "by email"}),
        prepared({"email": "b@x.com"}, {"city": "other"}),
        prepared({"email": "A@x.com", "pardot_id": "7"}, {"city": "by id"}),
        prepared({"email": "a@x.com"}, {"city": "by email again"}),
    ]
    # What the pipeline holds while the first layer is written: what its records name.
    assert first_layer(records, lambda item: identity_of(item, settings())).keys == {
        "email a@x.com",
        "email b@x.com",
    }
    # The last record comes after the id record, which comes after the first: three layers,
    # and the unrelated record is not held back.
    assert layers(records, settings()) == [
        ["by email", "other"],
        ["by id"],
        ["by email again"],
    ]


def test_a_record_of_an_identity_waits_for_a_later_layer_holding_that_identity() -> None:
    records = [
        prepared({"email": "a@x.com"}, {"city": "1"}),
        prepared({"email": "a@x.com", "pardot_id": "7"}, {"city": "2"}),
        prepared({"pardot_id": "7"}, {"city": "3"}),  # no email, but id 7 is in layer 2
    ]
    assert layers(records, settings()) == [["1"], ["2", "3"]]


def test_an_id_with_and_without_a_fid_are_ordered() -> None:
    records = [
        prepared({"pardot_id": "7", "pardot_fid": "00Q1"}, {"city": "1"}),
        prepared({"pardot_id": "7"}, {"city": "2"}),
    ]
    assert layers(records, settings()) == [["1"], ["2"]]


def test_v3_orders_an_id_and_an_email_of_one_prospect() -> None:
    records = [
        prepared({"email": "a@x.com", "pardot_id": "7"}, {"city": "1"}),
        prepared({"email": "a@x.com"}, {"city": "2"}),
    ]
    assert layers(records, settings(api_version=3)) == [["1"], ["2"]]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"pardot_id": "7"}, {"pardot_id": "8"}),  # two ids: two prospects
        ({"org_id": "o1"}, {"org_id": "o2"}),  # two lookup values: two prospects
    ],
)
def test_ids_or_lookup_values_sharing_an_email_are_not_ordered(
    first: dict[str, str], second: dict[str, str]
) -> None:
    records = [
        prepared({"email": "a@x.com", **first}, {"city": "1"}, first.get("org_id")),
        prepared({"email": "a@x.com", **second}, {"city": "2"}, second.get("org_id")),
    ]
    assert layers(records, settings(lookup_field="org_id")) == [["1", "2"]]


def test_two_fids_sharing_an_email_are_ordered() -> None:
    # A lead and a contact of one person may be one prospect.
    records = [
        prepared({"email": "a@x.com", "pardot_fid": "00Q1"}, {"city": "1"}),
        prepared({"email": "a@x.com", "pardot_fid": "0031"}, {"city": "2"}),
    ]
    assert layers(records, settings()) == [["1"], ["2"]]


def test_records_that_always_create_are_ordered_only_against_matched_ones() -> None:
    config = settings(match_by_email=False, lookup_field="org_id")
    records = [
        prepared({"email": "a@x.com"}, {"city": "new 1"}),
        prepared({"email": "a@x.com"}, {"city": "new 2"}),
        # may claim the prospect the creates made (on_empty_lookup match_by_email)
        prepared({"email": "a@x.com", "org_id": "o1"}, {"city": "lookup"}, "o1"),
    ]
    assert layers(records, config) == [["new 1", "new 2"], ["lookup"]]


def test_records_finding_resolved_to_one_prospect_are_ordered() -> None:
    config = settings()
    records = [
        prepared({"email": "a@x.com"}, {"city": "by email"}),
        prepared({"email": "b@x.com"}, {"city": "other"}),
        prepared({"pardot_id": "7"}, {"city": "by id"}),
        prepared({"email": "a@x.com"}, {"city": "by email again"}),
    ]
    # Finding showed a@x.com to be prospect 7.
    prospect_of = {id(records[0]): 7, id(records[2]): 7, id(records[3]): 7}
    layer = first_layer(records, lambda item: identity_of(item, config), prospect_of=prospect_of)
    assert [item.fields["city"] for item in layer.records] == ["by email", "other"]


def test_an_id_record_that_changed_the_email_waits_for_a_record_of_that_email() -> None:
    """Prospect 7 takes b@x.com, an email record of b@x.com follows (it may be 7), then 7 takes
    its old email back: the last id record must land after the email record."""
    records = [
        prepared({"pardot_id": "7", "email": "b@x.com"}, {"city": "7 takes b"}),
        prepared({"email": "b@x.com"}, {"city": "b"}),
        prepared({"pardot_id": "7", "email": "a@x.com"}, {"city": "7 takes a back"}),
    ]
    config = settings()
    first = first_layer(records, lambda item: identity_of(item, config))
    # Once the first layer is written, nothing the rest names links them: the floors keep
    # the order the first pass saw.
    assert first.later == {id(records[1]): 0, id(records[2]): 1}
    assert layers(records, config) == [["7 takes b"], ["b"], ["7 takes a back"]]


def test_an_email_record_after_the_id_took_another_email_waits_for_it() -> None:
    records = [
        prepared({"pardot_id": "7", "email": "b@x.com"}, {"city": "7 takes b"}),
        prepared({"email": "b@x.com"}, {"city": "b"}),
        prepared({"pardot_id": "7", "email": "a@x.com"}, {"city": "7 takes a back"}),
        # Not prospect 7 any more: must be found after 7 took a@x.com back.
        prepared({"email": "b@x.com"}, {"city": "b again"}),
        prepared({"email": "c@x.com"}, {"city": "unrelated"}),
    ]
    assert layers(records, settings()) == [
        ["7 takes b", "unrelated"],
        ["b"],
        ["7 takes a back"],
        ["b again"],
    ]


def test_a_record_found_to_the_prospect_of_an_earlier_held_back_id_record_waits_for_it() -> None:
    config = settings()
    records = [
        prepared({"email": "a@x.com"}, {"city": "a"}),
        prepared({"pardot_id": "7", "email": "a@x.com"}, {"city": "7"}),  # after "a"
        prepared({"email": "b@x.com"}, {"city": "b"}),  # first layer, until found to be 7
    ]
    first = first_layer(records, lambda item: identity_of(item, config))
    assert [item.fields["city"] for item in first.records] == ["a", "b"]
    # Finding (of the first layer) showed b@x.com to be prospect 7, which the id record names.
    prospect_of = {id(records[0]): 5, id(records[2]): 7}
    again = first_layer(records, lambda item: identity_of(item, config), prospect_of=prospect_of)
    assert [item.fields["city"] for item in again.records] == ["a"]
    assert again.later == {id(records[1]): 0, id(records[2]): 1}


def test_a_floor_keeps_a_record_out_of_the_first_layer() -> None:
    config = settings()
    records = [
        prepared({"email": "a@x.com"}, {"city": "a"}),
        prepared({"email": "b@x.com"}, {"city": "b"}),
    ]
    layer = first_layer(records, lambda item: identity_of(item, config), floor={id(records[1]): 1})
    assert [item.fields["city"] for item in layer.records] == ["a"]
    assert layer.later == {id(records[1]): 0}


def test_a_record_of_a_lookup_value_waits_for_the_pardot_id_record_writing_that_value() -> None:
    config = settings(lookup_field="org_id")
    records = [
        prepared({"pardot_id": "7", "email": "a@x.com"}, {"city": "7 takes o2"}, "o2"),
        prepared({"email": "b@x.com", "org_id": "o2"}, {"city": "o2"}, "o2"),
    ]
    layer = first_layer(records, lambda item: identity_of(item, config))
    assert [item.fields["city"] for item in layer.records] == ["7 takes o2"]
    # Also held for the next batch: it is matched only once 7 holds o2.
    assert "lookup o2" in layer.keys


def test_floors_that_would_leave_the_first_layer_empty_are_ignored() -> None:
    """A batch must not stall: its first record then goes first."""
    config = settings()
    records = [
        prepared({"email": "a@x.com"}, {"city": "a"}),
        prepared({"email": "b@x.com"}, {"city": "b"}),
    ]
    floor = {id(records[0]): 1, id(records[1]): 2}
    layer = first_layer(records, lambda item: identity_of(item, config), floor=floor)
    assert [item.fields["city"] for item in layer.records] == ["a", "b"]
