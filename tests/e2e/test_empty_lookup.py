"""End to end, on_empty_lookup: lookup_field turned on over a business unit whose prospects have
that field empty. By default they are claimed (no duplicates); create and reject as asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pardot_emulator import PardotEmulator
from tests.conftest import TargetRun, run_target, singer_messages, target_config

RECORDS = [
    {"email": "ann@x.com", "org_id": "o-1", "city": "Oslo"},
    {"email": "ann@x.com", "org_id": "o-2", "city": "Rome"},  # a second person, same email
    {"email": "cid@x.com", "org_id": "o-3", "city": "Lima"},  # nobody with this email yet
]
VERSIONS_AND_STRATEGIES = [
    pytest.param(version, strategy, id=f"v{version}-{strategy}")
    for version in (4, 5)
    for strategy in ("read", "scan")
]


@pytest.fixture
def unit(make_emulator: Any) -> PardotEmulator:
    emulator: PardotEmulator = make_emulator(ampsea=True)
    emulator.add_custom_field("org_id")
    # Made before org_id was used: both have it empty.
    emulator.add_prospect("ann@x.com", first_name="Older", updated_at="2023-01-01 00:00:00")
    emulator.add_prospect("ann@x.com", first_name="Newer", updated_at="2024-01-01 00:00:00")
    return emulator


def sync(emulator: PardotEmulator, tmp_path: Path, version: int, **settings: Any) -> TargetRun:
    tmp_path.mkdir(exist_ok=True)
    result = run_target(
        target_config(emulator, tmp_path, api_version=version, lookup_field="org_id", **settings),
        singer_messages("users", RECORDS),
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def by_name(emulator: PardotEmulator) -> dict[str, dict[str, Any]]:
    return {str(p["first_name"] or p["email"]): p for p in emulator.prospects()}


@pytest.mark.parametrize(("version", "strategy"), VERSIONS_AND_STRATEGIES)
def test_match_by_email_claims_the_empty_prospects_and_makes_no_duplicate(
    unit: PardotEmulator, tmp_path: Path, version: int, strategy: str
) -> None:
    first = sync(unit, tmp_path / "first", version, lookup_strategy=strategy)
    prospects = by_name(unit)
    assert len(prospects) == 3  # the two Anns, and Cid
    # The most recently updated one is claimed first; the second value takes the other one.
    assert (prospects["Newer"]["org_id"], prospects["Newer"]["city"]) == ("o-1", "Oslo")
    assert (prospects["Older"]["org_id"], prospects["Older"]["city"]) == ("o-2", "Rome")
    assert "1 created, 2 updated" in first.summary
    assert "2 of the updates claimed a prospect with the record's email whose org_id was empty" in (
        first.stderr
    )
    assert '"result":"claimed"' in first.stderr  # the METRIC line

    again = sync(unit, tmp_path / "again", version, lookup_strategy=strategy)
    assert len(unit.prospects()) == 3
    assert "0 created, 3 updated" in again.summary
    assert "claimed a prospect" not in again.stderr


@pytest.mark.parametrize(("version", "strategy"), VERSIONS_AND_STRATEGIES)
def test_create_makes_a_prospect_beside_them_and_says_so(
    unit: PardotEmulator, tmp_path: Path, version: int, strategy: str
) -> None:
    result = sync(unit, tmp_path, version, lookup_strategy=strategy, on_empty_lookup="create")
    assert len(unit.prospects()) == 5
    assert by_name(unit)["Newer"]["org_id"] is None
    assert "3 created" in result.summary
    assert "on_empty_lookup create: prospects with a record's email but an empty org_id" in (
        result.stderr
    )


@pytest.mark.parametrize(("version", "strategy"), VERSIONS_AND_STRATEGIES)
def test_reject_refuses_the_records_naming_the_lookup_field(
    unit: PardotEmulator, tmp_path: Path, version: int, strategy: str
) -> None:
    result = sync(unit, tmp_path, version, lookup_strategy=strategy, on_empty_lookup="reject")
    assert len(unit.prospects()) == 3  # only Cid was created
    assert [reject["field"] for reject in result.rejects] == ["org_id", "org_id"]
    assert all(
        "2 prospects with the record's email have org_id empty" in r["reason"]
        for r in result.rejects
    )
    assert "1 created" in result.summary and "2 rejected" in result.summary
