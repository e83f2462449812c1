"""STATE with batches written in the background: whenever the SDK relays STATE, every record
before it is in Pardot, also when the drain that relays it finds every sink already empty."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from pardot_emulator import PardotEmulator
from target_pardot.target import TargetPardot
from tests.conftest import singer_messages, target_config


class StateWatch(io.StringIO):
    """stdout that checks each STATE against what Pardot holds at the moment it is written."""

    def __init__(self, emulator: PardotEmulator) -> None:
        super().__init__()
        self.emulator = emulator
        self.states: list[int] = []

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if not line.strip():
                continue
            covered = json.loads(line)["bookmarks"]["users"]
            held = {p["email"] for p in self.emulator.prospects() if p["city"] == "Oslo"}
            missing = [n for n in range(covered) if f"p{n}@example.com" not in held]
            assert not missing, f"STATE {covered} relayed before records {missing} were applied"
            self.states.append(covered)
        return len(text)


@pytest.mark.parametrize("api_version", [4, 5])
def test_state_is_relayed_only_after_what_the_pipeline_holds_is_applied(
    make_emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api_version: int
) -> None:
    emulator: PardotEmulator = make_emulator(ampsea=True, latency=0.1)
    # Each record fills its sink (handed over, not waited for), and the SDK's periodic drain
    # runs after every record: it finds every sink empty while the write is still in flight.
    monkeypatch.setattr(TargetPardot, "_MAX_RECORD_AGE_IN_MINUTES", -1)
    target = TargetPardot(
        config=target_config(emulator, tmp_path, api_version=api_version, batch_size_rows=1)
    )
    records = [{"email": f"p{n}@example.com", "city": "Oslo"} for n in range(12)]
    lines = "".join(
        json.dumps(message) + "\n" for message in singer_messages("users", records, state_every=1)
    )
    watch = StateWatch(emulator)
    try:
        with contextlib.redirect_stdout(watch):
            target.process_lines(io.StringIO(lines))
            target.process_endofpipe()
    finally:
        target.close_run()
    assert watch.states and watch.states[-1] == 12
    assert len(emulator.prospects()) == 12
