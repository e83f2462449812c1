"""The operator's numbers: quota shares, the closing block of a dry run, progress timing."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest

from target_pardot.outcomes import RejectFile, Result, RunReport
from target_pardot.run_report import (
    ProgressLogger,
    percent,
    progress_line,
    quota_shares,
    report_block,
)


@pytest.mark.parametrize(
    ("share", "text"), [(0, "0%"), (0.00012, "0.012%"), (0.034, "3.4%"), (0.8, "80%")]
)
def test_percentages_keep_the_digits_that_tell_them_from_zero(share: float, text: str) -> None:
    assert percent(share) == text


def test_quota_shares_name_every_edition() -> None:
    assert quota_shares(500) == (
        "500 calls are 2.0% of Growth's 25,000, 1.0% of Plus's 50,000, "
        "0.5% of Advanced's 100,000 calls a day"
    )


def test_a_dry_runs_block_says_what_would_happen_per_stream(tmp_path: Path) -> None:
    report = RunReport(RejectFile(str(tmp_path / "r.jsonl")), 1, dry_run=True)
    report.saw(4, stream="users")
    report.planned(Counter({"create": 2, "update": 1}), stream="users")
    report.claimed(1, stream="users")
    report.skip("no existing prospect, sync_mode update_only", stream="users")
    block = report_block(report, {"oauth.token": 1, "v4.prospect.read": 3}, lookup_field="org_id")
    assert block.splitlines()[0] == (
        "target-pardot run report (dry run: nothing was written; what a real run would do):"
    )
    assert (
        "  stream 'users': 4 received; would create 2, would update 1, 1 of the updates would "
        "claim a prospect with the record's email whose org_id was empty, 1 skipped (no existing "
        "prospect, sync_mode update_only: 1), 0 rejected, 0 merged duplicates"
    ) in block
    assert "API calls (the run's, shared by its streams): 3 (v4.prospect.read 3)" in block
    assert report.results[Result.CREATED] == 0


def test_progress_off_starts_no_thread() -> None:
    before = threading.active_count()
    progress = ProgressLogger(0, lambda elapsed: "never")
    progress.start()
    assert threading.active_count() == before
    progress.stop()


def test_records_written_after_the_rest_of_their_batch_are_shown_and_explained(
    tmp_path: Path,
) -> None:
    report = RunReport(RejectFile(str(tmp_path / "r.jsonl")), 1)
    report.saw(3, stream="users")
    report.saw(1, stream="leads")
    report.ordered(2, stream="users")
    block = report_block(report, {}, lookup_field=None)
    users, leads = (line for line in block.splitlines() if line.startswith("  stream"))
    assert users.endswith(", 2 written after the rest of their batch")
    assert "written after" not in leads
    assert "so that the later record wins" in block


def test_progress_counts_records_whose_outcome_is_known_not_records_handed_over(
    tmp_path: Path,
) -> None:
    """Before: every record of a batch handed to the writers counted as done, so a batch in a
    50,000-row import Pardot had not processed yet showed as done."""
    report = RunReport(RejectFile(str(tmp_path / "r.jsonl")), 1)
    report.saw(500, stream="users")  # read and handed over; nothing answered yet
    assert progress_line(report, 1, 4, 10).startswith(
        "target-pardot progress: 0 records done of 500 received in 10 s (0 a second)"
    )
    report.count(Result.CREATED, 40, stream="users")
    report.count(Result.UNCHANGED, 5, stream="users")
    report.skip("Segment's integrations switch Pardot off", 2, stream="users")
    report.merged(3, stream="users")
    assert progress_line(report, 2, 3, 10).startswith(
        "target-pardot progress: 50 records done of 500 received in 10 s (5 a second); "
        "2 API calls used"
    )
