"""End to end, `target-pardot --config c.json --test`: checks the connection and settings with a
few reads, prints what it checked, writes nothing, and exits 0 only when everything passed.
(`meltano invoke target-pardot --test` is in test_meltano_pipeline.py.)"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pardot_emulator import PardotEmulator
from tests.conftest import TARGET_COMMAND, target_config

READS = {
    "oauth.token",
    "v3.customField.query",
    "v4.customField.query",
    "v5.customFields.query",
    "v3.prospect.query",
    "v4.prospect.query",
    "v5.prospects.query",
}


def check(
    emulator: PardotEmulator, tmp_path: Path, **settings: Any
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(target_config(emulator, tmp_path, **settings)))
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TARGET_PARDOT")}
    result = subprocess.run(
        [TARGET_COMMAND, "--config", str(config), "--test"],
        stdin=subprocess.DEVNULL,  # it must not wait for Singer input
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=False,
    )
    assert set(emulator.call_counts) <= READS, emulator.call_counts
    assert not (tmp_path / "rejects.jsonl").exists()
    return result


def checks(output: str) -> dict[str, tuple[str, str]]:
    """Each check line, `  <ok|FAIL|->  <name>: <detail>`, as {name: (mark, detail)}."""
    found = re.findall(r"^  (ok|FAIL|-)\s+(.+?): (.*)$", output, flags=re.MULTILINE)
    return {name: (mark, detail) for mark, name, detail in found}


@pytest.fixture
def unit(make_emulator: Any) -> PardotEmulator:
    emulator: PardotEmulator = make_emulator(ampsea=True)
    emulator.add_custom_field("org_id")
    return emulator


@pytest.mark.parametrize("api_version", [4, 5])
def test_everything_right_prints_each_check_and_exits_0(
    unit: PardotEmulator, tmp_path: Path, api_version: int
) -> None:
    result = check(unit, tmp_path, api_version=api_version, lookup_field="org_id")
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    out = result.stdout
    found = checks(out)
    assert {name: mark for name, (mark, _) in found.items()} == {
        "credentials": "ok",
        "business unit": "ok",
        f"api_version {api_version}": "ok",
        "lookup_field org_id": "ok",
    }
    assert "Salesforce issued a token" in found["credentials"][1]
    assert found["business unit"][1] == "answered the custom field list (1 custom field: org_id)"
    # No quota figure is made up: Pardot has no endpoint for it.
    assert "Pardot has no API that reports the calls used today" in out
    assert "every check passed" in out
    assert unit.prospects() == []


def test_v3_on_a_unit_with_several_prospects_per_email_says_to_use_4(
    unit: PardotEmulator, tmp_path: Path
) -> None:
    result = check(unit, tmp_path, api_version=3)
    assert result.returncode == 1
    mark, detail = checks(result.stdout)["api_version 3"]
    assert mark == "FAIL" and "Pardot error 88" in detail
    assert "set api_version to 4" in detail


def test_v4_on_a_unit_with_unique_emails_says_to_use_3(make_emulator: Any, tmp_path: Path) -> None:
    result = check(make_emulator(ampsea=False), tmp_path, api_version=4)
    assert result.returncode == 1
    mark, detail = checks(result.stdout)["api_version 4"]
    assert mark == "FAIL" and "Pardot error 89" in detail
    assert "set api_version to 3" in detail


def test_a_lookup_field_the_unit_lacks_is_named_with_the_ones_it_has(
    unit: PardotEmulator, tmp_path: Path
) -> None:
    result = check(unit, tmp_path, lookup_field="app_user_id")
    assert result.returncode == 1
    mark, detail = checks(result.stdout)["lookup_field app_user_id"]
    assert mark == "FAIL" and "Custom fields that exist: org_id" in detail


def test_refused_credentials_fail_first_and_never_show_the_secret(
    unit: PardotEmulator, tmp_path: Path
) -> None:
    result = check(unit, tmp_path, client_secret="not-the-secret-4711")
    assert result.returncode == 1
    assert checks(result.stdout)["credentials"][0] == "FAIL"
    assert checks(result.stdout)["business unit"] == ("-", "not checked: it needs a token")
    assert "not-the-secret-4711" not in result.stdout + result.stderr


def test_an_unknown_business_unit_fails_its_check(unit: PardotEmulator, tmp_path: Path) -> None:
    result = check(unit, tmp_path, api_version=5, business_unit_id="0Uv000000000002AAA")
    assert result.returncode == 1
    mark, detail = checks(result.stdout)["business unit"]
    assert mark == "FAIL" and "Pardot error 201" in detail
