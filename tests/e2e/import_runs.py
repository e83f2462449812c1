"""What the Import API e2e tests of both versions share: a run, its counts, and waiting."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pardot_emulator import PardotEmulator
from tests.conftest import TargetRun, run_target, singer_messages, target_config

LONG_AGO = "2020-01-01 00:00:00"


def import_run(
    emulator: PardotEmulator,
    tmp_path: Path,
    records: list[dict[str, Any]],
    settings: dict[str, Any],
    *,
    ok: bool = True,
    state: dict[str, Any] | None = None,
) -> TargetRun:
    """The real command over `records`, ending with `state`; asserts success unless `ok` is
    False."""
    result = run_target(
        target_config(emulator, tmp_path, **settings),
        singer_messages("users", records, state=state or {"done": True}),
        tmp_path,
    )
    if ok:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def summary_counts(result: TargetRun) -> dict[str, int]:
    """The summary's counts, and the claims from the stream's line of the run report."""
    found = re.findall(r"(\d+) (created|updated|rejected|unchanged)", result.summary)
    counts = {name: int(n) for n, name in found}
    claimed = re.search(r"(\d+) of the updates claimed", result.stderr)
    if claimed:
        counts["claimed"] = int(claimed.group(1))
    return counts


def lookup_records() -> list[dict[str, Any]]:
    """Records matched by userId against the lookup field, one without an email."""
    return [
        {"userId": f"u{n}", "traits": {"email": f"p{n}@example.com", "firstName": f"L{n}"}}
        for n in range(0, 60, 2)
    ] + [{"userId": "u-no-email", "traits": {"firstName": "Nobody"}}]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
