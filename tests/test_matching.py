"""Matching rules: which identity a record has in each version, and how repeats merge."""

from __future__ import annotations

from typing import Any

from target_pardot.dialects import DIALECTS, RunTools
from target_pardot.identify import normalise_record
from target_pardot.matching import Identity, group_records
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
    groups = group_records(records, lambda item: identity_of(item, config))
    assert [g.identity.value for g in groups] == ["a@x.com", "b@x.com"]
    assert groups[0].fields == {"first_name": "Ann", "city": "Bergen"}
    assert groups[0].email == "A@x.com"
    assert len(groups[0].members) == 2
