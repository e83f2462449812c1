"""How a run of the real command ends: what a scheduler sees (exit code) and an operator reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from target_pardot.emulator import PardotEmulator
from tests.conftest import run_target, singer_messages, target_config


def people(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"email": f"p{n}@example.com", "first_name": f"F{n}"} for n in range(start, count)]


def stop_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "target-pardot stopped:" in line]


def test_a_stopped_run_prints_the_summary_one_stop_line_and_exits_1(
    emulator: PardotEmulator, tmp_path: Path
) -> None:
    emulator.daily_limit = 3
    result = run_target(
        target_config(emulator, tmp_path, batch_size_rows=50),
        singer_messages("users", people(400), state={"done": True}),
        tmp_path,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    [stop] = stop_lines(result.stderr)
    assert "Daily API rate limit" in stop
    assert "daily API limit for this business unit is used up after 50 records" in result.stderr
    assert "the next run sends them again" in result.stderr
    assert result.summary
    assert "Traceback" not in result.stderr
    assert result.states == []
