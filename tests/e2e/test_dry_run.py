"""End to end, dry_run: every read and no write, a summary of what a real run would do, and a
real run on the same input that does just that."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pardot_emulator import PardotEmulator
from tests.conftest import TargetRun, run_target, singer_messages, target_config

LONG_AGO = "2020-01-01 00:00:00"
# Every endpoint that only reads; anything else the emulator counted would be a write.
READS = {
    "oauth.token",
    "v3.customField.query",
    "v4.customField.query",
    "v3.prospect.query",
    "v4.prospect.query",
    "v3.prospect.read",
    "v4.prospect.read",
    "v5.customFields.query",
    "v5.prospects.query",
    "v5.prospects.read",
}


def batches_of_records(lookup: bool) -> list[dict[str, Any]]:
    """Two batches of 3 (batch_size_rows 3): new1 is created by the first and seen again in the
    second, where a real run finds the prospect the first made."""

    def person(email: str, **traits: Any) -> dict[str, Any]:
        org_id = {"org_id": f"org-{email.split('@')[0]}"} if lookup else {}
        return {"email": email, **org_id, **traits}

    return [
        person("old@x.com", city="Oslo"),
        person("new1@x.com", city="Rome"),
        {"email": "not-an-email", "org_id": "org-bad"},  # rejected before any call
        person("new1@x.com", city="Paris"),
        person("new2@x.com", city="Lima"),
        {**person("off@x.com"), "integrations": {"Pardot": False}},  # skipped
    ]


def counts(summary: str) -> dict[str, int]:
    found = re.findall(
        r"(?:(\d+) (created or updated|created|updated|rejected|skipped))"
        r"|(?:would (create|update) (\d+))|(?:would (upsert) (\d+) by email)",
        summary,
    )
    result: dict[str, int] = {}
    for n, name, would, would_n, upsert, upsert_n in found:
        if name:
            result[name] = int(n)
        elif would:
            result[f"would {would}"] = int(would_n)
        else:
            result[f"would {upsert}"] = int(upsert_n)
    return result


def unit(make_emulator: Any, ampsea: bool) -> PardotEmulator:
    emulator: PardotEmulator = make_emulator(ampsea=ampsea)
    emulator.add_custom_field("org_id")
    emulator.add_prospect(
        "old@x.com", first_name="Old", org_id="org-old", created_at=LONG_AGO, updated_at=LONG_AGO
    )
    return emulator


def run(emulator: PardotEmulator, tmp_path: Path, lookup: bool, **settings: Any) -> TargetRun:
    tmp_path.mkdir(exist_ok=True)
    if lookup:
        settings["lookup_field"] = "org_id"
    result = run_target(
        target_config(emulator, tmp_path, batch_size_rows=3, **settings),
        singer_messages("users", batches_of_records(lookup), state={"done": True}),
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


CASES = [
    pytest.param(3, False, False, id="v3-email"),
    pytest.param(4, True, False, id="v4-email"),
    pytest.param(4, True, True, id="v4-lookup"),
    pytest.param(5, True, False, id="v5-email"),
    pytest.param(5, True, True, id="v5-lookup"),
]


@pytest.mark.parametrize(("api_version", "ampsea", "lookup"), CASES)
def test_a_dry_run_writes_nothing_and_the_real_run_does_what_it_planned(
    make_emulator: Any, tmp_path: Path, api_version: int, ampsea: bool, lookup: bool
) -> None:
    emulator = unit(make_emulator, ampsea)
    before = emulator.prospects()

    dry = run(emulator, tmp_path / "dry", lookup, api_version=api_version, dry_run=True)
    assert set(emulator.call_counts) <= READS, emulator.call_counts
    assert emulator.prospects() == before
    assert "dry run, nothing written" in dry.summary
    # Nothing was applied, so no STATE is passed on: the tap's next run reads the same records.
    assert dry.states == []
    [reject] = dry.rejects  # the reject file is written as usual
    assert reject["record"]["email"] == "not-an-email"
    planned = counts(dry.summary)
    assert (planned["skipped"], planned["rejected"]) == (1, 1)

    real = run(emulator, tmp_path / "real", lookup, api_version=api_version)
    assert real.states[-1] == {"done": True}
    done = counts(real.summary)
    assert (done["skipped"], done["rejected"]) == (1, 1)
    assert len(emulator.prospects()) == 3  # old, new1 once, new2
    if "would upsert" not in planned:
        # Creates and updates were known when planning: the real run matches them exactly,
        # new1 included (created by the first batch, updated by the second).
        assert (planned["would create"], planned["would update"]) == (2, 2)
        assert (done["created"], done["updated"]) == (2, 2)
    else:
        # Pardot chooses between create and update for an upsert by email: the totals match.
        written = sum(done.get(k, 0) for k in ("created", "updated", "created or updated"))
        assert written == planned["would upsert"] + planned["would update"] == 4


def test_an_identity_planned_as_a_create_counts_once_as_created(
    make_emulator: Any, tmp_path: Path
) -> None:
    emulator = unit(make_emulator, ampsea=True)
    dry = run(emulator, tmp_path, lookup=False, api_version=4, dry_run=True)
    # new1 and new2 would be created; old, and new1 in the second batch, would be updated.
    assert "would create 2, would update 2" in dry.summary
    assert emulator.prospects() == [emulator.prospects()[0]]


def test_a_dry_run_in_update_only_says_what_it_would_skip(
    make_emulator: Any, tmp_path: Path
) -> None:
    emulator = unit(make_emulator, ampsea=True)
    dry = run(
        emulator, tmp_path, lookup=False, api_version=4, dry_run=True, sync_mode="update_only"
    )
    assert "would create 0, would update 1" in dry.summary
    assert "4 skipped (Segment's integrations switch Pardot off: 1, " in dry.summary
    assert "no existing prospect, sync_mode update_only: 3" in dry.summary
    assert set(emulator.call_counts) <= READS
