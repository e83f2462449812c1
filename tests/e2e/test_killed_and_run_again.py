"""End to end: a run killed with SIGKILL part way, then run again over the same input (as Meltano
does after a failed run: no STATE was relayed, so the tap sends everything again), leaves Pardot
as one run that was never killed does: no prospect lost, none created twice, the last record's
values everywhere. So does a run stopped with SIGTERM, then resumed from the last STATE it
relayed (the tap sends only what comes after its bookmark): STATE never got ahead of Pardot.

Whatever the kill interrupts (a batch call in flight, an applied write whose answer never came
back, an import being processed, a skip_unchanged fingerprint not yet flushed), the second run
must find what the first one created and must not trust what it cannot vouch for.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from pardot_emulator import PardotEmulator
from pardot_emulator.clock import Clock
from tests.conftest import TARGET_COMMAND, singer_messages, target_config
from tests.e2e.test_record_order import fid, seeded, state, sync


def records_of(
    prospects: list[dict[str, Any]], forms: tuple[str, ...], seed: int, *, lookup: bool
) -> list[dict[str, Any]]:
    """People named many times by email, Pardot id or fid (with their email), a third of them
    new to Pardot; none moves to another email, so running part of the input twice changes
    nothing in the end."""
    chooser = random.Random(seed)
    records = []
    for position in range(300):
        new = chooser.random() < 0.3
        n = 1000 + chooser.randrange(40) if new else chooser.randrange(len(prospects))
        record: dict[str, Any] = {"email": f"p{n}@example.com", "city": f"c{position}"}
        form = "email" if new else chooser.choice(forms)
        if form == "id":
            record["pardot_id"] = str(prospects[n]["id"])
        elif form == "fid":
            record["pardot_fid"] = fid(n)
        if lookup:
            record["org_id"] = f"org-{n}"
        if chooser.random() < 0.3:
            record["phone"] = f"+47 {position}"
        records.append(record)
    return records


def run_and_stop(
    emulator: PardotEmulator,
    tmp_path: Path,
    version: int,
    records: list[dict[str, Any]],
    after_calls: int,
    *,
    stop: signal.Signals = signal.SIGKILL,
    **settings: Any,
) -> tuple[int, list[dict[str, Any]]]:
    """Run the target (a STATE after every 10 records) and send it `stop` once the emulator
    answered `after_calls` API calls; returns the process's status and the STATE it relayed."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    config_path = tmp_path / "config.json"
    config_path.write_text(
        json.dumps(target_config(emulator, tmp_path, api_version=version, **settings))
    )
    input_path = tmp_path / "input.jsonl"
    input_path.write_text(
        "".join(
            json.dumps(message) + "\n"
            for message in singer_messages("users", records, state_every=10)
        )
    )
    output_path = tmp_path / "stdout.jsonl"
    with (
        input_path.open() as stdin,
        output_path.open("w") as stdout,
        (tmp_path / "stderr.log").open("w") as stderr,
    ):
        process = subprocess.Popen(
            [TARGET_COMMAND, "--config", str(config_path)],
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
        )
        start = emulator.api_calls
        deadline = time.monotonic() + 120
        while emulator.api_calls - start < after_calls and process.poll() is None:
            assert time.monotonic() < deadline, "the run neither ended nor reached the call"
            time.sleep(0.001)
        process.send_signal(stop)
        status = process.wait(timeout=120)
    states = [json.loads(line) for line in output_path.read_text().splitlines() if line.strip()]
    return status, states


CASES = {
    "v3": (3, ("email", "id"), {}),
    "v4 read": (4, ("email", "id", "fid"), {"lookup_strategy": "read"}),
    "v4 scan": (4, ("email", "id", "fid"), {"lookup_strategy": "scan"}),
    "v5": (5, ("email", "id", "fid"), {}),
    "v4 lookup": (4, ("lookup", "id", "fid"), {"lookup_field": "org_id"}),
    "v5 lookup": (5, ("lookup", "id", "fid"), {"lookup_field": "org_id"}),
    "v4 import": (4, ("email", "id", "fid"), {"write_method": "import"}),
    "v5 import": (5, ("email", "id", "fid"), {"write_method": "import", "campaign_id": 42}),
}


# Killed after 30% or 70% of the calls one run makes, with and without skip_unchanged (imports
# take seconds each: without it only).
RUNS = [
    pytest.param(case, share, skip, id=f"{case}-{when}{'-skip_unchanged' if skip else ''}")
    for case in CASES
    for share, when in ((0.3, "early"), (0.7, "late"))
    for skip in ((False,) if "import" in case else (False, True))
]


@pytest.mark.parametrize(("case", "share", "skip_unchanged"), RUNS)
def test_a_killed_run_run_again_leaves_pardot_as_one_run_does(
    make_emulator: Any, tmp_path: Path, case: str, share: float, skip_unchanged: bool
) -> None:
    version, forms, settings = CASES[case]
    # Batches of 7: the kill falls between batches as well as inside one. An import takes
    # the whole input in one batch: the kill falls somewhere in its life (made, its file
    # uploaded, started, being processed, its counts read).
    settings = {**settings, "max_concurrency": 5}
    if "write_method" in settings:
        settings["import_state_path"] = "imports.json"
    else:
        settings["batch_size_rows"] = 7
    if skip_unchanged:
        settings["skip_unchanged"] = True

    def where(run: str) -> dict[str, Any]:
        # Each run's own files, except that the run again shares the killed run's.
        files = tmp_path / run
        files.mkdir()
        placed = dict(settings)
        if "import_state_path" in placed:
            placed["import_state_path"] = str(files / "imports.json")
        if skip_unchanged:
            placed["skip_unchanged_store"] = str(files / "unchanged.sqlite")
        return placed

    once, prospects = seeded(make_emulator, version, clock=Clock(step=1.0))
    records = records_of(prospects, forms, seed=len(case), lookup="lookup_field" in settings)
    before = once.api_calls
    sync(once, tmp_path / "once-run", version, records, **where("once"))
    calls = once.api_calls - before

    killed, _ = seeded(make_emulator, version, clock=Clock(step=1.0), latency=0.005)
    placed = where("killed")
    status, _ = run_and_stop(
        killed, tmp_path / "killed-run", version, records, int(calls * share), **placed
    )
    assert status == -signal.SIGKILL, "the run ended before it could be killed"
    killed.latency = 0
    sync(killed, tmp_path / "again-run", version, records, **placed)
    assert state(killed) == state(once)


@pytest.mark.parametrize("share", [0.2, 0.5, 0.8])
@pytest.mark.parametrize(
    ("case", "skip_unchanged"),
    [("v3", False), ("v4 scan", True), ("v4 read", False), ("v5 lookup", True)],
)
def test_a_run_stopped_with_sigterm_and_resumed_from_its_state_leaves_pardot_as_one_run_does(
    make_emulator: Any, tmp_path: Path, case: str, skip_unchanged: bool, share: float
) -> None:
    version, forms, settings = CASES[case]
    settings = {**settings, "batch_size_rows": 7, "max_concurrency": 5}
    once, prospects = seeded(make_emulator, version, clock=Clock(step=1.0))
    records = records_of(prospects, forms, seed=len(case), lookup="lookup_field" in settings)
    before = once.api_calls
    sync(once, tmp_path / "once-run", version, records, **settings)
    calls = once.api_calls - before

    stopped, _ = seeded(make_emulator, version, clock=Clock(step=1.0), latency=0.005)
    if skip_unchanged:
        settings = {
            **settings,
            "skip_unchanged": True,
            "skip_unchanged_store": str(tmp_path / "unchanged.sqlite"),
        }
    status, states = run_and_stop(
        stopped,
        tmp_path / "stopped-run",
        version,
        records,
        int(calls * share),
        stop=signal.SIGTERM,
        **settings,
    )
    assert status == 143, "the run ended before it could be stopped"
    # The run finished what it was writing and relayed STATE up to the records it applied.
    bookmark = states[-1]["bookmarks"]["users"]
    assert 0 < bookmark <= len(records)
    stopped.latency = 0
    sync(stopped, tmp_path / "resumed-run", version, records[bookmark:], **settings)
    assert state(stopped) == state(once)
