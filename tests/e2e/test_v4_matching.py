"""End to end, what only v4 does: the real command against the emulator (AMPSEA on).

The matching rules v4 shares with v5 (Pardot id, fid, lookup field, email only, strategies,
duplicates, switched-off events...) are in test_matching_rules, run on both versions. Here: v4
refusing a unit without AMPSEA, and what v4 runs cost in API calls.
"""

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


def test_a_pardot_id_pardot_does_not_know_is_rejected_not_created_on_every_run(
    ampsea: PardotEmulator, tmp_path: Path
) -> None:
    # batchUpsert creates a prospect for an unknown id when the item has an email: a record
    # naming a prospect since deleted or merged made a new duplicate on every run, counted as
    # updated. Updates by id now go to batchUpdate, which refuses the id (3), beside the
    # batch's creates in batchUpsert.
    known = ampsea.add_prospect(email="known@x.com")
    records = [
        {"pardot_id": "99999", "email": "gone@x.com", "first_name": "Gone"},
        {"pardot_id": str(known["id"]), "first_name": "Known"},
        {"email": "new@x.com", "first_name": "New"},
    ]
    for run in range(2):
        result = sync(ampsea, tmp_path, records, reject_file=str(tmp_path / f"rejects{run}.jsonl"))
        assert "1 rejected" in result.summary, result.summary
        [reject] = result.rejects
        assert (reject["field"], reject["code"]) == ("pardot_id", 3)
        assert reject["record"] == records[0]

    emails = sorted(p["email"] for p in ampsea.prospects())
    assert emails == ["known@x.com", "new@x.com"]  # no gone@x.com, however many runs
    assert ampsea.prospect(known["id"])["first_name"] == "Known"
    calls = ampsea.stats()["call_counts"]
    # Run 1: the two updates by id in one batchUpdate, the create beside it in a batchUpsert.
    # Run 2: new@x.com is found, so all three are updates by id: one batchUpdate.
    assert (calls["v4.prospect.batchUpdate"], calls["v4.prospect.batchUpsert"]) == (2, 1)
