"""Reject files on a schedule: a bad row that every run resends is written once per file, never
piled up in one file, and the summary says where the run's rejects are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pardot_emulator import PardotEmulator
from tests.conftest import TargetRun, run_target, singer_messages, target_config

BAD = {"email": "not-an-email", "first_name": "Bad"}
GOOD = {"email": "good@example.com", "first_name": "Good"}


def lines_of(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


def rows_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line)["record"] for line in lines_of(path)]


def named_file(run: TargetRun) -> Path:
    """The reject file the run's summary names (it ends the summary: '... in <path>')."""
    assert "1 rejected" in run.summary, run.stderr[-3000:]
    return Path(run.summary.rsplit(" in ", 1)[1].strip())


def test_scheduled_runs_resending_a_bad_row_write_it_once_per_run_file(
    emulator: PardotEmulator, tmp_path: Path
) -> None:
    reject_dir = tmp_path / "rejects"
    config = target_config(emulator, tmp_path, reject_dir=str(reject_dir))
    del config["reject_file"]  # the default: one file per run in reject_dir
    named = []
    for run in range(2):
        work = tmp_path / f"run{run}"
        work.mkdir()
        result = run_target(config, singer_messages("users", [BAD, GOOD]), work)
        assert result.returncode == 0, result.stderr[-3000:]
        named.append(named_file(result))

    files = sorted(reject_dir.iterdir())
    assert sorted(named) == files and len(files) == 2, (named, files)
    for path in files:
        assert path.name.startswith("rejects-") and path.suffix == ".jsonl"
        assert rows_of(path) == [BAD]
    assert [p["email"] for p in emulator.prospects()] == ["good@example.com"]


def test_under_meltano_relative_reject_paths_are_in_the_project_whatever_the_directory(
    emulator: PardotEmulator, tmp_path: Path
) -> None:
    # `meltano run` started from a subdirectory runs the target there; reject files (personal
    # data) must still land in the project, where the docs say they are.
    project = tmp_path / "project"
    subdirectory = project / "pipelines" / "users"
    subdirectory.mkdir(parents=True)
    meltano = {"MELTANO_PROJECT_ROOT": str(project)}
    per_run = target_config(emulator, tmp_path)
    del per_run["reject_file"]  # the default reject_dir, target-pardot-rejects
    fixed = target_config(emulator, tmp_path, reject_file="rejects/latest.jsonl")

    runs = [
        run_target(config, singer_messages("users", [BAD]), tmp_path, env=meltano, cwd=subdirectory)
        for config in (per_run, fixed)
    ]

    for run in runs:
        assert run.returncode == 0, run.stderr[-3000:]
    (in_dir,) = (project / "target-pardot-rejects").glob("rejects-*.jsonl")
    assert named_file(runs[0]) == in_dir and rows_of(in_dir) == [BAD]
    assert named_file(runs[1]) == project / "rejects" / "latest.jsonl"
    assert list(subdirectory.iterdir()) == []


def test_without_meltano_relative_reject_paths_are_in_the_working_directory(
    emulator: PardotEmulator, tmp_path: Path
) -> None:
    config = target_config(emulator, tmp_path, reject_file="latest.jsonl")
    run = run_target(config, singer_messages("users", [BAD]), tmp_path, cwd=tmp_path)
    assert named_file(run) == tmp_path / "latest.jsonl"


def test_a_fixed_reject_file_is_replaced_not_appended_to(
    emulator: PardotEmulator, tmp_path: Path
) -> None:
    config = target_config(emulator, tmp_path)
    for _ in range(2):
        result = run_target(config, singer_messages("users", [BAD, GOOD]), tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        assert named_file(result) == result.reject_file
    assert rows_of(result.reject_file) == [BAD]


def test_reject_file_lines_are_strict_json_when_a_tap_sends_nan_or_infinity(
    emulator: PardotEmulator, tmp_path: Path
) -> None:
    # Python taps write float columns' NaN and Infinity as bare NaN/Infinity tokens, which
    # Python reads and jq or a warehouse loader refuses: the reject file spells them as text.
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in the reject file")

    records = [
        {"email": "nan@example.com", "first_name": "Nan", "score": float("nan")},
        {"email": "inf@example.com", "first_name": "Inf", "comments": {"x": float("inf")}},
        GOOD,
    ]
    result = run_target(
        target_config(emulator, tmp_path), singer_messages("users", records), tmp_path
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 rejected" in result.summary
    rows = [json.loads(line, parse_constant=refuse) for line in lines_of(result.reject_file)]
    assert [row["record"] for row in rows] == [
        {**records[0], "score": "NaN"},
        {**records[1], "comments": {"x": "Infinity"}},
    ]
    assert [row["field"] for row in rows] == ["score", "comments"]
    assert [p["email"] for p in emulator.prospects()] == ["good@example.com"]
