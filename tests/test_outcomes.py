"""The reject file and the run report: what a user reads after a run."""

from __future__ import annotations

import datetime
import json
import stat
from collections import Counter
from pathlib import Path

import pytest

from target_pardot.errors import TargetPardotError
from target_pardot.outcomes import RejectFile, Rejection, Result, RunReport
from target_pardot.settings import Settings


def rejection(n: int = 1) -> Rejection:
    return Rejection(
        stream="users", record={"email": f"bad{n}"}, reason="not an email", field="email", code=4
    )


def test_reject_file_is_created_owner_only_and_holds_stream_record_code_and_reason(
    tmp_path: Path,
) -> None:
    path = tmp_path / "nested" / "rejects.jsonl"
    rejects = RejectFile(str(path))
    rejects.write(rejection(1))
    rejects.write(rejection(2))
    rejects.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["record"] for line in lines] == [{"email": "bad1"}, {"email": "bad2"}]
    assert lines[0]["stream"] == "users"
    assert lines[0]["code"] == 4
    assert lines[0]["field"] == "email"
    assert lines[0]["reason"] == "not an email"
    assert lines[0]["rejected_at"]


def test_a_run_without_rejects_leaves_no_file(tmp_path: Path) -> None:
    RejectFile(str(tmp_path / "rejects.jsonl")).close()
    assert not (tmp_path / "rejects.jsonl").exists()


STARTED = datetime.datetime(2026, 11, 24, 13, 0, 0, tzinfo=datetime.timezone.utc)


def records_in(path: Path) -> list[dict[str, str]]:
    return [json.loads(line)["record"] for line in path.read_text().splitlines()]


def test_each_run_gets_its_own_file_named_after_its_start_time(tmp_path: Path) -> None:
    first = RejectFile.per_run(str(tmp_path / "rejects"), STARTED)
    first.write(rejection(1))
    first.close()
    later = RejectFile.per_run(str(tmp_path / "rejects"), STARTED + datetime.timedelta(hours=1))
    later.write(rejection(1))
    later.close()

    assert first.path == str(tmp_path / "rejects" / "rejects-20261124T130000Z.jsonl")
    assert later.path == str(tmp_path / "rejects" / "rejects-20261124T140000Z.jsonl")
    for path in (Path(first.path), Path(later.path)):
        assert records_in(path) == [{"email": "bad1"}]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "rejects").stat().st_mode) == 0o700


def test_runs_starting_in_the_same_second_do_not_share_a_file(tmp_path: Path) -> None:
    one = RejectFile.per_run(str(tmp_path), STARTED)
    two = RejectFile.per_run(str(tmp_path), STARTED)
    one.write(rejection(1))
    two.write(rejection(2))
    one.close()
    two.close()
    assert Path(one.path).name == "rejects-20261124T130000Z.jsonl"
    assert Path(two.path).name == "rejects-20261124T130000Z-2.jsonl"
    assert records_in(Path(one.path)) == [{"email": "bad1"}]
    assert records_in(Path(two.path)) == [{"email": "bad2"}]


def test_a_fixed_reject_file_holds_the_latest_run_only(tmp_path: Path) -> None:
    path = tmp_path / "rejects.jsonl"
    for run in range(2):
        rejects = RejectFile(str(path))
        rejects.write(rejection(1))
        rejects.write(rejection(run + 10))
        rejects.close()
    assert records_in(path) == [{"email": "bad1"}, {"email": "bad11"}]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_reject_file_setting_wins_over_the_directory(tmp_path: Path) -> None:
    base = {"business_unit_id": "0Uv000000000001AAA", "access_token": "t"}
    per_run = RejectFile.for_settings(Settings.from_config(base), environ={})
    assert Path(per_run.path).parent == Path.cwd() / "target-pardot-rejects"
    assert Path(per_run.path).name.startswith("rejects-")
    fixed = Settings.from_config(
        {**base, "reject_dir": str(tmp_path), "reject_file": str(tmp_path / "r.jsonl")}
    )
    assert RejectFile.for_settings(fixed).path == str(tmp_path / "r.jsonl")


def test_relative_reject_paths_are_taken_from_the_meltano_project_when_there_is_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    base = {"business_unit_id": "0Uv000000000001AAA", "access_token": "t"}
    meltano = {"MELTANO_PROJECT_ROOT": "/srv/project"}
    per_run = RejectFile.for_settings(Settings.from_config(base), meltano)
    assert Path(per_run.path).parent == Path("/srv/project/target-pardot-rejects")
    fixed = Settings.from_config({**base, "reject_file": "out/r.jsonl"})
    assert RejectFile.for_settings(fixed, meltano).path == "/srv/project/out/r.jsonl"
    assert RejectFile.for_settings(fixed, {}).path == str(tmp_path / "out" / "r.jsonl")
    absolute = Settings.from_config({**base, "reject_dir": str(tmp_path / "abs")})
    assert Path(RejectFile.for_settings(absolute, meltano).path).parent == tmp_path / "abs"


def test_summary_names_the_reject_file_by_its_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    report = RunReport(RejectFile.per_run("out", STARTED), max_reject_ratio=1)
    report.saw(1, stream="users")
    report.reject(rejection())
    report.rejects.close()
    expected = tmp_path / "out" / "rejects-20261124T130000Z.jsonl"
    assert report.summary({}).endswith(f"in {expected}")
    assert expected.exists()


def test_reject_ratio_stops_the_run_only_after_enough_records(tmp_path: Path) -> None:
    report = RunReport(RejectFile(str(tmp_path / "r.jsonl")), max_reject_ratio=0.5)
    report.saw(10, stream="users")
    for n in range(10):
        report.reject(rejection(n))
    report.check_reject_ratio()  # 10 records are too few to judge
    report.saw(10, stream="users")
    report.count(Result.CREATED, 10, stream="users")
    report.check_reject_ratio()  # exactly half is allowed
    report.saw(1, stream="users")
    report.reject(rejection(99))
    with pytest.raises(TargetPardotError, match=r"max_reject_ratio 0\.5"):
        report.check_reject_ratio()


def test_summary_counts_every_result_and_every_api_call(tmp_path: Path) -> None:
    report = RunReport(RejectFile(str(tmp_path / "r.jsonl")), max_reject_ratio=1)
    report.saw(5, stream="users")
    report.count(Result.CREATED, 3, stream="users")
    report.count(Result.UPDATED, stream="users")
    report.reject(rejection())
    text = report.summary(
        {"oauth.token": 1, "v4.prospect.batchUpsert": 2, "v4.customField.query": 1}
    )
    assert "5 records: 3 created, 1 updated" in text
    assert "1 rejected" in text
    assert "3 API calls" in text
    assert "; 1 token call;" in text
    assert "rejects by Pardot code (4: 1); reasons in" in text
    assert "not applied" not in text  # every record received has its outcome


def test_token_calls_are_counted_in_the_plural_only_when_there_are_several(
    tmp_path: Path,
) -> None:
    report = RunReport(RejectFile(str(tmp_path / "r.jsonl")), max_reject_ratio=1)
    assert report.summary({"oauth.token": 1}).endswith("; 1 token call")
    assert report.summary({"oauth.token": 2}).endswith("; 2 token calls")
    assert report.summary({}).endswith("; 0 token calls")


def test_a_stopped_run_counts_the_records_it_received_but_did_not_apply(tmp_path: Path) -> None:
    # A quota stop after the first 100 of 1,200 records: the rest add up to the total.
    report = RunReport(RejectFile(str(tmp_path / "r.jsonl")), max_reject_ratio=1)
    report.saw(1200, stream="users")
    report.count(Result.CREATED, 100, stream="users")
    text = report.summary({"oauth.token": 1})
    expected = (
        "1200 records: 100 created, 0 updated, 0 rejected, "
        "1100 not applied (the next run sends them); "
    )
    assert expected in text


def test_records_not_applied_exclude_every_outcome_merged_duplicates_included(
    tmp_path: Path,
) -> None:
    report = RunReport(RejectFile(str(tmp_path / "r.jsonl")), max_reject_ratio=1)
    report.saw(10, stream="users")
    report.count(Result.CREATED, 3, stream="users")
    report.count(Result.UNCHANGED, 2, stream="users")
    report.skip("no existing prospect, sync_mode update_only", stream="users")
    report.merged(2, stream="users")
    report.reject(rejection())
    text = report.summary({})
    assert "2 merged as duplicates, 1 not applied (the next run sends them);" in text
    assert report.records_settled() == 9


def test_a_dry_run_counts_its_planned_writes_as_settled(tmp_path: Path) -> None:
    report = RunReport(RejectFile(str(tmp_path / "r.jsonl")), max_reject_ratio=1, dry_run=True)
    report.saw(4, stream="users")
    report.planned(Counter({"create": 2, "update": 1}), stream="users")
    assert report.records_settled() == 3
    text = report.summary({})
    assert "4 records: would create 2, would update 1, 0 rejected, 1 not looked at" in text
    assert "not applied" not in text


def test_reject_warnings_name_pardots_code_only_when_there_is_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    report = RunReport(RejectFile(str(tmp_path / "r.jsonl")), max_reject_ratio=1)
    report.reject(rejection())
    report.reject(Rejection(stream="users", record={}, reason="no email", field="email"))
    with caplog.at_level("WARNING", logger="target_pardot.outcomes"):
        report.log_rejects()
    path = tmp_path / "r.jsonl"
    assert caplog.messages == [
        f"Rejected 1 record of stream 'users' on field email (Pardot code 4); reasons in {path}",
        f"Rejected 1 record of stream 'users' on field email; reasons in {path}",
    ]


def test_the_summary_names_rejects_made_before_any_call_in_words(tmp_path: Path) -> None:
    report = RunReport(RejectFile(str(tmp_path / "r.jsonl")), 1)
    report.saw(10, stream="users")
    for _ in range(10):
        report.reject(Rejection(stream="users", record={}, reason="no email", field="email"))
    path = tmp_path / "r.jsonl"
    assert report.summary({}).endswith(f"; 10 refused before any call; reasons in {path}")
    report.reject(rejection())
    assert report.summary({}).endswith(
        f"; rejects by Pardot code (4: 1), 10 refused before any call; reasons in {path}"
    )


def test_a_reject_file_that_cannot_be_written_stops_the_run_naming_it_not_the_record(
    tmp_path: Path,
) -> None:
    # Before: an OSError traceback, chained to the RecordError that quoted the email.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    rejects = RejectFile(str(blocker / "rejects.jsonl"))
    rejection = Rejection("users", {"email": "bad-342"}, "email: 'bad-342' needs an @", "email")

    with pytest.raises(TargetPardotError) as stopped:
        rejects.write(rejection)

    message = str(stopped.value)
    assert f"the reject file {blocker / 'rejects.jsonl'} cannot be written" in message
    assert "reject_dir" in message and "bad-342" not in message
    assert stopped.value.__cause__ is None and stopped.value.__suppress_context__
