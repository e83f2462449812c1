"""skip_unchanged end to end: a re-sync of unchanged rows costs no call, and the fingerprint
store never claims a write Pardot did not confirm (rejects, quota stops, killed runs)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from pardot_emulator import DEFAULT_CREDENTIALS, PardotEmulator
from tests.conftest import TARGET_COMMAND, TargetRun, run_target, singer_messages, target_config


def people(count: int, *, city: str = "Oslo") -> list[dict[str, Any]]:
    return [
        {
            "userId": f"u{n}",
            "traits": {"email": f"p{n}@example.com", "firstName": f"F{n}", "city": city},
        }
        for n in range(count)
    ]


def counts(summary: str) -> dict[str, int]:
    found = re.findall(r"(\d+) (created or updated|created|updated|rejected|unchanged)", summary)
    return {name: int(n) for n, name in found}


class Calls:
    """API and token calls the emulator received since this was made."""

    def __init__(self, emulator: PardotEmulator) -> None:
        self._emulator = emulator
        self._before = emulator.stats()

    def api(self) -> int:
        return self._emulator.api_calls - self._before["api_calls"]

    def tokens(self) -> int:
        return self._emulator.token_calls - self._before["token_calls"]

    def by_endpoint(self) -> dict[str, int]:
        before = self._before["call_counts"]
        return {
            name: n - before.get(name, 0)
            for name, n in self._emulator.call_counts.items()
            if n != before.get(name, 0)
        }


def hand_edit(emulator: PardotEmulator, prospect_id: int, **fields: str) -> None:
    """Someone changes a prospect in Pardot, through the API as any other client would."""
    token = requests.post(
        f"{emulator.url}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": DEFAULT_CREDENTIALS["client_id"],
            "client_secret": DEFAULT_CREDENTIALS["client_secret"],
            "refresh_token": DEFAULT_CREDENTIALS["refresh_token"],
        },
        timeout=10,
    ).json()["access_token"]
    answer = requests.post(
        f"{emulator.url}/api/prospect/version/3/do/update/id/{prospect_id}",
        headers={
            "Authorization": f"Bearer {token}",
            "Pardot-Business-Unit-Id": DEFAULT_CREDENTIALS["business_unit_id"],
        },
        data={**fields, "format": "json"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def started_run(
    config: dict[str, Any], config_path: Path, records: list[dict[str, Any]]
) -> subprocess.Popen[str]:
    """The real command started in the background over `records`; its input is left open
    (the caller closes it, or keeps the run waiting for more)."""
    config_path.write_text(json.dumps(config))
    process = subprocess.Popen(
        [TARGET_COMMAND, "--config", str(config_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdin is not None
    process.stdin.write("".join(json.dumps(m) + "\n" for m in singer_messages("users", records)))
    process.stdin.flush()
    return process


def sync(
    emulator: PardotEmulator, tmp_path: Path, records: list[dict[str, Any]], **settings: Any
) -> TargetRun:
    config = target_config(
        emulator,
        tmp_path,
        skip_unchanged=True,
        skip_unchanged_store=str(tmp_path / "unchanged.sqlite"),
        **settings,
    )
    return run_target(config, singer_messages("users", records, state={"done": True}), tmp_path)


MODES = [
    pytest.param({"api_version": 3}, False, id="v3 email"),
    pytest.param({"api_version": 4}, True, id="v4 email"),
    pytest.param(
        {
            "api_version": 4,
            "lookup_field": "org_id",
            "use_user_id_as_lookup": True,
            "lookup_strategy": "scan",
        },
        True,
        id="v4 lookup scan",
    ),
    pytest.param({"api_version": 5}, True, id="v5 email"),
]


@pytest.mark.parametrize(("settings", "ampsea"), MODES)
def test_a_second_identical_run_costs_only_the_token_and_the_field_list(
    make_emulator: Any, tmp_path: Path, settings: dict[str, Any], ampsea: bool
) -> None:
    emulator: PardotEmulator = make_emulator(ampsea=ampsea)
    emulator.add_custom_field("org_id")
    records = people(1000)
    first = sync(emulator, tmp_path, records, **settings)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "unchanged" not in first.summary

    calls = Calls(emulator)
    second = sync(emulator, tmp_path, records, **settings)
    assert second.returncode == 0, second.stderr[-3000:]
    assert calls.api() + calls.tokens() <= 2, calls.by_endpoint()
    assert counts(second.summary) == {"created": 0, "updated": 0, "rejected": 0, "unchanged": 1000}
    assert second.states == [{"done": True}]
    assert len(emulator.prospects()) == 1000


@pytest.mark.parametrize(("settings", "ampsea"), MODES)
def test_a_changed_record_is_sent_and_the_others_are_not(
    make_emulator: Any, tmp_path: Path, settings: dict[str, Any], ampsea: bool
) -> None:
    emulator: PardotEmulator = make_emulator(ampsea=ampsea)
    emulator.add_custom_field("org_id")
    records = people(60)
    assert sync(emulator, tmp_path, records, **settings).returncode == 0

    records[7]["traits"]["city"] = "Bergen"
    calls = Calls(emulator)
    second = sync(emulator, tmp_path, records, **settings)
    assert second.returncode == 0, second.stderr[-3000:]
    summary = counts(second.summary)
    assert summary["unchanged"] == 59
    # One write (v5 may count it as created: the prospect was made a second ago, see README).
    assert sum(n for name, n in summary.items() if name not in ("unchanged", "rejected")) == 1
    [changed] = [p for p in emulator.prospects() if p["email"] == "p7@example.com"]
    assert changed["city"] == "Bergen"
    writes = {name: n for name, n in calls.by_endpoint().items() if "query" not in name}
    assert sum(writes.values()) - writes.get("v5.customFields.query", 0) <= 2, writes

    # And back: the fingerprint now is the new one, so the old values are a change again.
    records[7]["traits"]["city"] = "Oslo"
    third = sync(emulator, tmp_path, records, **settings)
    assert counts(third.summary)["unchanged"] == 59
    [changed] = [p for p in emulator.prospects() if p["email"] == "p7@example.com"]
    assert changed["city"] == "Oslo"


def test_a_record_pardot_rejected_is_sent_again_by_the_next_run(
    make_emulator: Any, tmp_path: Path
) -> None:
    emulator: PardotEmulator = make_emulator(ampsea=True)
    known = emulator.add_prospect(email="k@example.com")
    records = [
        {"pardot_id": str(known["id"]), "city": "Oslo"},
        {"pardot_id": "999999", "city": "Oslo"},  # no such prospect: Pardot refuses it
    ]
    first = sync(emulator, tmp_path, records, api_version=4)
    assert [reject["record"]["pardot_id"] for reject in first.rejects] == ["999999"]

    calls = Calls(emulator)
    second = sync(emulator, tmp_path, records, api_version=4)
    assert counts(second.summary) == {"created": 0, "updated": 0, "rejected": 1, "unchanged": 1}
    assert calls.by_endpoint().get("v4.prospect.batchUpdate") == 1  # updates by id
    assert [reject["record"]["pardot_id"] for reject in second.rejects] == ["999999"]


def test_full_resync_sends_everything_and_rewrites_the_store(
    make_emulator: Any, tmp_path: Path
) -> None:
    emulator: PardotEmulator = make_emulator(ampsea=False)
    records = people(120)
    assert sync(emulator, tmp_path, records, api_version=3).returncode == 0
    # A hand edit in Pardot: skip_unchanged does not see it...
    [edited] = [p for p in emulator.prospects() if p["email"] == "p3@example.com"]
    hand_edit(emulator, edited["id"], city="Hand edit")
    second = sync(emulator, tmp_path, records, api_version=3)
    assert counts(second.summary)["unchanged"] == 120
    assert emulator.prospect(edited["id"])["city"] == "Hand edit"

    # ...full_resync does, and the run after it skips again.
    calls = Calls(emulator)
    third = sync(emulator, tmp_path, records, api_version=3, full_resync=True)
    assert "unchanged" not in third.summary
    assert calls.by_endpoint()["v3.prospect.batchUpsert"] == 3
    assert emulator.prospect(edited["id"])["city"] == "Oslo"
    fourth = sync(emulator, tmp_path, records, api_version=3)
    assert counts(fourth.summary)["unchanged"] == 120


def assert_every_record_is_in_pardot(
    emulator: PardotEmulator, records: list[dict[str, Any]]
) -> None:
    by_email = {p["email"]: p for p in emulator.prospects()}
    for record in records:
        traits = record["traits"]
        prospect = by_email.get(traits["email"])
        assert prospect is not None, f"{traits['email']} never reached Pardot"
        assert (prospect["first_name"], prospect["city"]) == (traits["firstName"], traits["city"])


@pytest.mark.parametrize(("api_version", "ampsea"), [(3, False), (4, True), (5, True)])
def test_a_quota_stop_leaves_no_fingerprint_for_what_was_not_applied(
    make_emulator: Any, tmp_path: Path, api_version: int, ampsea: bool
) -> None:
    emulator: PardotEmulator = make_emulator(ampsea=ampsea)
    old = people(300, city="Old")
    for record in old:
        emulator.add_prospect(email=record["traits"]["email"], city="Old")
    records = people(300, city="New")
    emulator.daily_limit = 4 if api_version != 5 else 120
    first = sync(emulator, tmp_path, records, api_version=api_version, batch_size_rows=50)
    assert first.returncode == 1
    applied = [p for p in emulator.prospects() if p["city"] == "New"]
    assert 0 < len(applied) < 300

    # The next run skips exactly what the first one applied, and sends the rest.
    emulator.daily_limit = None
    emulator.reset_daily_usage()
    second = sync(emulator, tmp_path, records, api_version=api_version, batch_size_rows=50)
    assert second.returncode == 0, second.stderr[-3000:]
    assert counts(second.summary)["unchanged"] == len(applied)
    assert_every_record_is_in_pardot(emulator, records)


def test_a_write_whose_answer_was_lost_before_a_stop_is_not_claimed_by_the_old_fingerprint(
    make_emulator: Any, tmp_path: Path
) -> None:
    emulator: PardotEmulator = make_emulator(ampsea=False)
    records = people(10, city="X")
    assert sync(emulator, tmp_path, records, api_version=3).returncode == 0

    # Run 2 changes every city to Y: Pardot applies the batch but the answer is lost, and the
    # retry hits the daily limit, so the run stops without knowing what Pardot holds.
    emulator.queue_drop("v3.prospect.batchUpsert")
    emulator.reset_daily_usage()
    emulator.daily_limit = 2  # the field list and the dropped write; the retry is refused
    second = sync(emulator, tmp_path, people(10, city="Y"), api_version=3)
    assert second.returncode == 1
    assert {p["city"] for p in emulator.prospects()} == {"Y"}

    # Run 3 sends X again: the store must not still claim X is what Pardot holds.
    emulator.daily_limit = None
    emulator.reset_daily_usage()
    third = sync(emulator, tmp_path, records, api_version=3)
    assert third.returncode == 0, third.stderr[-3000:]
    assert {p["city"] for p in emulator.prospects()} == {"X"}


def test_a_killed_run_leaves_no_fingerprint_for_what_was_not_applied(
    make_emulator: Any, tmp_path: Path
) -> None:
    emulator: PardotEmulator = make_emulator(ampsea=True, latency=0.05)
    records = people(600)
    config = target_config(
        emulator,
        tmp_path,
        api_version=5,
        skip_unchanged=True,
        skip_unchanged_store=str(tmp_path / "unchanged.sqlite"),
        batch_size_rows=100,
    )
    process = started_run(config, tmp_path / "killed.json", records)
    assert process.stdin is not None
    process.stdin.close()
    deadline = time.monotonic() + 60
    while emulator.call_counts.get("v5.prospects.upsertLatestByEmail", 0) < 150:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert 0 < len(emulator.prospects()) < 600

    emulator.latency = 0
    second = sync(emulator, tmp_path, records, api_version=5)
    assert second.returncode == 0, second.stderr[-3000:]
    assert_every_record_is_in_pardot(emulator, records)
    assert len(emulator.prospects()) == 600


@pytest.mark.parametrize(("api_version", "ampsea"), [(3, False), (4, True), (5, True)])
def test_a_second_identical_run_leaves_a_prospect_named_by_two_identities_as_the_first_did(
    make_emulator: Any, tmp_path: Path, api_version: int, ampsea: bool
) -> None:
    # A user's events: two by Pardot id (with the email), then one by the email alone, each in
    # a batch of its own. The second run sends the first event again (it differs from the
    # id's last one); the last event's fingerprint still matches, but the prospect no longer
    # holds what it wrote.
    emulator: PardotEmulator = make_emulator(ampsea=ampsea)
    prospect = emulator.add_prospect("p0@example.com")
    by_id = {"email": "p0@example.com", "pardot_id": str(prospect["id"])}
    records = [
        {**by_id, "phone": "1", "city": "first"},
        {**by_id, "phone": "2", "city": "second"},
        {"email": "p0@example.com", "phone": "3", "city": "third"},
    ]
    for run in ("first", "second"):
        result = sync(emulator, tmp_path, records, api_version=api_version, batch_size_rows=1)
        assert result.returncode == 0, result.stderr[-3000:]
        held = emulator.prospects()
        assert [(p["phone"], p["city"]) for p in held] == [("3", "third")], run


def test_a_second_run_of_the_business_unit_on_the_store_stops_before_writing(
    make_emulator: Any, tmp_path: Path
) -> None:
    """Before: two runs at once each remembered what it wrote while Pardot kept whichever write
    came last, and a third run counted records 'unchanged' that Pardot no longer held."""
    emulator: PardotEmulator = make_emulator(ampsea=False)
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    store = str(tmp_path / "unchanged.sqlite")
    config = target_config(
        emulator,
        first_dir,
        api_version=3,
        skip_unchanged=True,
        skip_unchanged_store=store,
        batch_size_rows=100,
    )
    # The first run's input stays open: it is mid-run, as long as this test needs.
    process = started_run(config, first_dir / "config.json", people(400, city="first"))
    deadline = time.monotonic() + 60
    while len(emulator.prospects()) < 400:  # its four full batches are written
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.01)

    calls = Calls(emulator)
    second = run_target(
        {**config, "reject_dir": str(second_dir / "rejects")},
        singer_messages("users", people(400, city="second")),
        second_dir,
    )
    assert second.returncode != 0
    assert "another target-pardot run is using skip_unchanged_store" in second.stderr
    assert "Traceback" not in second.stderr
    assert second.states == []
    assert calls.api() == 0  # stopped before it read or wrote anything

    assert process.poll() is None
    process.stdin.close()
    assert process.wait(timeout=60) == 0
    assert {p["city"] for p in emulator.prospects()} == {"first"}
    third = sync(emulator, tmp_path, people(400, city="second"), api_version=3)
    assert third.returncode == 0, third.stderr[-3000:]
    assert {p["city"] for p in emulator.prospects()} == {"second"}
