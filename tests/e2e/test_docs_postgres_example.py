"""The worked example of docs/input.md, run as written: its target config (stream maps, lookup by
the application's user id) on the records tap-postgres would send for the `users` table.

The block between the doc's markers is read here, so the documented stream map cannot drift
from one that works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pardot_emulator import PardotEmulator
from tests.conftest import run_target, singer_messages, target_config

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "input.md"
BEGIN = "<!-- postgres-example: target-pardot config begin -->"
END = "<!-- postgres-example: target-pardot config end -->"
STREAM = "public-users"  # tap-postgres names streams <schema>-<table>
# The SCHEMA tap-postgres sends for the documented table (nullable columns, bigint id).
SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": ["integer"]},
        "email_address": {"type": ["string"]},
        "given_name": {"type": ["string", "null"]},
        "family_name": {"type": ["string", "null"]},
        "company_name": {"type": ["string", "null"]},
        "plan": {"type": ["string", "null"]},
        "marketing_opt_out": {"type": ["boolean"]},
        "deleted_at": {"type": ["string", "null"], "format": "date-time"},
        "updated_at": {"type": ["string"], "format": "date-time"},
    },
}


def documented_config() -> dict[str, Any]:
    text = DOC.read_text(encoding="utf-8")
    block = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert block.startswith("```yaml") and block.endswith("```"), block[:80]
    return yaml.safe_load(block.removeprefix("```yaml").removesuffix("```"))["config"]


def user(id: int, email: str, **columns: Any) -> dict[str, Any]:
    row = {
        "id": id,
        "email_address": email,
        "given_name": f"Given{id}",
        "family_name": f"Family{id}",
        "company_name": "Acme",
        "plan": "pro",
        "marketing_opt_out": False,
        "deleted_at": None,
        "updated_at": "2026-11-24T09:00:00Z",
    }
    row.update(columns)
    return row


def messages(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sent = singer_messages(STREAM, rows, schema=SCHEMA)
    sent[0]["key_properties"] = ["id"]
    return sent


def test_the_documented_postgres_example_loads_users_and_follows_email_changes(
    make_emulator: Any, tmp_path: Path
) -> None:
    emulator: PardotEmulator = make_emulator(ampsea=True)
    emulator.add_custom_field("app_user_id")
    emulator.add_custom_field("plan_tier")
    already = emulator.add_prospect("old-address@example.com", app_user_id="2")
    documented = documented_config()
    documented.pop("business_unit_id")  # the emulator's, from target_config
    config = target_config(emulator, tmp_path, **documented)

    first = run_target(
        config,
        messages(
            [
                user(1, "ada@example.com", marketing_opt_out=True),
                user(2, "bob@example.com", plan="enterprise"),
                user(3, "gone@example.com", deleted_at="2026-11-01T00:00:00Z"),
            ]
        ),
        tmp_path,
    )
    assert first.returncode == 0, first.stderr[-3000:]
    assert "0 rejected" in first.summary, first.summary
    by_user = {p["app_user_id"]: p for p in emulator.prospects()}
    assert sorted(by_user) == ["1", "2"]  # the deleted user was filtered out
    ada = by_user["1"]
    assert (ada["email"], ada["first_name"], ada["last_name"]) == (
        "ada@example.com",
        "Given1",
        "Family1",
    )
    assert (ada["company"], ada["plan_tier"], ada["is_do_not_email"]) == ("Acme", "pro", True)
    # The prospect that already carried app_user_id 2 was updated, email included.
    assert by_user["2"]["id"] == already["id"]
    assert (by_user["2"]["email"], by_user["2"]["plan_tier"]) == ("bob@example.com", "enterprise")

    # A later run: Ada changed her email; the same prospect follows.
    second = run_target(config, messages([user(1, "ada@new.example.com")]), tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    after = {p["app_user_id"]: p for p in emulator.prospects()}
    assert sorted(after) == ["1", "2"]
    assert (after["1"]["id"], after["1"]["email"]) == (ada["id"], "ada@new.example.com")
