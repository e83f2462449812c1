"""End to end, what an operator reads: progress lines during a long run, and at the end a block
per stream plus the same numbers as singer-sdk METRIC lines."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pardot_emulator import PardotEmulator
from tests.conftest import TargetRun, run_target, singer_messages, target_config


def metric_lines(stderr: str) -> list[dict[str, Any]]:
    return [
        json.loads(line.split("METRIC: ", 1)[1])
        for line in stderr.splitlines()
        if "METRIC: " in line and '"metric":"target_pardot_' in line
    ]


def block(stderr: str) -> list[str]:
    lines = stderr.splitlines()
    start = next(i for i, line in enumerate(lines) if "target-pardot run report" in line)
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("  "))
    return lines[start:end]


@pytest.fixture
def two_streams(emulator: PardotEmulator, tmp_path: Path) -> TargetRun:
    emulator.add_prospect("old@x.com", first_name="Old")
    users = [
        {"email": "old@x.com", "city": "Oslo"},
        {"email": "new@x.com", "city": "Rome"},
        {"email": "new@x.com", "city": "Lima"},  # merged with the one before
        {"email": "not-an-email"},
        {"email": "off@x.com", "integrations": {"Pardot": False}},
    ]
    leads = [{"email": "lead@x.com"}]
    result = run_target(
        target_config(emulator, tmp_path, api_version=4, lookup_strategy="read"),
        singer_messages("users", users) + singer_messages("leads", leads),
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_the_closing_block_tells_each_stream_apart(two_streams: TargetRun) -> None:
    lines = block(two_streams.stderr)
    users = next(line for line in lines if "stream 'users'" in line)
    assert "5 received; 1 created, 1 updated, 0 unchanged" in users
    assert "1 skipped (Segment's integrations switch Pardot off: 1)" in users
    assert "1 rejected (field email: 1)" in users
    assert "1 merged duplicates" in users
    leads = next(line for line in lines if "stream 'leads'" in line)
    assert "1 received; 1 created, 0 updated" in leads
    text = "\n".join(lines)
    assert "merged duplicates are records of one batch with the same identity" in text
    calls = re.search(r"API calls \(the run's, shared by its streams\): (\d+) \(", text)
    assert calls is not None
    n = int(calls[1])
    assert f"daily quota: {n} calls are " in text
    assert "of Growth's 25,000, " in text and "of Plus's 50,000, " in text
    assert "of Advanced's 100,000 calls a day" in text
    assert "Pardot does not tell how much of it other integrations used today" in text


def test_the_closing_numbers_are_metric_lines_too(two_streams: TargetRun) -> None:
    points = metric_lines(two_streams.stderr)
    assert all(point["type"] == "counter" for point in points)
    records = {
        (
            p["tags"]["stream"],
            p["tags"]["result"],
            p["tags"].get("reason") or p["tags"].get("field"),
        ): p["value"]
        for p in points
        if p["metric"] == "target_pardot_records"
    }
    assert records[("users", "received", None)] == 5
    assert records[("users", "created", None)] == 1
    assert records[("users", "updated", None)] == 1
    assert records[("users", "skipped", "Segment's integrations switch Pardot off")] == 1
    assert records[("users", "rejected", "email")] == 1
    assert records[("users", "merged", None)] == 1
    assert records[("leads", "created", None)] == 1
    calls = {
        p["tags"]["endpoint"]: p["value"]
        for p in points
        if p["metric"] == "target_pardot_api_calls"
    }
    # Both streams' records were read before either batch ended: one hand-over, one call.
    assert calls["v4.prospect.batchUpsert"] == 1 and calls["oauth.token"] == 1


def slow_run(make_emulator: Any, tmp_path: Path, interval: int) -> TargetRun:
    emulator: PardotEmulator = make_emulator(ampsea=True, latency=0.4)
    rows = [{"email": f"p{n}@x.com"} for n in range(200)]
    tmp_path.mkdir(exist_ok=True)
    result = run_target(
        target_config(
            emulator,
            tmp_path,
            lookup_strategy="scan",
            batch_size_rows=50,
            max_concurrency=1,
            progress_interval=interval,
        ),
        singer_messages("users", rows),
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_a_long_run_reports_progress_every_interval_and_not_when_off(
    make_emulator: Any, tmp_path: Path
) -> None:
    # 4 batches, each a scan page or nothing plus one write, 0.4 s a call: about 3 seconds.
    lines = [
        line
        for line in slow_run(make_emulator, tmp_path / "on", 1).stderr.splitlines()
        if "target-pardot progress:" in line
    ]
    assert len(lines) >= 2, lines
    last = lines[-1]
    assert re.search(r"\d+ records done of \d+ received in \d+ s \(\d+ a second\)", last), last
    assert re.search(
        r"\d+ API calls used \([\d.]+% of Growth's daily 25,000\), [01] in flight", last
    )
    off = slow_run(make_emulator, tmp_path / "off", 0)
    assert "target-pardot progress:" not in off.stderr
