"""Reliability end to end: faults together, quota exhaustion and resume; nothing lost or doubled."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from target_pardot.emulator import PardotEmulator
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
        emulator.add_prospect(email=f"p{n}@example.com", first_name="Old")
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
            emulator, tmp_path, api_version=api_version, max_concurrency=5, max_retries=10
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
