"""End to end, v3: the real `target-pardot` command against the emulator over HTTP."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from pardot_emulator import PardotEmulator
from tests.conftest import run_target, singer_messages, target_config


def mixed_records(count: int, existing_email: str) -> tuple[list[dict[str, Any]], set[str], int]:
    """Identify records of the three shapes, a few bad; returns records, good emails, bad count."""
    rng = random.Random(7)
    records: list[dict[str, Any]] = []
    emails: set[str] = set()
    bad = 0
    for n in range(count):
        email = existing_email if n == 5 else f"person{n}@example.com"
        shape = n % 3
        if n % 17 == 3:
            records.append({"email": f"not-an-email-{n}", "first_name": "Bad"})
            bad += 1
            continue
        if n % 29 == 4:
            records.append({"userId": f"u{n}", "traits": {"firstName": "NoEmail"}})
            bad += 1
            continue
        emails.add(email)
        first = rng.choice(["Ann", "Bob", "Kim", "Lee"])
        if shape == 0:
            records.append(
                {
                    "type": "identify",
                    "userId": f"u{n}",
                    "messageId": f"m{n}",
                    "traits": {
                        "email": f"  {email} ",
                        "firstName": first,
                        "lastName": f"L{n}",
                        "company": {"name": f"Co {n}"},
                        "address": {"city": "Oslo"},
                    },
                    "context": {"traits": {"title": "Engineer"}, "ip": "10.0.0.1"},
                }
            )
        elif shape == 1:
            records.append(
                {
                    "id": f"msg-{n}",
                    "user_id": f"u{n}",
                    "email": email,
                    "first_name": first,
                    "last_name": f"L{n}",
                    "received_at": "2024",
                    "context_library_name": "analytics.js",
                }
            )
        else:
            records.append(
                {
                    "email": email,
                    "first_name": first,
                    "last_name": f"L{n}",
                    "company": f"Co {n}",
                    "city": "Bergen",
                }
            )
    return records, emails, bad


def test_120_mixed_records_update_one_create_the_rest_and_reject_the_bad(
    make_emulator: Any, tmp_path: Path
) -> None:
    emulator: PardotEmulator = make_emulator(ampsea=False)
    existing = emulator.add_prospect(email="existing@example.com", first_name="Old", company="Keep")
    records, emails, bad = mixed_records(120, "existing@example.com")

    result = run_target(
        target_config(emulator, tmp_path, api_version=3),
        singer_messages("identifies", records, state={"bookmarks": {"identifies": 120}}),
        tmp_path,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    prospects = emulator.prospects()
    assert sorted(p["email"] for p in prospects) == sorted(emails | {"existing@example.com"})
    updated = next(p for p in prospects if p["id"] == existing["id"])
    assert updated["first_name"] != "Old"
    assert updated["company"] == "Co 5" or updated["company"] == "Keep"
    assert len(result.rejects) == bad
    assert all(reject["field"] and reject["reason"] for reject in result.rejects)
    assert {r["stream"] for r in result.rejects} == {"identifies"}
    assert emulator.token_calls == 1
    assert emulator.call_counts.get("v3.customField.query", 0) <= 1
    assert emulator.call_counts["v3.prospect.batchUpsert"] <= 3
    assert result.states[-1] == {"bookmarks": {"identifies": 120}}
    assert "target-pardot summary: 120 records" in result.summary


def test_segment_traits_land_in_the_mapped_pardot_fields(
    make_emulator: Any, tmp_path: Path
) -> None:
    emulator: PardotEmulator = make_emulator(ampsea=False)
    emulator.add_custom_field("plan")
    record = {
        "type": "identify",
        "userId": "u1",
        "traits": {
            "email": "ann@example.com",
            "name": "Ann Lee",
            "jobTitle": "CTO",
            "company": {"name": "Acme"},
            "plan": "gold",
            "address": {
                "street": "1 Main St",
                "city": "Oslo",
                "postalCode": "0150",
                "country": "Norway",
            },
            "favouriteColour": "blue",
        },
        "context": {"traits": {"phone": "+47 1234"}},
    }
    result = run_target(
        target_config(emulator, tmp_path, api_version=3),
        singer_messages("users", [record]),
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [prospect] = emulator.prospects()
    assert {
        k: prospect[k]
        for k in (
            "first_name",
            "last_name",
            "job_title",
            "company",
            "address_one",
            "city",
            "zip",
            "country",
            "phone",
            "plan",
        )
    } == {
        "first_name": "Ann",
        "last_name": "Lee",
        "job_title": "CTO",
        "company": "Acme",
        "address_one": "1 Main St",
        "city": "Oslo",
        "zip": "0150",
        "country": "Norway",
        "phone": "+47 1234",
        "plan": "gold",
    }
    assert "favouriteColour" in result.stderr  # reported once as not sent


def test_campaign_id_goes_to_new_prospects_only(make_emulator: Any, tmp_path: Path) -> None:
    emulator: PardotEmulator = make_emulator(ampsea=False)
    old = emulator.add_prospect(email="old@example.com", campaign_id=1)
    records = [
        {"email": "old@example.com", "first_name": "Old"},
        {"email": "new@example.com", "first_name": "New"},
    ]
    result = run_target(
        target_config(emulator, tmp_path, api_version=3, campaign_id=42),
        singer_messages("users", records),
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    by_email = {p["email"]: p for p in emulator.prospects()}
    assert str(by_email["new@example.com"]["campaign_id"]) == "42"
    assert str(by_email["old@example.com"]["campaign_id"]) == "1"
    assert by_email["old@example.com"]["id"] == old["id"]
    assert by_email["old@example.com"]["first_name"] == "Old"
    assert "1 created, 1 updated" in result.summary


def test_wrong_api_version_stops_with_a_fix_and_no_state(
    make_emulator: Any, tmp_path: Path
) -> None:
    emulator: PardotEmulator = make_emulator(ampsea=True)
    result = run_target(
        target_config(emulator, tmp_path, api_version=3),
        singer_messages("users", [{"email": "a@example.com"}], state={"bookmarks": {"users": 1}}),
        tmp_path,
    )
    assert result.returncode != 0
    assert "api_version" in result.stderr and "88" in result.stderr
    assert result.states == []
    assert emulator.prospects() == []
