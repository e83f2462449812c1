"""How a run of the real command ends: what a scheduler sees (exit code) and an operator reads."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pardot_emulator import PardotEmulator
from tests.conftest import TARGET_COMMAND, run_target, singer_messages, target_config


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
    # The summary adds up: what was received is what was applied plus what was not.
    counts = re.search(
        r" (\d+) records: (\d+) created, 0 updated, 0 rejected, (\d+) not applied "
        r"\(the next run sends them\);",
        result.summary,
    )
    assert counts, result.summary
    received, created, not_applied = map(int, counts.groups())
    assert created == 50 and received == created + not_applied
    assert "Traceback" not in result.stderr
    assert result.states == []


class RunningTarget:
    """The real command started with an open stdin, fed by the test, as a tap would feed it."""

    def __init__(self, config: dict[str, Any], tmp_path: Path) -> None:
        config_path = tmp_path / "config.json"
        config_path.write_text(json.dumps(config))
        self.stdout_path, self.stderr_path = tmp_path / "stdout", tmp_path / "stderr"
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("TARGET_PARDOT") and key != "LOGLEVEL"
        }
        with self.stdout_path.open("w") as out, self.stderr_path.open("w") as err:
            self.process = subprocess.Popen(
                [TARGET_COMMAND, "--config", str(config_path)],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
                text=True,
                env=environment,
            )

    def send(self, messages: list[dict[str, Any]]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
        self.process.stdin.flush()

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        finally:
            if self.process.stdin is not None:
                self.process.stdin.close()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def batches_written(self) -> int:
        return self.stderr.count('"metric":"batch_processing_time"')

    def waiting_for_input(self) -> bool:
        """The main thread is blocked reading stdin (where Linux's /proc can tell)."""
        try:
            wchan = Path(f"/proc/{self.process.pid}/wchan").read_text()
        except OSError:
            return True
        return "pipe_read" in wchan or wchan in ("", "0")

    @property
    def states(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout_path.read_text().splitlines() if line]


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def assert_state_is_never_ahead_and_nothing_is_doubled(
    emulator: PardotEmulator, states: list[dict[str, Any]], summary: str
) -> None:
    emails = [p["email"] for p in emulator.prospects()]
    assert len(emails) == len(set(emails)), "a prospect was created twice"
    applied = {int(email.split("@")[0][1:]) for email in emails}
    for state in states:
        covered = set(range(state["bookmarks"]["users"]))
        assert covered <= applied, f"STATE {state} is ahead of what reached Pardot"
    assert f"{len(emails)} records: {len(emails)} created" in summary


def test_sigterm_while_waiting_for_input_applies_what_was_read_and_exits_143(
    emulator: PardotEmulator, tmp_path: Path
) -> None:
    target = RunningTarget(target_config(emulator, tmp_path, batch_size_rows=5), tmp_path)
    target.send(singer_messages("users", people(23), state_every=5))
    # Four full batches were handed over; three records wait in the sink for more input. A
    # full batch is written in the background while reading goes on, so the last one may
    # still be in flight when the target is back to waiting for input.
    wait_for(lambda: target.batches_written() == 4 and target.waiting_for_input())
    wait_for(lambda: len(emulator.prospects()) == 20)

    assert target.terminate() == 143
    stderr = target.stderr
    assert "target-pardot interrupted by SIGTERM" in stderr
    assert "no input after line 28 was read" in stderr
    assert "the next run resends" in stderr
    summary = [line for line in stderr.splitlines() if "target-pardot summary:" in line]
    assert len(summary) == 1 and "23 records: 23 created" in summary[0]
    assert target.states == [{"bookmarks": {"users": 20}}]
    assert_state_is_never_ahead_and_nothing_is_doubled(emulator, target.states, summary[0])
    assert "Traceback" not in stderr


def test_sigterm_during_a_batch_write_finishes_it_reads_no_more_and_exits_143(
    make_emulator: Callable[..., PardotEmulator], tmp_path: Path
) -> None:
    emulator = make_emulator(ampsea=True, latency=0.05)
    # One call at a time: the pipeline then takes at most 150 records ahead of what Pardot
    # applied, so reading all 1,000 would take some 170 writes and as many reads (about 17 s).
    # Unbounded, the target could read the whole input before the signal (it did now and
    # then), and the test would prove nothing.
    config = target_config(emulator, tmp_path, batch_size_rows=5, max_concurrency=1)
    target = RunningTarget(config, tmp_path)
    target.send(singer_messages("users", people(1000), state_every=5, state={"done": True}))
    # The custom field listing, then the first batch's calls: the target is writing.
    wait_for(lambda: emulator.api_calls >= 4)

    assert target.terminate() == 143
    stderr = target.stderr
    assert "target-pardot interrupted by SIGTERM" in stderr
    [summary] = [line for line in stderr.splitlines() if "target-pardot summary:" in line]
    assert len(emulator.prospects()) < 1000  # it did stop reading
    assert target.states and {"done": True} not in target.states
    assert_state_is_never_ahead_and_nothing_is_doubled(emulator, target.states, summary)


def test_a_failure_before_the_first_record_is_reported_once(
    emulator: PardotEmulator, tmp_path: Path
) -> None:
    # The business unit allows several prospects per email, so v3 is refused (88) at the first
    # call, made before the first record is read.
    result = run_target(
        target_config(emulator, tmp_path, api_version=3),
        singer_messages("users", people(3)),
        tmp_path,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "| ERROR " in line]
    [stop] = stop_lines(result.stderr)
    assert stop == errors[0]
    assert "To fix: this business unit allows several prospects per email" in stop
    assert "Error initializing target sink" not in result.stderr
    assert "Traceback" not in result.stderr


def test_refused_credentials_are_reported_once(emulator: PardotEmulator, tmp_path: Path) -> None:
    config = target_config(emulator, tmp_path, refresh_token="revoked-token-value")
    result = run_target(config, singer_messages("users", people(3)), tmp_path)
    assert result.returncode == 1
    [stop] = stop_lines(result.stderr)
    assert "invalid_grant" in stop
    assert "Error initializing target sink" not in result.stderr
    assert emulator.api_calls == 0


def test_a_call_that_stops_the_run_stops_the_calls_still_to_be_made(
    emulator: PardotEmulator, tmp_path: Path
) -> None:
    # Before: every other call of the batch (and of the batch behind it) went through its own
    # retries before the run could stop: 398 calls and 100 s here, hours with the defaults.
    emulator.queue_error(66, "v5.prospects.upsertLatestByEmail", 100_000)
    config = target_config(
        emulator, tmp_path, api_version=5, max_concurrency=1, max_retries=1, max_retry_seconds=2
    )
    result = run_target(config, singer_messages("users", people(200)), tmp_path)

    assert result.returncode == 1, result.stderr[-3000:]
    [stop] = stop_lines(result.stderr)
    assert "upsertLatestByEmail still failing after 2 attempts" in stop  # the cause, not a halt
    assert emulator.call_counts["v5.prospects.upsertLatestByEmail"] == 2
    assert "200 records: 0 created" in result.summary
    assert result.states == [] and "Traceback" not in result.stderr


def test_sigterm_while_calls_back_off_stops_retrying_and_exits_143_at_once(
    emulator: PardotEmulator, tmp_path: Path
) -> None:
    # Before: the signal only stopped the reading; each failing call went on backing off (a
    # minute a retry with the defaults), and the run ended with exit 1, or in SIGKILL.
    emulator.queue_error(121, "v5.prospects.upsertLatestByEmail", 100_000)
    config = target_config(emulator, tmp_path, api_version=5, batch_size_rows=5)
    target = RunningTarget(config, tmp_path)
    target.send(singer_messages("users", people(10))[:-1])  # no end of input: still reading
    wait_for(lambda: "retry 2 in" in target.stderr)

    started = time.monotonic()
    assert target.terminate() == 143
    assert time.monotonic() - started < 10
    stderr = target.stderr
    assert "not retried: the run was told to stop" in stderr
    assert "interrupted by SIGTERM while Pardot calls were failing" in stderr
    assert target.states == [] and "Traceback" not in stderr
