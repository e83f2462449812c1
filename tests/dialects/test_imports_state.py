"""The import ledger file: where it lives, what it keeps, who may use it."""

from __future__ import annotations

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
