"""Salesforce's "token request is already being processed" race, end to end: the target
retries it, and a race that never ends stops the run clearly without showing a secret."""

from __future__ import annotations

from pathlib import Path

from pardot_emulator import DEFAULT_CREDENTIALS, PardotEmulator
from target_pardot.api.auth import TOKEN_ATTEMPTS
from tests.conftest import run_target, singer_messages, target_config

EMAILS = [f"p{n}@example.com" for n in range(5)]
RACE = "token request is already being processed"


def users() -> list[dict[str, str]]:
    return [{"email": email, "first_name": "F"} for email in EMAILS]


def test_a_token_request_already_being_processed_is_retried_and_the_run_succeeds(
    emulator: PardotEmulator, tmp_path: Path
) -> None:
    emulator.fail_next_token_calls(1)
    result = run_target(
        target_config(emulator, tmp_path), singer_messages("users", users()), tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert emulator.token_calls == 2  # the refused one, then the retry
    assert sorted(p["email"] for p in emulator.prospects()) == EMAILS
    assert result.rejects == []


def test_a_token_race_that_never_ends_stops_the_run_clearly_without_secrets(
    emulator: PardotEmulator, tmp_path: Path
) -> None:
    emulator.fail_next_token_calls(100)
    result = run_target(
        target_config(emulator, tmp_path), singer_messages("users", users()), tmp_path
    )
    assert result.returncode != 0
    assert "could not get a Salesforce access token" in result.stderr
    assert RACE in result.stderr
    for secret in (DEFAULT_CREDENTIALS["client_secret"], DEFAULT_CREDENTIALS["refresh_token"]):
        assert secret not in result.stderr
    assert "Traceback" not in result.stderr
    assert emulator.token_calls == TOKEN_ATTEMPTS  # retried, but not for ever
    assert emulator.api_calls == 0
    assert emulator.prospects() == []
