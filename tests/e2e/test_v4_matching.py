"""End to end, v4 matching rules: each rule in its own test, against the emulator (AMPSEA on)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pardot_emulator import PardotEmulator
from tests.conftest import run_target, singer_messages, target_config


@pytest.fixture
def ampsea(make_emulator: Any) -> PardotEmulator:
    emulator = make_emulator(ampsea=True)
    emulator.add_custom_field("org_id")
    return emulator


def sync(
    emulator: PardotEmulator, tmp_path: Path, records: list[dict[str, Any]], **settings: Any
) -> Any:
    result = run_target(
        target_config(emulator, tmp_path, api_version=4, **settings),
        singer_messages("users", records),
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_pardot_id_updates_that_prospect_even_when_others_share_the_email(
    ampsea: PardotEmulator, tmp_path: Path
) -> None:
    first = ampsea.add_prospect(email="ann@x.com", first_name="A1")
    second = ampsea.add_prospect(email="ann@x.com", first_name="A2")
    sync(
        ampsea,
        tmp_path,
        [
            {
                "userId": "u",
                "traits": {"email": "ann@x.com", "firstName": "New"},
                "integrations": {"Pardot": {"id": str(first["id"])}},
            }
        ],
    )
    assert ampsea.prospect(first["id"])["first_name"] == "New"
    assert ampsea.prospect(second["id"])["first_name"] == "A2"
    assert len(ampsea.prospects()) == 2


def test_fid_updates_the_prospect_with_that_crm_id(ampsea: PardotEmulator, tmp_path: Path) -> None:
    lead = ampsea.add_prospect(email="bob@x.com", crm_lead_fid="00Q000000000001")
    sync(ampsea, tmp_path, [{"pardot_fid": "00Q000000000001", "company": "Acme"}])
    assert ampsea.prospect(lead["id"])["company"] == "Acme"
    assert len(ampsea.prospects()) == 1


def test_id_and_fid_of_different_prospects_is_rejected_with_the_reason(
    ampsea: PardotEmulator, tmp_path: Path
) -> None:
    one = ampsea.add_prospect(email="a@x.com")
    ampsea.add_prospect(email="b@x.com", crm_contact_fid="003000000000002")
    result = sync(
        ampsea,
        tmp_path,
        [{"pardot_id": str(one["id"]), "pardot_fid": "003000000000002", "city": "Oslo"}],
    )
    [reject] = result.rejects
    assert reject["code"] == 81
    assert "do not match" in reject["reason"]
    assert ampsea.prospect(one["id"])["city"] is None


def test_unknown_pardot_id_is_rejected(ampsea: PardotEmulator, tmp_path: Path) -> None:
    result = sync(ampsea, tmp_path, [{"pardot_id": "999999", "city": "Oslo"}])
    [reject] = result.rejects
    assert reject["code"] == 3 and reject["field"] == "pardot_id"
    assert ampsea.prospects() == []


def test_lookup_by_trait_updates_the_prospect_with_that_value(
    ampsea: PardotEmulator, tmp_path: Path
) -> None:
    other = ampsea.add_prospect(email="kim@x.com", org_id="org-1")
    match = ampsea.add_prospect(email="kim@x.com", org_id="org-2")
    sync(
        ampsea,
        tmp_path,
        [
            {"email": "kim@x.com", "org_id": "org-2", "city": "Oslo"},
            {"email": "kim@x.com", "org_id": "org-3", "city": "Rome"},
        ],
        lookup_field="org_id",
    )
    assert ampsea.prospect(match["id"])["city"] == "Oslo"
    assert ampsea.prospect(other["id"])["city"] is None
    created = [p for p in ampsea.prospects() if p["org_id"] == "org-3"]
    assert len(created) == 1 and created[0]["city"] == "Rome"


def test_lookup_by_user_id_matches_and_writes_the_user_id(
    ampsea: PardotEmulator, tmp_path: Path
) -> None:
    known = ampsea.add_prospect(email="lee@x.com", org_id="user-7")
    sync(
        ampsea,
        tmp_path,
        [
            {"userId": "user-7", "traits": {"email": "lee@x.com", "firstName": "Lee"}},
            {"userId": "user-8", "traits": {"email": "lee@x.com", "firstName": "Other"}},
        ],
        lookup_field="org_id",
        use_user_id_as_lookup=True,
    )
    assert ampsea.prospect(known["id"])["first_name"] == "Lee"
    [created] = [p for p in ampsea.prospects() if p["id"] != known["id"]]
    assert created["org_id"] == "user-8" and created["first_name"] == "Other"


def test_a_record_without_a_lookup_value_is_rejected_naming_the_field(
    ampsea: PardotEmulator, tmp_path: Path
) -> None:
    result = sync(ampsea, tmp_path, [{"email": "x@x.com", "city": "Oslo"}], lookup_field="org_id")
    [reject] = result.rejects
    assert reject["field"] == "org_id" and "org_id" in reject["reason"]
    assert ampsea.prospects() == []


def test_email_only_updates_the_most_recently_updated_and_twice_never_duplicates(
    ampsea: PardotEmulator, tmp_path: Path
) -> None:
    older = ampsea.add_prospect(email="eve@x.com", updated_at="2020-01-01 00:00:00")
    newer = ampsea.add_prospect(email="eve@x.com", updated_at="2024-01-01 00:00:00")
    records = [{"email": "eve@x.com", "city": "Oslo"}, {"email": "zed@x.com", "city": "Rome"}]
    sync(ampsea, tmp_path, records)
    sync(ampsea, tmp_path, records)
    assert ampsea.prospect(newer["id"])["city"] == "Oslo"
    assert ampsea.prospect(older["id"])["city"] is None
    assert sorted(p["email"] for p in ampsea.prospects()) == ["eve@x.com", "eve@x.com", "zed@x.com"]


def test_match_by_email_false_applies_pardots_raw_rule(
    ampsea: PardotEmulator, tmp_path: Path
) -> None:
    ampsea.add_prospect(email="eve@x.com")
    sync(ampsea, tmp_path, [{"email": "eve@x.com", "city": "Oslo"}], match_by_email=False)
    assert len([p for p in ampsea.prospects() if p["email"] == "eve@x.com"]) == 2
    assert ampsea.call_counts.get("v4.prospect.read", 0) == 0


def test_scan_finds_a_prospect_whose_email_changed_and_updates_its_email(
    ampsea: PardotEmulator, tmp_path: Path
) -> None:
    known = ampsea.add_prospect(email="old@x.com", org_id="org-1")
    sync(
        ampsea,
        tmp_path,
        [{"email": "new@x.com", "org_id": "org-1"}],
        lookup_field="org_id",
        lookup_strategy="scan",
    )
    assert [p["email"] for p in ampsea.prospects()] == ["new@x.com"]
    assert ampsea.prospect(known["id"])["email"] == "new@x.com"


def test_duplicate_identities_in_one_batch_are_merged_not_created_twice(
    ampsea: PardotEmulator, tmp_path: Path
) -> None:
    result = sync(
        ampsea,
        tmp_path,
        [
            {"email": "a@x.com", "org_id": "org-1", "first_name": "One", "city": "Oslo"},
            {"email": "a@x.com", "org_id": "org-1", "first_name": "Two"},
        ],
        lookup_field="org_id",
    )
    [prospect] = ampsea.prospects()
    assert (prospect["first_name"], prospect["city"]) == ("Two", "Oslo")
    assert "1 merged as duplicates" in result.summary


def test_same_lookup_value_in_a_later_batch_updates_the_prospect_created_earlier(
    ampsea: PardotEmulator, tmp_path: Path
) -> None:
    records = [{"email": f"p{n}@x.com", "org_id": f"org-{n}"} for n in range(3)]
    records.append({"email": "p0@x.com", "org_id": "org-0", "city": "Later"})
    sync(ampsea, tmp_path, records, lookup_field="org_id", batch_size_rows=3)
    assert len(ampsea.prospects()) == 3
    assert [p["city"] for p in ampsea.prospects() if p["org_id"] == "org-0"] == ["Later"]


@pytest.mark.parametrize("strategy", ["read", "scan", "auto"])
def test_the_three_strategies_give_the_same_prospects(
    make_emulator: Any, tmp_path: Path, strategy: str
) -> None:
    emulator = make_emulator(ampsea=True)
    emulator.add_custom_field("org_id")
    for n in range(0, 30, 3):
        emulator.add_prospect(email=f"p{n}@x.com", org_id=f"org-{n}")
    records = [{"email": f"p{n}@x.com", "org_id": f"org-{n}", "city": f"C{n}"} for n in range(30)]
    sync(emulator, tmp_path, records, lookup_field="org_id", lookup_strategy=strategy)
    state = sorted((p["email"], p["org_id"], p["city"]) for p in emulator.prospects())
    assert state == sorted((f"p{n}@x.com", f"org-{n}", f"C{n}") for n in range(30))


def test_a_lookup_field_that_is_not_a_custom_field_stops_at_start_up(
    ampsea: PardotEmulator, tmp_path: Path
) -> None:
    result = run_target(
        target_config(ampsea, tmp_path, lookup_field="org_ident"),
        singer_messages("users", [{"email": "a@x.com", "org_ident": "1"}]),
        tmp_path,
    )
    assert result.returncode != 0
    assert "org_ident" in result.stderr and "org_id" in result.stderr
    assert ampsea.prospects() == []


def test_v4_on_a_unit_without_ampsea_says_to_use_api_version_3(
    make_emulator: Any, tmp_path: Path
) -> None:
    emulator = make_emulator(ampsea=False)
    result = run_target(
        target_config(emulator, tmp_path, api_version=4),
        singer_messages("users", [{"email": "a@x.com"}]),
        tmp_path,
    )
    assert result.returncode != 0
    assert "api_version to 3" in result.stderr


def test_cost_1000_id_or_fid_records_at_most_21_calls(
    ampsea: PardotEmulator, tmp_path: Path
) -> None:
    ids = [
        ampsea.add_prospect(email=f"p{n}@x.com", crm_lead_fid=f"00Q{n:012d}")["id"]
        for n in range(1000)
    ]
    records = [
        {"pardot_id": str(ids[n]), "city": "Oslo"}
        if n % 2
        else {"pardot_fid": f"00Q{n:012d}", "city": "Oslo"}
        for n in range(1000)
    ]
    sync(ampsea, tmp_path, records)
    assert ampsea.api_calls <= 21
    assert {p["city"] for p in ampsea.prospects()} == {"Oslo"}


@pytest.mark.parametrize(("strategy", "budget"), [("scan", 50 + 20 + 2), ("auto", 100 + 20 + 2)])
def test_cost_1000_lookup_records_against_10000_prospects(
    ampsea: PardotEmulator, tmp_path: Path, strategy: str, budget: int
) -> None:
    for n in range(10_000):
        ampsea.add_prospect(email=f"p{n}@x.com", org_id=f"org-{n}")
    records = [
        {"email": f"p{n}@x.com", "org_id": f"org-{n}", "city": "Oslo"} for n in range(0, 20_000, 20)
    ]  # half match existing prospects, half are new
    sync(ampsea, tmp_path, records, lookup_field="org_id", lookup_strategy=strategy)
    assert ampsea.api_calls <= budget
    assert len(ampsea.prospects()) == 10_500


def test_events_with_pardot_switched_off_are_skipped_and_counted(
    ampsea: PardotEmulator, tmp_path: Path
) -> None:
    result = sync(
        ampsea,
        tmp_path,
        [
            {"userId": "u1", "traits": {"email": "off@x.com"}, "integrations": {"Pardot": False}},
            {
                "userId": "u2",
                "traits": {"email": "on@x.com"},
                "integrations": {"All": False, "Pardot": True},
            },
        ],
    )
    assert [p["email"] for p in ampsea.prospects()] == ["on@x.com"]
    assert "1 skipped" in result.summary
    assert result.rejects == []
