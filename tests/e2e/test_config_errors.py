"""Bad settings stop the command before any call, naming every setting at fault."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from pardot_emulator import PardotEmulator
from tests.conftest import TARGET_COMMAND, run_target, singer_messages, target_config


def test_bad_settings_fail_before_any_call_and_name_each_setting(
    emulator: PardotEmulator, tmp_path: Path
) -> None:
    config: dict[str, Any] = target_config(
        emulator,
        tmp_path,
        business_unit_id="0Uv-not-valid",
        auth_flow="password",
        pardot_url="http://pardot.example.com",
        max_concurrency=9,
        client_secret="never-shown-secret",
    )
    result = run_target(config, singer_messages("users", [{"email": "a@x.com"}]), tmp_path)
    assert result.returncode != 0
    for setting in (
        "business_unit_id",
        "auth_flow password needs",
        "pardot_url",
        "max_concurrency",
    ):
        assert setting in result.stderr
    assert "never-shown-secret" not in result.stderr
    assert emulator.api_calls == 0 and emulator.token_calls == 0


def test_wrong_credentials_stop_with_salesforces_reason(
    emulator: PardotEmulator, tmp_path: Path
) -> None:
    config = target_config(emulator, tmp_path, refresh_token="revoked-token-value")
    result = run_target(config, singer_messages("users", [{"email": "a@x.com"}]), tmp_path)
    assert result.returncode != 0
    assert "invalid_grant" in result.stderr
    assert "revoked-token-value" not in result.stderr
    assert emulator.api_calls == 0


def test_a_misspelt_setting_stops_the_run_naming_the_one_meant(
    emulator: PardotEmulator, tmp_path: Path
) -> None:
    config = target_config(emulator, tmp_path, api_verison=3, hard_delete=True)
    result = run_target(config, singer_messages("users", [{"email": "a@x.com"}]), tmp_path)
    assert result.returncode == 1
    assert "unknown setting 'api_verison' (did you mean 'api_version'?)" in result.stderr
    assert "hard_delete" not in result.stderr  # an SDK setting: accepted
    assert emulator.api_calls == 0 and emulator.token_calls == 0
    assert emulator.prospects() == []


def test_sdk_settings_this_target_does_not_use_are_accepted_and_reported(
    emulator: PardotEmulator, tmp_path: Path
) -> None:
    config = target_config(emulator, tmp_path, hard_delete=True, stream_maps={})
    result = run_target(config, singer_messages("users", [{"email": "a@x.com"}]), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    [line] = [line for line in result.stderr.splitlines() if "hard_delete" in line]
    assert "does not use" in line and "stream_maps" not in line
    assert [p["email"] for p in emulator.prospects()] == ["a@x.com"]


def run_with_config_file(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TARGET_COMMAND, "--config", str(path), *args],
        input="",
        capture_output=True,
        text=True,
        cwd=path.parent,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("args", [(), ("--test",)])
@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "was not found"),
        ("", "is empty"),
        ("{\n  business_unit_id: 0Uv\n}", "is not JSON (line 2 column 3: Expecting property name"),
        ('["business_unit_id"]', "holds a JSON array, not an object"),
    ],
)
def test_a_config_file_that_cannot_be_read_is_one_line_naming_it_and_the_problem(
    tmp_path: Path, content: str | None, problem: str, args: tuple[str, ...]
) -> None:
    path = tmp_path / "config.json"
    if content is not None:
        path.write_text(content)

    result = run_with_config_file(path, *args)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert f"config file {path} {problem}" in line, result.stderr
    assert "--config takes a file holding a JSON object of settings" in line
