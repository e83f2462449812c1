"""End to end, write_method import (v5): the real command against the emulator's Import API.

The plan is api mode's, so the same input must leave Pardot the same either way; what changes
is the cost (a few calls per import) and what happens when things go wrong: lost answers,
a run that dies between creating and starting an import or while it runs, an import that
fails part way, the daily batch limit. None of them may lose a record or create one twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pardot_emulator import PardotEmulator
from tests.conftest import TARGET_COMMAND, TargetRun, singer_messages, target_config
from tests.e2e.import_runs import (
    LONG_AGO,
    import_run,
    lookup_records,
    summary_counts,
    wait_for,
)

CAMPAIGN = 42
IMPORT_CALLS = ("v5.imports.create", "v5.imports.update", "v5.imports.read")


def settings(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    return {
        "api_version": 5,
        "write_method": "import",
        "campaign_id": CAMPAIGN,
        "import_state_path": str(tmp_path / "imports.json"),
        **overrides,
    }


def sync(
    emulator: PardotEmulator,
    tmp_path: Path,
    records: list[dict[str, Any]],
    *,
    ok: bool = True,
    state: dict[str, Any] | None = None,
    **overrides: Any,
) -> TargetRun:
    return import_run(
        emulator, tmp_path, records, settings(tmp_path, **overrides), ok=ok, state=state
    )


def holdings(emulator: PardotEmulator) -> list[tuple[Any, ...]]:
    """What Pardot holds, without ids and times (which differ between two emulators)."""
    return sorted(
        (p["email"], p["first_name"], p["city"], p["org_id"], p["campaign_id"])
        for p in emulator.prospects()
    )


def seeded(make_emulator: Callable[..., PardotEmulator]) -> PardotEmulator:
    emulator = make_emulator(ampsea=True)
    emulator.add_custom_field("org_id")
    for n in range(0, 60, 3):
        emulator.add_prospect(
            f"p{n}@example.com", first_name="Old", org_id=f"u{n}", created_at=LONG_AGO
        )
    # Made before the lookup field was used: a lookup record with its email claims it.
    emulator.add_prospect("p2@example.com", first_name="Unclaimed", created_at=LONG_AGO)
    emulator.add_prospect("twin@example.com", first_name="Older", created_at=LONG_AGO)
    emulator.add_prospect("twin@example.com", first_name="Newer", created_at=LONG_AGO)
    # Written to by id only: a record naming a prospect by id without its email, beside one
    # that upserts it by email, may land in either order (README, "How matching works").
    emulator.add_prospect("by-id-1@example.com", city="Bergen", created_at=LONG_AGO)
    emulator.add_prospect("by-id-2@example.com", city="Bergen", created_at=LONG_AGO)
    return emulator


def email_and_id_records(emulator: PardotEmulator) -> list[dict[str, Any]]:
    first, second = (p["id"] for p in emulator.prospects() if p["email"].startswith("by-id"))
    records: list[dict[str, Any]] = [
        {"email": f"p{n}@example.com", "first_name": f"F{n}", "city": "Oslo"} for n in range(60)
    ]
    records += [
        {"email": "twin@example.com", "first_name": "Twin"},
        {"pardot_id": str(first), "city": "By id"},
        {"pardot_id": str(second), "city": ""},  # clears the city: goes through the API
        {"pardot_id": "999999", "city": "Nobody has this id"},
        {"email": "p1@example.com", "city": "Merged with the earlier p1 record"},
    ]
    return records


@pytest.mark.parametrize(
    ("records", "extra"),
    [
        pytest.param(email_and_id_records, {}, id="email-and-ids"),
        pytest.param(
            lambda emulator: lookup_records(),
            {"lookup_field": "org_id", "use_user_id_as_lookup": True, "lookup_strategy": "scan"},
            id="lookup",
        ),
    ],
)
def test_an_import_leaves_pardot_as_api_mode_does(
    make_emulator: Callable[..., PardotEmulator],
    tmp_path: Path,
    records: Callable[[PardotEmulator], list[dict[str, Any]]],
    extra: dict[str, Any],
) -> None:
    by_api, by_import = seeded(make_emulator), seeded(make_emulator)
    api_dir, import_dir = tmp_path / "api", tmp_path / "import"
    api_dir.mkdir()
    import_dir.mkdir()
    api = sync(by_api, api_dir, records(by_api), write_method="api", **extra)
    imported = sync(by_import, import_dir, records(by_import), **extra)

    assert holdings(by_import) == holdings(by_api)
    assert summary_counts(imported) == summary_counts(api)
    if "lookup_field" in extra:
        assert summary_counts(imported)["claimed"] == 1
    # Records of an import's batch are held as JSON text (a batch of 50,000): the reject file
    # still shows each as it came.
    assert [(r["field"], r["code"], r["record"]) for r in imported.rejects] == [
        (r["field"], r["code"], r["record"]) for r in api.rejects
    ]
    assert all(r["reason"] for r in imported.rejects)
    assert imported.states == [{"done": True}]
    assert by_import.imports() and all(i["status"] == "Complete" for i in by_import.imports())
    assert not (import_dir / "imports.json").exists()  # processed imports leave no entry


def test_rejected_rows_reach_the_reject_file_with_pardots_reason(
    make_emulator: Callable[..., PardotEmulator], tmp_path: Path
) -> None:
    emulator = make_emulator(ampsea=False)  # emails unique: an email change can collide
    taken = emulator.add_prospect("taken@example.com", created_at=LONG_AGO)
    mover = emulator.add_prospect("mover@example.com", created_at=LONG_AGO)
    result = sync(
        emulator,
        tmp_path,
        [
            {"pardot_id": "999999", "city": "A"},
            {"pardot_id": str(mover["id"]), "email": "taken@example.com"},
            {"email": "fine@example.com"},
        ],
    )
    reasons = {r["record"].get("pardot_id"): r for r in result.rejects}
    assert reasons["999999"]["record"] == {"pardot_id": "999999", "city": "A"}
    assert reasons["999999"]["reason"].startswith("Pardot's import refused it: Invalid prospect ID")
    assert reasons["999999"]["code"] == 3
    assert "Email address is already in use" in reasons[str(mover["id"])]["reason"]
    assert summary_counts(result) == {"created": 1, "updated": 0, "rejected": 2}
    assert emulator.prospect(taken["id"])["email"] == "taken@example.com"


def test_100k_records_cost_at_most_30_calls(
    make_emulator: Callable[..., PardotEmulator], tmp_path: Path
) -> None:
    emulator = make_emulator(ampsea=True)
    for n in range(0, 100_000, 2):
        emulator.add_prospect(f"n{n}@example.com", first_name="Old", created_at=LONG_AGO)
    records = [{"email": f"n{n}@example.com", "first_name": f"N{n}"} for n in range(100_000)]
    result = sync(emulator, tmp_path, records)
    assert summary_counts(result) == {"created": 50_000, "updated": 50_000, "rejected": 0}
    prospects = emulator.prospects()
    assert len(prospects) == 100_000
    assert {p["first_name"] for p in prospects} == {f"N{n}" for n in range(100_000)}
    calls = {k: n for k, n in emulator.call_counts.items() if k != "oauth.token"}
    assert sum(calls.values()) <= 30, calls
    # Two sink batches of 50,000: one import each, created with its only batch, then started.
    assert (calls["v5.imports.create"], calls["v5.imports.update"]) == (2, 2)
    assert not any(name.startswith("v5.prospects") for name in calls)


def test_large_batches_waiting_for_room_behind_two_imports_all_land_once(
    make_emulator: Callable[..., PardotEmulator], tmp_path: Path
) -> None:
    # Batches above 5,000 records are read only once the pipeline has room for them (two
    # imports at a time): five batches of 6,000, each record imported once, STATE at the end.
    emulator = make_emulator(ampsea=True)
    records = [{"email": f"b{n}@example.com", "first_name": f"B{n}"} for n in range(30_000)]
    result = sync(emulator, tmp_path, records, batch_size_rows=6_000)
    assert summary_counts(result) == {"created": 30_000, "updated": 0, "rejected": 0}
    assert sorted(p["first_name"] for p in emulator.prospects()) == sorted(
        f"B{n}" for n in range(30_000)
    )
    assert [i["status"] for i in emulator.imports()] == ["Complete"] * 5
    assert result.states == [{"done": True}]


def test_a_lost_answer_to_the_create_leaves_that_import_unstarted(
    make_emulator: Callable[..., PardotEmulator], tmp_path: Path
) -> None:
    emulator = make_emulator(ampsea=True, latency=0.01)
    emulator.queue_drop("v5.imports.create")
    records = [{"email": f"n{n}@example.com"} for n in range(300)]
    result = sync(emulator, tmp_path, records, match_by_email=False)  # every record creates
    assert len(emulator.prospects()) == 300
    statuses = Counter(i["status"] for i in emulator.imports())
    assert statuses == {"Open": 1, "Complete": 1}
    assert summary_counts(result)["created"] == 300


def test_a_lost_answer_to_the_start_is_read_back_not_started_twice(
    make_emulator: Callable[..., PardotEmulator], tmp_path: Path
) -> None:
    emulator = make_emulator(ampsea=True)
    emulator.queue_drop("v5.imports.update")
    result = sync(emulator, tmp_path, [{"email": f"n{n}@example.com"} for n in range(50)])
    assert len(emulator.prospects()) == 50
    assert [i["status"] for i in emulator.imports()] == ["Complete"]
    assert emulator.call_counts["v5.imports.update"] == 1
    assert summary_counts(result)["created"] == 50


def test_a_run_that_stops_between_create_and_start_sends_everything_next_time(
    make_emulator: Callable[..., PardotEmulator], tmp_path: Path
) -> None:
    emulator = make_emulator(ampsea=True)
    records = [{"email": f"n{n}@example.com"} for n in range(200)]
    emulator.queue_error(122, "v5.imports.update")  # the start is refused: the run stops
    first = sync(emulator, tmp_path, records, ok=False, match_by_email=False)
    assert first.returncode == 1
    assert first.states == []
    assert emulator.prospects() == []
    ledger = json.loads((tmp_path / "imports.json").read_text())
    assert [entry["id"] for entry in ledger["imports"]] == [emulator.imports()[0]["id"]]

    second = sync(emulator, tmp_path, records, match_by_email=False)
    assert second.states == [{"done": True}]
    assert len(emulator.prospects()) == 200  # the unstarted import was never run
    assert [i["status"] for i in emulator.imports()] == ["Open", "Complete"]
    assert "was never started" in second.stderr
    assert not (tmp_path / "imports.json").exists()


@pytest.mark.parametrize("match_by_email", [False, True], ids=["creates", "email-upserts"])
def test_a_run_killed_while_its_import_runs_is_finished_by_the_next_without_duplicates(
    make_emulator: Callable[..., PardotEmulator], tmp_path: Path, match_by_email: bool
) -> None:
    emulator = make_emulator(ampsea=True)
    emulator.import_delay = 3600.0  # the import stays queued until the test lets it go
    records = [{"email": f"n{n}@example.com", "first_name": f"N{n}"} for n in range(500)]
    config = target_config(emulator, tmp_path, **settings(tmp_path, match_by_email=match_by_email))
    (tmp_path / "config.json").write_text(json.dumps(config))
    lines = "".join(json.dumps(m) + "\n" for m in singer_messages("users", records, state={"s": 1}))
    (tmp_path / "input.jsonl").write_text(lines)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TARGET_PARDOT")}
    with (tmp_path / "input.jsonl").open() as stdin:
        process = subprocess.Popen(
            [TARGET_COMMAND, "--config", str(tmp_path / "config.json")],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=environment,
        )
        wait_for(lambda: any(i["status"] == "Waiting" for i in emulator.imports()), "the import")
        process.send_signal(signal.SIGKILL)
        stdout, _ = process.communicate(timeout=30)
    assert stdout == ""  # no STATE: the import's results were never seen
    assert (tmp_path / "imports.json").exists()

    emulator.import_delay = 0.0  # Pardot finishes it meanwhile
    second = sync(emulator, tmp_path, records, match_by_email=match_by_email, state={"s": 1})
    assert second.states == [{"s": 1}]
    prospects = emulator.prospects()
    assert len(prospects) == 500, "duplicates or losses"
    assert {p["first_name"] for p in prospects} == {f"N{n}" for n in range(500)}
    assert "an earlier run started but did not see finish" in second.stderr
    if match_by_email:
        # Matched by email, the records find what the killed run's import made: updates.
        assert summary_counts(second)["updated"] == 500
    else:
        # Creates are not idempotent: the finished import's creates are recognised, not resent.
        assert summary_counts(second)["created"] == 500
        assert "import of an earlier, interrupted run had already created" in second.stderr
        assert [i["rows"] for i in emulator.imports()] == [500]
    assert not (tmp_path / "imports.json").exists()


def test_rows_of_an_import_that_failed_part_way_are_imported_again(
    make_emulator: Callable[..., PardotEmulator], tmp_path: Path
) -> None:
    emulator = make_emulator(ampsea=True)
    emulator.fail_next_import_after(120)
    records = [{"email": f"n{n}@example.com"} for n in range(400)]
    result = sync(emulator, tmp_path, records, match_by_email=False)
    assert len(emulator.prospects()) == 400
    assert [i["rows"] for i in emulator.imports()] == [400, 280]
    assert result.rejects == []
    assert summary_counts(result) == {"created": 400, "updated": 0, "rejected": 0}


def test_the_daily_batch_limit_stops_the_run_until_the_next_day(
    make_emulator: Callable[..., PardotEmulator], tmp_path: Path
) -> None:
    emulator = make_emulator(ampsea=True)
    emulator.import_daily_batch_limit = 0
    records = [{"email": f"n{n}@example.com"} for n in range(100)]
    first = sync(emulator, tmp_path, records, ok=False)
    assert first.returncode == 1 and first.states == []
    assert "daily limit of Import API batches" in first.stderr
    assert "write_method api" in first.stderr

    emulator.import_daily_batch_limit = None
    second = sync(emulator, tmp_path, records)
    assert second.states == [{"done": True}]
    assert len(emulator.prospects()) == 100


def test_auto_imports_only_batches_above_the_threshold(
    make_emulator: Callable[..., PardotEmulator], tmp_path: Path
) -> None:
    emulator = make_emulator(ampsea=True)
    small = [{"email": f"s{n}@example.com"} for n in range(30)]
    sync(emulator, tmp_path, small, write_method="auto", import_threshold=50)
    assert not any(name.startswith("v5.imports") for name in emulator.call_counts)
    assert emulator.call_counts["v5.prospects.upsertLatestByEmail"] == 30

    large = [{"email": f"l{n}@example.com"} for n in range(80)]
    sync(emulator, tmp_path, large, write_method="auto", import_threshold=50)
    assert emulator.call_counts["v5.imports.create"] == 1
    assert emulator.call_counts["v5.prospects.upsertLatestByEmail"] == 30
    assert len(emulator.prospects()) == 110


def test_an_import_state_file_that_cannot_be_used_stops_the_run_before_any_import(
    make_emulator: Callable[..., PardotEmulator], tmp_path: Path
) -> None:
    """Before: a raw traceback (a path the disk refuses), or an entry without its creates was
    passed over, and the creates of its import could be made a second time."""
    emulator = make_emulator(ampsea=True)
    records = [{"email": f"n{n}@example.com"} for n in range(20)]
    (tmp_path / "a-file").write_text("")
    refused = sync(
        emulator,
        tmp_path,
        records,
        ok=False,
        import_state_path=str(tmp_path / "a-file" / "imports.json"),
    )
    damaged_path = tmp_path / "imports.json"
    damaged_path.write_text(json.dumps({"format": 1, "imports": [{"id": 7, "api": "v5"}]}))
    damaged = sync(emulator, tmp_path, records, ok=False)
    for result, says in (
        (refused, "a-file/imports.json cannot be used ("),
        (damaged, "imports.json is not readable (entry 1 (import 7) has no creates"),
    ):
        assert result.returncode == 1
        assert says in result.stderr
        assert "Traceback" not in result.stderr
        assert result.states == []
    assert emulator.imports() == [] and emulator.prospects() == []
    assert json.loads(damaged_path.read_text())["imports"] == [{"id": 7, "api": "v5"}]


def test_a_quota_stop_while_waiting_for_an_import_says_pardot_goes_on_running_it(
    make_emulator: Callable[..., PardotEmulator], tmp_path: Path
) -> None:
    """Before: 'the daily API limit ... is used up after 0 records were applied', while the
    import went on creating every prospect."""
    emulator = make_emulator(ampsea=True)
    emulator.import_delay = 3600.0  # still running when the limit is reached
    records = [{"email": f"n{n}@example.com", "first_name": f"N{n}"} for n in range(300)]
    emulator.queue_error(122, "v5.imports.read")
    first = sync(emulator, tmp_path, records, ok=False, match_by_email=False)
    assert first.returncode == 1 and first.states == []
    [running] = emulator.imports()
    assert running["status"] == "Waiting"
    assert (
        f"used up while the run waited for import {running['id']}, which Pardot goes on "
        "running: its records are applied but not counted among the 0 records applied"
    ) in first.stderr
    assert "used up after 0 records were applied" not in first.stderr

    emulator.import_delay = 0.0  # Pardot finishes it; the next day's run
    second = sync(emulator, tmp_path, records, match_by_email=False)
    assert second.states == [{"done": True}]
    assert len(emulator.prospects()) == 300, "duplicates or losses"
    assert [i["rows"] for i in emulator.imports()] == [300]
