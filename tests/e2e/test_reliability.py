"""Reliability end to end: faults together, quota exhaustion and resume; nothing lost or doubled."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pardot_emulator import PardotEmulator
from tests.conftest import run_target, singer_messages, target_config

RECORDS = 2000
SEEDED = 500  # prospects that already exist: half the traffic is updates of them


def records() -> list[dict[str, Any]]:
    return [
        {"email": f"p{n}@example.com", "first_name": f"F{n}", "city": f"City {n % 17}"}
        for n in range(RECORDS)
    ]


def seeded_emulator(make_emulator: Any, *, ampsea: bool, **knobs: Any) -> PardotEmulator:
    emulator: PardotEmulator = make_emulator(ampsea=ampsea)
    for n in range(0, RECORDS, RECORDS // SEEDED):
        # Made long before the run, as existing prospects are (v5 tells creates by createdAt).
        emulator.add_prospect(
            email=f"p{n}@example.com", first_name="Old", created_at="2020-01-01 00:00:00"
        )
    for name, value in knobs.items():
        setattr(emulator, name, value)
    return emulator


def assert_every_prospect_once_with_the_right_values(emulator: PardotEmulator) -> None:
    prospects = emulator.prospects()
    counts = Counter(p["email"] for p in prospects)
    duplicated = {email: n for email, n in counts.items() if n > 1}
    assert not duplicated, f"duplicated prospects: {list(duplicated)[:5]}"
    assert len(prospects) == RECORDS
    for prospect in prospects:
        n = int(prospect["email"].split("@")[0][1:])
        assert (prospect["first_name"], prospect["city"]) == (f"F{n}", f"City {n % 17}")


def summary_counts(stderr: str) -> dict[str, int]:
    """The closing summary's counts: {"created": n, "updated": n, ...}."""
    line = next(line for line in stderr.splitlines() if "target-pardot summary:" in line)
    counts = re.findall(r"(\d+) (created or updated|created|updated|rejected|unchanged)", line)
    return {name: int(n) for n, name in counts}


def touched(emulator: PardotEmulator) -> tuple[int, int]:
    """(prospects the run created, seeded prospects it updated), from what Pardot holds."""
    prospects = emulator.prospects()
    created = len(prospects) - SEEDED
    updated = sum(1 for p in prospects if p["first_name"] != "Old") - created
    return created, updated


def assert_the_summary_is_what_pardot_holds(
    stderr: str, emulator: PardotEmulator, api_version: int
) -> None:
    counts = summary_counts(stderr)
    created, updated = touched(emulator)
    if api_version == 3:
        # v3 batch answers do not say which items they created; what they do say is exact.
        assert counts.get("created", 0) <= created
        assert counts.get("updated", 0) <= updated
        assert sum(counts.get(k, 0) for k in ("created", "updated", "created or updated")) == (
            created + updated
        ), counts
    else:
        assert (counts.get("created", 0), counts.get("updated", 0)) == (created, updated), counts


FAULTS = {
    "fail_every": 7,
    "drop_after_commit_every": 11,
    "token_max_calls": 20,
    "concurrency_limit": 5,
}


@pytest.mark.parametrize(("api_version", "ampsea"), [(3, False), (4, True), (5, True)])
def test_faults_together_lose_and_duplicate_nothing(
    make_emulator: Any, tmp_path: Path, api_version: int, ampsea: bool
) -> None:
    emulator = seeded_emulator(make_emulator, ampsea=ampsea, **FAULTS)
    result = run_target(
        target_config(
            emulator,
            tmp_path,
            api_version=api_version,
            max_concurrency=5,
            max_retries=10,
            # What this test is about is the faults, not the time budget, which a loaded
            # machine can use up on a call that draws several faults in a row.
            max_retry_seconds=120,
        ),
        singer_messages("users", records(), state={"done": True}),
        tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.states == [{"done": True}]
    assert result.rejects == []
    assert emulator.max_in_flight <= 5
    assert emulator.token_calls > 1  # the token did expire and was refreshed
    assert_every_prospect_once_with_the_right_values(emulator)
    assert_the_summary_is_what_pardot_holds(result.stderr, emulator, api_version)


@pytest.mark.parametrize(("api_version", "ampsea"), [(3, False), (4, True), (5, True)])
def test_daily_quota_half_way_stops_then_the_next_run_completes_without_duplicates(
    make_emulator: Any, tmp_path: Path, api_version: int, ampsea: bool
) -> None:
    emulator = seeded_emulator(make_emulator, ampsea=ampsea)
    config = target_config(emulator, tmp_path, api_version=api_version)
    messages = singer_messages("users", records(), state_every=100, state={"done": True})

    emulator.daily_limit = 25
    first = run_target(config, messages, tmp_path)
    assert first.returncode != 0
    assert "Daily API rate limit" in first.stderr or "122" in first.stderr
    assert "records were applied" in first.stderr and "next run" in first.stderr
    assert first.states == []  # STATE stays behind the records that were not applied
    assert len(emulator.prospects()) < RECORDS
    applied = re.search(r"after (\d+) records were applied", first.stderr)
    assert applied is not None and int(applied[1]) == sum(touched(emulator))
    assert_the_summary_is_what_pardot_holds(first.stderr, emulator, api_version)

    emulator.daily_limit = None
    emulator.reset_daily_usage()
    second = run_target(config, messages, tmp_path)
    assert second.returncode == 0, second.stderr[-4000:]
    assert second.states[-1] == {"done": True}
    assert_every_prospect_once_with_the_right_values(emulator)


def test_concurrency_stays_within_max_concurrency_across_streams(
    make_emulator: Any, tmp_path: Path
) -> None:
    emulator: PardotEmulator = make_emulator(ampsea=True, latency=0.02)
    messages = []
    for stream in ("users", "leads", "contacts"):
        rows = [{"email": f"{stream}{n}@example.com"} for n in range(400)]
        messages += singer_messages(stream, rows, state={"done": stream})
    result = run_target(
        target_config(emulator, tmp_path, max_concurrency=2, lookup_strategy="read"),
        messages,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert emulator.max_in_flight == 2
    assert len(emulator.prospects()) == 1200


def test_lost_answers_on_every_parallel_batch_at_once_resolve_without_deadlock(
    make_emulator: Any, tmp_path: Path
) -> None:
    # Four batches of creates in flight together all lose their answers: each must look up
    # its 50 emails before resending, while every worker is busy with a batch.
    emulator: PardotEmulator = make_emulator(ampsea=True, latency=0.05)
    emulator.queue_drop("v4.prospect.batchUpsert", count=4)
    rows = [{"email": f"n{n}@example.com", "city": "Oslo"} for n in range(200)]
    result = run_target(
        target_config(emulator, tmp_path, max_concurrency=4, lookup_strategy="read"),
        singer_messages("users", rows),
        tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(emulator.prospects()) == 200
    assert emulator.call_counts["v4.prospect.batchUpsert"] >= 8  # 4 lost, then 4 resent


def test_lost_answers_are_recovered_by_one_query_per_batch_when_the_scan_index_is_loaded(
    make_emulator: Any, tmp_path: Path
) -> None:
    emulator: PardotEmulator = make_emulator(ampsea=True)
    for n in range(300):
        emulator.add_prospect(email=f"old{n}@example.com", created_at="2020-01-01 00:00:00")
    emulator.queue_drop("v4.prospect.batchUpsert", count=4)
    rows = [{"email": f"n{n}@example.com", "city": "Oslo"} for n in range(1000)]
    result = run_target(
        target_config(emulator, tmp_path, max_concurrency=4, lookup_strategy="scan"),
        singer_messages("users", rows),
        tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(emulator.prospects()) == 1300  # nothing duplicated
    assert summary_counts(result.stderr)["created"] == 1000
    # No read per email: each lost batch costs a query for the prospects made since the index
    # was last brought up to date (scan: 2 pages of 200; recovery: at most 6 pages in all).
    counts = emulator.call_counts
    assert counts.get("v4.prospect.read", 0) == 0
    assert counts["v4.prospect.query"] <= 2 + 6
    recovery = re.search(r"of which (\d+) to check what lost answers had applied", result.stderr)
    assert recovery is not None and 1 <= int(recovery[1]) <= 6


def test_without_the_scan_index_lost_creates_are_recovered_by_reads_and_reported(
    make_emulator: Any, tmp_path: Path
) -> None:
    emulator: PardotEmulator = make_emulator(ampsea=True)
    emulator.queue_drop("v4.prospect.batchUpsert", count=1)
    rows = [{"email": f"n{n}@example.com"} for n in range(50)]
    result = run_target(
        target_config(emulator, tmp_path, lookup_strategy="read"),
        singer_messages("users", rows),
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(emulator.prospects()) == 50
    assert summary_counts(result.stderr)["created"] == 50
    assert "of which 50 to check what lost answers had applied" in result.stderr
