"""The import ledger file: where it lives, what it keeps, who may use it."""

from __future__ import annotations

import errno
import json
import stat
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from target_pardot.dialects.imports_state import ImportLedger, LedgerEntry, default_path
from target_pardot.errors import SettingsError
from target_pardot.settings import Settings

BU = "0Uv000000000001AAA"


def settings(**overrides: Any) -> Settings:
    return Settings.from_config({"business_unit_id": BU, "access_token": "t", **overrides})


def entry(import_id: int, **creates: int) -> LedgerEntry:
    return LedgerEntry(import_id, "upsert", "2026-01-01T00:00:00+00:00", Counter(creates))


def test_the_default_file_is_in_the_meltano_project_else_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MELTANO_PROJECT_ROOT", raising=False)
    assert default_path(BU) == tmp_path / f"target-pardot-imports-{BU}.json"
    monkeypatch.setenv("MELTANO_PROJECT_ROOT", str(tmp_path / "project"))
    assert default_path(BU) == tmp_path / "project" / ".meltano" / "target-pardot" / (
        f"imports-{BU}.json"
    )
    ledger = ImportLedger.for_settings(settings(), api="v5")
    assert ledger.path == default_path(BU)
    # A relative path of one's own is taken from the project too, as the default is.
    chosen = ImportLedger.for_settings(settings(import_state_path="x/own.json"), api="v5")
    assert chosen.path == tmp_path / "project" / "x" / "own.json"
    monkeypatch.delenv("MELTANO_PROJECT_ROOT")
    chosen = ImportLedger.for_settings(settings(import_state_path="x/own.json"), api="v5")
    assert chosen.path == tmp_path / "x" / "own.json"


def test_entries_are_kept_owner_only_and_the_file_goes_when_the_last_is_forgotten(
    tmp_path: Path,
) -> None:
    ledger = ImportLedger(tmp_path / "state" / "imports.json", scope={"business_unit_id": BU})
    ledger.record(entry(1, abc=2))
    ledger.record(entry(2))
    assert stat.S_IMODE(ledger.path.stat().st_mode) == 0o600
    assert [(e.import_id, dict(e.creates)) for e in ledger.pending()] == [(1, {"abc": 2}), (2, {})]
    ledger.forget(1)
    assert [e.import_id for e in ledger.pending()] == [2]
    ledger.forget(2)
    assert not ledger.path.exists()
    assert not list(ledger.path.parent.glob(".imports-*"))  # no temporary file left behind


def test_each_run_sees_only_its_own_business_unit_host_and_api(tmp_path: Path) -> None:
    path = tmp_path / "imports.json"
    ours = ImportLedger(path, scope={"business_unit_id": BU, "api": "v5"})
    other = ImportLedger(path, scope={"business_unit_id": "0Uv000000000002AAA", "api": "v5"})
    ours.record(entry(1))
    ours.close()  # runs of different units one after the other, sharing a file
    other.record(entry(1))
    other.close()
    ours.forget(1)
    assert ours.pending() == []
    assert [e.import_id for e in other.pending()] == [1]


def test_two_runs_cannot_share_one_ledger(tmp_path: Path) -> None:
    path = tmp_path / "imports.json"
    first = ImportLedger(path, scope={})
    first.acquire()
    with pytest.raises(SettingsError, match="another target-pardot run"):
        ImportLedger(path, scope={}).acquire()
    first.close()
    ImportLedger(path, scope={}).acquire()  # free again once the first run ended


def test_an_unreadable_ledger_stops_the_run_rather_than_risk_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "imports.json"
    path.write_text("{not json")
    with pytest.raises(SettingsError, match="not readable"):
        ImportLedger(path, scope={}).pending()
    path.write_text(json.dumps({"imports": "nope"}))
    with pytest.raises(SettingsError, match="not readable"):
        ImportLedger(path, scope={}).pending()


@pytest.mark.parametrize(
    ("entries", "named"),
    [
        pytest.param(
            [{"id": "x", "creates": {}}], "entry 1 has no import id", id="id not a number"
        ),
        pytest.param([{"id": 7}], "entry 1 (import 7) has no creates", id="no creates"),
        pytest.param(
            [{"id": 7, "creates": {}}, {"id": 8, "creates": {"abc": "2"}}],
            "entry 2 (import 8) has no creates",
            id="a count that is not a number",
        ),
        pytest.param([{"id": 7, "creates": {}}, "7"], "entry 2 is not an object", id="not object"),
    ],
)
def test_a_damaged_entry_stops_the_run_instead_of_being_passed_over(
    tmp_path: Path, entries: list[Any], named: str
) -> None:
    """Before: an entry without creates was dropped silently (its import's creates could then
    be made twice), and a non-numeric id raised a bare ValueError."""
    path = tmp_path / "imports.json"
    path.write_text(json.dumps({"format": 1, "imports": entries}))
    ledger = ImportLedger(path, scope={})
    with pytest.raises(SettingsError) as stopped:
        ledger.pending()
    assert f"the import state file {path} is not readable ({named}" in str(stopped.value)
    with pytest.raises(SettingsError, match="not readable"):
        ledger.record(entry(9))
    assert json.loads(path.read_text())["imports"] == entries  # left as it was


def test_a_file_the_disk_refuses_stops_the_run_naming_the_file_and_the_setting(
    tmp_path: Path,
) -> None:
    """Before: a raw OSError traceback. (A path under a file, not a read-only directory: the
    tests may run as root, who writes whatever the permissions say.)"""
    (tmp_path / "a-file").write_text("")
    ledger = ImportLedger(tmp_path / "a-file" / "imports.json", scope={})
    for refused in (ledger.acquire, lambda: ledger.record(entry(1))):
        with pytest.raises(SettingsError) as stopped:
            refused()
        message = str(stopped.value)
        assert f"the import state file {ledger.path} cannot be used (" in message
        assert "point import_state_path at a writable place" in message
        assert stopped.value.__suppress_context__

    a_directory = tmp_path / "imports.json"
    a_directory.mkdir()
    with pytest.raises(SettingsError, match=r"imports.json cannot be read \("):
        ImportLedger(a_directory, scope={}).pending()


def test_a_write_the_disk_refuses_stops_the_run_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = ImportLedger(tmp_path / "imports.json", scope={})
    ledger.record(entry(1))

    def full_disk(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("target_pardot.dialects.imports_state.tempfile.mkstemp", full_disk)
    with pytest.raises(SettingsError, match=r"cannot be written \(No space left on device\)"):
        ledger.record(entry(2))
    assert [e.import_id for e in ledger.pending()] == [1]  # the old file stands
