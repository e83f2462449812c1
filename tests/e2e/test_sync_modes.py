"""End to end, sync_mode: update_only never creates, create_only never touches an existing
prospect, in every API version, and the summary counts what each mode skipped and why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pardot_emulator import PardotEmulator
from tests.conftest import TargetRun, run_target, singer_messages, target_config

LONG_AGO = "2020-01-01 00:00:00"  # v5 tells a create from an update by createdAt
VERSIONS = [(3, False), (4, True), (5, True)]
IDS = ["v3", "v4", "v5"]

# Endpoints that can make a prospect, and those that can change one, per version.
CREATING = {
    3: {"v3.prospect.batchCreate", "v3.prospect.batchUpsert"},
    4: {"v4.prospect.batchUpsert", "v4.prospect.batchCreate"},
    5: {"v5.prospects.create", "v5.prospects.upsertLatestByEmail"},
}
UPDATING = {
    3: {"v3.prospect.batchUpdate", "v3.prospect.batchUpsert"},
    4: {"v4.prospect.batchUpdate"},
    5: {"v5.prospects.update", "v5.prospects.upsertLatestByEmail"},
}


def unit(make_emulator: Any, ampsea: bool) -> tuple[PardotEmulator, dict[str, Any]]:
    emulator: PardotEmulator = make_emulator(ampsea=ampsea)
    emulator.add_custom_field("org_id")
    old = emulator.add_prospect(
        "old@x.com", first_name="Old", org_id="o-1", created_at=LONG_AGO, updated_at=LONG_AGO
    )
    return emulator, old


def sync(
    emulator: PardotEmulator, tmp_path: Path, records: list[dict[str, Any]], **settings: Any
) -> TargetRun:
    result = run_target(
        target_config(emulator, tmp_path, **settings), singer_messages("users", records), tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def emails(emulator: PardotEmulator) -> list[str]:
    return sorted(prospect["email"] for prospect in emulator.prospects())


RECORDS = [{"email": "old@x.com", "city": "Oslo"}, {"email": "new@x.com", "city": "Rome"}]


@pytest.mark.parametrize(("api_version", "ampsea"), VERSIONS, ids=IDS)
def test_update_only_updates_what_exists_and_skips_the_rest(
    make_emulator: Any, tmp_path: Path, api_version: int, ampsea: bool
) -> None:
    emulator, old = unit(make_emulator, ampsea)
    result = sync(emulator, tmp_path, RECORDS, api_version=api_version, sync_mode="update_only")
    assert emails(emulator) == ["old@x.com"]
    assert emulator.prospect(old["id"])["city"] == "Oslo"
    assert "1 updated" in result.summary
    assert "1 skipped (no existing prospect, sync_mode update_only: 1)" in result.summary
    assert not set(emulator.call_counts) & (CREATING[api_version] - UPDATING[api_version])


@pytest.mark.parametrize(("api_version", "ampsea"), VERSIONS, ids=IDS)
def test_create_only_creates_what_is_new_and_leaves_existing_prospects_alone(
    make_emulator: Any, tmp_path: Path, api_version: int, ampsea: bool
) -> None:
    emulator, old = unit(make_emulator, ampsea)
    result = sync(emulator, tmp_path, RECORDS, api_version=api_version, sync_mode="create_only")
    assert emails(emulator) == ["new@x.com", "old@x.com"]
    assert emulator.prospect(old["id"])["city"] is None
    assert "1 created" in result.summary
    assert "1 skipped (the prospect exists, sync_mode create_only: 1)" in result.summary
    assert not set(emulator.call_counts) & (UPDATING[api_version] - CREATING[api_version])


@pytest.mark.parametrize(("api_version", "ampsea"), VERSIONS[:2], ids=IDS[:2])
def test_update_only_never_creates_a_prospect_for_an_unknown_pardot_id(
    make_emulator: Any, tmp_path: Path, api_version: int, ampsea: bool
) -> None:
    # batchUpsert would create one from the email (v3 falls back to it, v4 creates by it).
    emulator, _ = unit(make_emulator, ampsea)
    record = {"pardot_id": "99999", "email": "ghost@x.com", "city": "Oslo"}
    result = sync(emulator, tmp_path, [record], api_version=api_version, sync_mode="update_only")
    assert emails(emulator) == ["old@x.com"]
    assert "0 created" in result.summary


@pytest.mark.parametrize("api_version", [4, 5])
@pytest.mark.parametrize("strategy", ["read", "scan"])
@pytest.mark.parametrize("sync_mode", ["update_only", "create_only"])
def test_lookup_records_follow_the_sync_mode(
    make_emulator: Any, tmp_path: Path, api_version: int, strategy: str, sync_mode: str
) -> None:
    emulator, old = unit(make_emulator, ampsea=True)
    records = [
        {"email": "old@x.com", "org_id": "o-1", "city": "Oslo"},
        {"email": "new@x.com", "org_id": "o-2", "city": "Rome"},
        {"userId": "u", "traits": {"org_id": "o-3", "city": "Rome"}},  # no email: cannot create
    ]
    result = sync(
        emulator,
        tmp_path,
        records,
        api_version=api_version,
        lookup_field="org_id",
        lookup_strategy=strategy,
        sync_mode=sync_mode,
    )
    if sync_mode == "update_only":
        assert emails(emulator) == ["old@x.com"]
        assert emulator.prospect(old["id"])["city"] == "Oslo"
        # The record without an email is skipped too: nothing would have been created for it.
        assert "2 skipped (no existing prospect, sync_mode update_only: 2)" in result.summary
        assert result.rejects == []
    else:
        assert emails(emulator) == ["new@x.com", "old@x.com"]
        assert emulator.prospect(old["id"])["city"] is None
        assert "1 skipped (the prospect exists, sync_mode create_only: 1)" in result.summary
        [reject] = result.rejects
        assert "no email to create one with" in reject["reason"]
