"""End to end, write_method import with api_version 4: the real command against the emulator's
v4 Import API.

A v4 import only updates prospects it can match by prospect_id or salesforce_fid, so the
updates of a batch go in an import and its creates through batchUpsert, as in api mode. The same
input must leave Pardot the same either way; what changes is the cost, and what happens when
things go wrong: lost answers, a run that dies between creating and starting an import or while
it runs, an import that fails part way. None of them may lose a record or create one twice.
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

IMPORT_PREFIX = "v4.import."


def settings(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    return {
        "api_version": 4,
        "write_method": "import",
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
        (
            p["email"],
            p["first_name"] or "",
            p["city"] or "",
            p["org_id"] or "",
            p["crm_lead_fid"] or "",
            p["is_archived"],
        )
        for p in emulator.prospects(include_archived=True)
    )


def import_calls(emulator: PardotEmulator) -> dict[str, int]:
    return {
        name[len(IMPORT_PREFIX) :]: n
        for name, n in emulator.call_counts.items()
        if name.startswith(IMPORT_PREFIX)
    }


def fid(n: int) -> str:
    return f"00Q{n:012d}"


def seeded(make_emulator: Callable[..., PardotEmulator]) -> PardotEmulator:
    emulator = make_emulator(ampsea=True)
    emulator.add_custom_field("org_id")
    for n in range(0, 60, 3):
        extra = {"crm_lead_fid": fid(n)} if n % 2 else {}
        emulator.add_prospect(
            f"p{n}@example.com", first_name="Old", org_id=f"u{n}", created_at=LONG_AGO, **extra
        )
    # Made before the lookup field was used: a lookup record with its email claims it.
    emulator.add_prospect("p2@example.com", first_name="Unclaimed", created_at=LONG_AGO)
    emulator.add_prospect("twin@example.com", first_name="Older", created_at=LONG_AGO)
    emulator.add_prospect("twin@example.com", first_name="Newer", created_at=LONG_AGO)
    emulator.add_prospect("gone@example.com", city="Binned", created_at=LONG_AGO, is_archived=True)
    # Written to by id only: a record naming a prospect by id without its email, beside one
    # naming it by email, may land in either order (README, "How matching works").
    emulator.add_prospect("by-id-1@example.com", city="Bergen", created_at=LONG_AGO)
    emulator.add_prospect("by-id-2@example.com", city="Bergen", created_at=LONG_AGO)
    emulator.add_prospect("by-id-3@example.com", city="Bergen", created_at=LONG_AGO)
    return emulator


def ids_of(emulator: PardotEmulator) -> dict[str, int]:
    return {p["email"]: p["id"] for p in emulator.prospects(include_archived=True)}


def mixed_records(emulator: PardotEmulator) -> list[dict[str, Any]]:
    ids = ids_of(emulator)
    by_fid = range(3, 60, 6)
    # Not by email too: a v4 fid without its email is never looked up, so beside an email
    # record of the same prospect it may land in either order (see seeded): chance would decide.
    records: list[dict[str, Any]] = [
        {"email": f"p{n}@example.com", "first_name": f"F{n}", "city": "Oslo"}
        for n in range(60)
        if n not in by_fid
    ]
    records += [{"pardot_fid": fid(n), "city": "By fid"} for n in by_fid]
    records += [
        {"email": "twin@example.com", "first_name": "Twin"},
        {"pardot_id": str(ids["by-id-1@example.com"]), "city": "By id"},
        {"pardot_id": str(ids["by-id-2@example.com"]), "city": ""},  # clears: through the API
        {"pardot_id": str(ids["by-id-3@example.com"]), "pardot_fid": fid(3)},  # 81, API
        {"pardot_id": str(ids["gone@example.com"]), "city": "Restored"},  # batchUpsert restores
        # An id nobody has is refused (batchUpdate), email or not: never a new prospect...
        {"pardot_id": "999999", "email": "from-unknown-id@example.com", "city": "New"},
        {"pardot_id": "999998", "city": "Nobody has this id"},
        # ...while batchUpsert creates a prospect for a fid nobody has when there is an email.
        {"pardot_fid": "00Q999999999999", "email": "from-unknown-fid@example.com"},
        {"email": "p1@example.com", "city": "Merged with the earlier p1 record"},
    ]
    return records


@pytest.mark.parametrize(
    ("records", "extra"),
    [
        pytest.param(mixed_records, {}, id="ids-fids-and-emails"),
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
    assert sorted((r["field"] or "", r["code"] or 0) for r in imported.rejects) == sorted(
        (r["field"] or "", r["code"] or 0) for r in api.rejects
    )
    assert all(r["reason"] for r in imported.rejects)
    assert imported.states == [{"done": True}]
    assert [i["status"] for i in by_import.imports()] == ["Complete"]
    assert import_calls(by_api) == {}
    assert not (import_dir / "imports.json").exists()  # processed imports leave no entry


def test_updates_go_in_one_import_and_new_prospects_through_batch_upserts(
    make_emulator: Callable[..., PardotEmulator], tmp_path: Path
) -> None:
    emulator = make_emulator(ampsea=True)
    ids = [
        emulator.add_prospect(
            f"p{n}@example.com", first_name="Old", crm_lead_fid=fid(n), created_at=LONG_AGO
        )["id"]
        for n in range(2000)
    ]
    records: list[dict[str, Any]] = [
        {"pardot_id": str(ids[n]), "first_name": f"Id{n}"} for n in range(0, 2000, 2)
    ]
    records += [{"pardot_fid": fid(n), "first_name": f"Fid{n}"} for n in range(1, 2000, 2)]
    records += [{"email": f"new{n}@example.com", "first_name": f"New{n}"} for n in range(200)]
    result = sync(emulator, tmp_path, records)

    calls = emulator.call_counts
    # One sink batch: one import of 2,000 rows in one CSV batch, created, started, polled.
    assert import_calls(emulator) == {"create": 1, "update": 1, "read": 1}
    (job,) = emulator.imports()
    assert (job["api"], job["rows"], job["batches"]) == ("v4", 2000, 1)
    assert job["header"] == ["prospect_id", "salesforce_fid", "first_name"]
    # The 200 new emails, looked up first (200 reads or an 11-page scan, whichever is
    # cheaper), then created 50 a call.
    assert calls["v4.prospect.batchUpsert"] == 4
    assert "v4.prospect.batchUpdate" not in calls
    assert calls.get("v4.prospect.query", 0) <= 11

    prospects = emulator.prospects()
    assert len(prospects) == 2200
    assert len({p["email"] for p in prospects}) == 2200, "duplicates"
    names = {p["email"]: p["first_name"] for p in prospects}
    assert names == {
        **{f"p{n}@example.com": (f"Id{n}" if n % 2 == 0 else f"Fid{n}") for n in range(2000)},
        **{f"new{n}@example.com": f"New{n}" for n in range(200)},
    }
    # The summary is what the emulator holds.
    assert summary_counts(result) == {"created": 200, "updated": 2000, "rejected": 0}
    assert result.states == [{"done": True}]


def test_every_refused_row_reaches_the_reject_file_with_pardots_reason(
    make_emulator: Callable[..., PardotEmulator], tmp_path: Path
) -> None:
    emulator = make_emulator(ampsea=True)
    gone = emulator.add_prospect("gone@example.com", city="Binned", is_archived=True)
    fine = emulator.add_prospect("fine@example.com", crm_lead_fid=fid(1))
    records = [
        {"pardot_id": "999999", "email": "someone@example.com", "city": "A"},
        {"pardot_fid": "00Q000000000404", "city": "B"},
        {"pardot_id": str(gone["id"]), "city": "C"},
        {"pardot_id": str(fine["id"]), "city": "D"},
        {"pardot_fid": fid(1), "first_name": "E"},
    ]
    result = sync(emulator, tmp_path, records, sync_mode="update_only")
    rejects = {
        (r["record"].get("pardot_id") or r["record"].get("pardot_fid")): r for r in result.rejects
    }
    assert set(rejects) == {"999999", "00Q000000000404", str(gone["id"])}
    assert rejects["999999"]["reason"] == (
        "Pardot's import refused it: Invalid prospect ID: no prospect has id 999999"
    )
    assert (rejects["999999"]["field"], rejects["999999"]["code"]) == ("pardot_id", 3)
    assert rejects["00Q000000000404"]["reason"] == (
        "Pardot's import refused it: Invalid prospect fid: no prospect has Salesforce id "
        "00Q000000000404"
    )
    assert (rejects["00Q000000000404"]["field"], rejects["00Q000000000404"]["code"]) == (
        "pardot_fid",
        77,
    )
    assert rejects[str(gone["id"])]["reason"].startswith(
        "Pardot's import refused it: Prospect is archived"
    )
    assert rejects[str(gone["id"])]["code"] == 132
    assert summary_counts(result) == {"created": 0, "updated": 2, "rejected": 3}
    held = {p["email"]: (p["city"], p["first_name"]) for p in emulator.prospects(True)}
    assert held == {"gone@example.com": ("Binned", None), "fine@example.com": ("D", "E")}
    assert import_calls(emulator)["downloadErrors"] == 1
    assert "v4.prospect.batchUpdate" not in emulator.call_counts  # nothing went through the API


# -- faults -----------------------------------------------------------------------------------


def updates_and_creates(emulator: PardotEmulator, updates: int, creates: int) -> list[dict]:
    ids = [
        emulator.add_prospect(f"old{n}@example.com", first_name="Old", created_at=LONG_AGO)["id"]
        for n in range(updates)
    ]
    records: list[dict[str, Any]] = [
        {"pardot_id": str(prospect_id), "first_name": f"U{n}"} for n, prospect_id in enumerate(ids)
    ]
    records += [{"email": f"new{n}@example.com", "first_name": f"C{n}"} for n in range(creates)]
    return records


def assert_applied_once(emulator: PardotEmulator, updates: int, creates: int) -> None:
    prospects = emulator.prospects()
    assert len(prospects) == updates + creates, "duplicates or losses"
    assert {p["first_name"] for p in prospects} == {f"U{n}" for n in range(updates)} | {
        f"C{n}" for n in range(creates)
    }


def test_a_lost_answer_to_the_create_leaves_that_import_unstarted(
    make_emulator: Callable[..., PardotEmulator], tmp_path: Path
) -> None:
    emulator = make_emulator(ampsea=True)
    records = updates_and_creates(emulator, 300, 20)
    emulator.queue_drop("v4.import.create")
    result = sync(emulator, tmp_path, records)
    assert_applied_once(emulator, 300, 20)
    assert Counter(i["status"] for i in emulator.imports()) == {"Open": 1, "Complete": 1}
    assert import_calls(emulator)["create"] == 2
    assert summary_counts(result) == {"created": 20, "updated": 300, "rejected": 0}


def test_a_lost_answer_to_a_batch_abandons_that_import_and_sends_every_row_once(
    make_emulator: Callable[..., PardotEmulator], tmp_path: Path
) -> None:
    emulator = make_emulator(ampsea=True)
    long_text = "x" * 50_000  # 200 rows of 50 KB: over the 9 MB the target puts in a batch
    ids = [emulator.add_prospect(f"old{n}@example.com")["id"] for n in range(200)]
    records = [
        {"pardot_id": str(prospect_id), "comments": f"{n} {long_text}"}
        for n, prospect_id in enumerate(ids)
    ]
    emulator.queue_drop("v4.import.batch")
    result = sync(emulator, tmp_path, records)
    first, second = emulator.imports()
    assert (first["status"], first["batches"]) == ("Open", 2)  # applied, answer lost
    assert (second["status"], second["batches"], second["rows"]) == ("Complete", 2, 200)
    assert import_calls(emulator)["batch"] == 2
    assert import_calls(emulator)["update"] == 1
    held = {p["id"]: p["comments"] for p in emulator.prospects()}
    assert held == {prospect_id: f"{n} {long_text}" for n, prospect_id in enumerate(ids)}
    assert summary_counts(result)["updated"] == 200


def test_a_lost_answer_to_the_start_is_read_back_not_started_twice(
    make_emulator: Callable[..., PardotEmulator], tmp_path: Path
) -> None:
    emulator = make_emulator(ampsea=True)
    records = updates_and_creates(emulator, 50, 5)
    emulator.queue_drop("v4.import.update")
    result = sync(emulator, tmp_path, records)
    assert_applied_once(emulator, 50, 5)
    assert [i["status"] for i in emulator.imports()] == ["Complete"]
    assert import_calls(emulator)["update"] == 1
    assert summary_counts(result) == {"created": 5, "updated": 50, "rejected": 0}


def test_a_run_that_stops_between_create_and_start_sends_everything_next_time(
    make_emulator: Callable[..., PardotEmulator], tmp_path: Path
) -> None:
    emulator = make_emulator(ampsea=True)
    records = updates_and_creates(emulator, 200, 30)
    emulator.queue_error(122, "v4.import.update")  # the start is refused: the run stops
    first = sync(emulator, tmp_path, records, ok=False)
    assert first.returncode == 1
    assert first.states == []
    assert {p["first_name"] for p in emulator.prospects()} == {"Old"}  # nothing applied
    ledger = json.loads((tmp_path / "imports.json").read_text())
    assert [entry["id"] for entry in ledger["imports"]] == [emulator.imports()[0]["id"]]
    assert ledger["imports"][0]["api"] == "v4"

    second = sync(emulator, tmp_path, records)
    assert second.states == [{"done": True}]
    assert_applied_once(emulator, 200, 30)
    assert [i["status"] for i in emulator.imports()] == ["Open", "Complete"]
    assert "was never started" in second.stderr
    assert not (tmp_path / "imports.json").exists()


def test_a_run_killed_while_its_import_runs_is_finished_by_the_next_without_duplicates(
    make_emulator: Callable[..., PardotEmulator], tmp_path: Path
) -> None:
    emulator = make_emulator(ampsea=True)
    emulator.import_delay = 3600.0  # the import stays queued until the test lets it go
    records = updates_and_creates(emulator, 500, 40)
    config = target_config(emulator, tmp_path, **settings(tmp_path))
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
    assert len(emulator.prospects()) == 500  # the creates come after the import

    emulator.import_delay = 0.0  # Pardot finishes it meanwhile
    second = sync(emulator, tmp_path, records, state={"s": 1})
    assert second.states == [{"s": 1}]
    assert "an earlier run started but did not see finish" in second.stderr
    assert_applied_once(emulator, 500, 40)
    # The updates are imported again (idempotent); the creates were never sent before.
    assert [i["rows"] for i in emulator.imports()] == [500, 500]
    assert summary_counts(second) == {"created": 40, "updated": 500, "rejected": 0}
    assert not (tmp_path / "imports.json").exists()


def test_rows_of_an_import_that_failed_part_way_are_imported_again(
    make_emulator: Callable[..., PardotEmulator], tmp_path: Path
) -> None:
    emulator = make_emulator(ampsea=True)
    records = updates_and_creates(emulator, 400, 0)
    emulator.fail_next_import_after(120)
    result = sync(emulator, tmp_path, records)
    assert_applied_once(emulator, 400, 0)
    assert [i["rows"] for i in emulator.imports()] == [400, 280]
    assert result.rejects == []
    assert summary_counts(result) == {"created": 0, "updated": 400, "rejected": 0}


def test_auto_imports_only_batches_with_more_updates_than_the_threshold(
    make_emulator: Callable[..., PardotEmulator], tmp_path: Path
) -> None:
    emulator = make_emulator(ampsea=True)
    small = updates_and_creates(emulator, 30, 100)  # 130 records, but only 30 updates
    sync(emulator, tmp_path, small, write_method="auto", import_threshold=50)
    assert import_calls(emulator) == {}
    # 130 records, 50 a call: the 30 updates by id in one batchUpdate, the 100 creates in two
    # batchUpserts.
    calls = emulator.call_counts
    assert (calls["v4.prospect.batchUpdate"], calls["v4.prospect.batchUpsert"]) == (1, 2)

    ids = [emulator.add_prospect(f"big{n}@example.com")["id"] for n in range(80)]
    large = [{"pardot_id": str(prospect_id), "city": "Auto"} for prospect_id in ids]
    sync(emulator, tmp_path, large, write_method="auto", import_threshold=50)
    assert import_calls(emulator)["create"] == 1
    assert emulator.call_counts["v4.prospect.batchUpsert"] == 2  # none more: imported
    assert {p["city"] for p in emulator.prospects() if p["email"].startswith("big")} == {"Auto"}
