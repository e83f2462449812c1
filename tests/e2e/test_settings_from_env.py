"""Settings given as TARGET_PARDOT_* environment variables (`target-pardot --config ENV`).

Environment variables are text. singer-sdk converts those of integer and boolean settings; the
settings with a fraction (max_reject_ratio, max_retry_seconds, request_timeout) reach the target
as text, which it reads as the number it spells.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pardot_emulator import PardotEmulator
from tests.conftest import TARGET_COMMAND, singer_messages, target_config


def run_target_from_env(
    settings: Mapping[str, Any], messages: Iterable[Mapping[str, Any]], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """`target-pardot --config ENV`, every setting a TARGET_PARDOT_* variable, as text."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TARGET_PARDOT") and key != "LOGLEVEL"
    }
    env.update({f"TARGET_PARDOT_{name.upper()}": str(value) for name, value in settings.items()})
    return subprocess.run(
        [TARGET_COMMAND, "--config", "ENV"],
        input="".join(json.dumps(message) + "\n" for message in messages),
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )


def test_a_max_reject_ratio_from_the_environment_is_the_one_the_run_applies(
    emulator: PardotEmulator, tmp_path: Path
) -> None:
    # 15 of 20 records are bad: the default ratio (0.5) would stop the run, 0.9 lets it finish.
    good = [{"email": f"good{n}@example.com"} for n in range(5)]
    bad = [{"email": f"bad-{n}"} for n in range(15)]
    settings = target_config(
        emulator,
        tmp_path,
        max_reject_ratio="0.9",
        max_retry_seconds="12.5",
        request_timeout="5",
    )

    run = run_target_from_env(settings, singer_messages("users", good + bad), tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    assert "is not of type" not in run.stderr
    assert len(emulator.prospects()) == 5
    (summary,) = [line for line in run.stderr.splitlines() if "target-pardot summary:" in line]
    assert "20 records: 5 created" in summary and "15 rejected" in summary


def test_a_number_setting_from_the_environment_that_is_no_number_is_named(
    emulator: PardotEmulator, tmp_path: Path
) -> None:
    settings = target_config(emulator, tmp_path, request_timeout="soon")

    run = run_target_from_env(settings, singer_messages("users", [{"email": "a@x.com"}]), tmp_path)

    assert run.returncode == 1
    assert "request_timeout must be a non-negative number (got 'soon')" in run.stderr
    assert "Traceback" not in run.stderr
    assert emulator.api_calls == 0 and emulator.token_calls == 0


def test_a_whole_number_setting_from_the_environment_that_is_none_is_named(
    emulator: PardotEmulator, tmp_path: Path
) -> None:
    """Before: singer-sdk's int() ValueError traceback, naming neither variable nor setting."""
    settings = target_config(emulator, tmp_path, max_concurrency="abc", api_version="4")

    run = run_target_from_env(settings, singer_messages("users", [{"email": "a@x.com"}]), tmp_path)

    assert run.returncode == 1
    assert (
        "TARGET_PARDOT_MAX_CONCURRENCY must be a whole number for setting max_concurrency "
        "(got 'abc')"
    ) in run.stderr
    assert "Traceback" not in run.stderr
    assert emulator.api_calls == 0 and emulator.token_calls == 0
