"""End to end, what only v5 does: the real command against the emulator, AMPSEA on and off.

The matching rules v5 shares with v4 (Pardot id, fid, lookup field, email only, strategies,
duplicates, values Pardot refuses, switched-off events...) are in test_matching_rules, run on
both versions, with v5's call counts for them. Here: fids resolved by one scan of the prospects
(15- and 18-character forms), a fid no prospect carries rejected rather than created,
upsertLatestByEmail giving a campaign to created prospects only (answered 200 or 201),
match_by_email false on a unique-email unit, traits v5 cannot write, concurrency errors
retried, and what v5 runs cost.

v5 works for both kinds of business unit, so most rules run on both. Call counts are asserted
per rule from the emulator's own tally (every v5 run also reads the custom fields once).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pardot_emulator import PardotEmulator
from tests.conftest import TargetRun, run_target, singer_messages, target_config

QUERY = "v5.prospects.query"
CREATE = "v5.prospects.create"
UPDATE = "v5.prospects.update"
UPSERT = "v5.prospects.upsertLatestByEmail"
CUSTOM_FIELDS = "v5.customFields.query"
LEAD = "00Q000000000001AAA"  # 18 characters; its 15-character form is 00Q000000000001
LONG_AGO = "2020-01-01 00:00:00"


@pytest.fixture(params=[True, False], ids=["ampsea", "unique-email"])
def unit(request: pytest.FixtureRequest, make_emulator: Any) -> PardotEmulator:
    emulator = make_emulator(ampsea=request.param)
    emulator.add_custom_field("org_id")
    return emulator


@pytest.fixture
def ampsea(make_emulator: Any) -> PardotEmulator:
    emulator = make_emulator(ampsea=True)
    emulator.add_custom_field("org_id")
    return emulator


def sync(
    emulator: PardotEmulator,
    tmp_path: Path,
    records: list[dict[str, Any]],
    **settings: Any,
) -> TargetRun:
    result = run_target(
        target_config(emulator, tmp_path, api_version=5, **settings),
        singer_messages("users", records),
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def calls(emulator: PardotEmulator) -> dict[str, int]:
    """The run's v5 calls, without the one custom-field read every run makes."""
    counts = {name: n for name, n in emulator.call_counts.items() if name != "oauth.token"}
    assert counts.pop(CUSTOM_FIELDS, 0) >= 1
    return counts


# -- Salesforce fid --------------------------------------------------------------------------


def test_fid_is_resolved_by_one_scan_and_patched(unit: PardotEmulator, tmp_path: Path) -> None:
    lead = unit.add_prospect(email="bob@x.com", crm_lead_fid=LEAD)
    contact = unit.add_prospect(email="cy@x.com", crm_contact_fid="003000000000009")
    unit.add_prospect(email="dee@x.com")
    sync(
        unit,
        tmp_path,
        [
            {"pardot_fid": LEAD[:15], "company": "Acme"},  # the 15-character form of the id
            {"pardot_fid": "003000000000009", "email": "cy.new@x.com"},
        ],
    )
    assert unit.prospect(lead["id"])["company"] == "Acme"
    assert unit.prospect(contact["id"])["email"] == "cy.new@x.com"
    assert len(unit.prospects()) == 3
    assert calls(unit) == {QUERY: 1, UPDATE: 2}


def test_a_fid_no_prospect_carries_is_rejected_not_created(
    unit: PardotEmulator, tmp_path: Path
) -> None:
    result = sync(unit, tmp_path, [{"pardot_fid": "00Q0000000000ZZ", "email": "n@x.com"}])
    [reject] = result.rejects
    assert (reject["code"], reject["field"]) == (77, "pardot_fid")
    assert unit.prospects() == []


# -- email only ------------------------------------------------------------------------------------


@pytest.mark.parametrize("created_status", [200, 201])
def test_email_only_with_a_campaign_gives_it_only_to_created_prospects(
    unit: PardotEmulator, tmp_path: Path, created_status: int
) -> None:
    unit.upsert_created_status = created_status
    # Made long before the run: the target tells a create from an update by createdAt, since
    # Pardot's answer status does not say.
    known = unit.add_prospect(email="eve@x.com", created_at=LONG_AGO)
    sync(
        unit,
        tmp_path,
        [{"email": "eve@x.com", "city": "Oslo"}, {"email": "zed@x.com"}],
        campaign_id=7,
    )
    assert unit.prospect(known["id"])["campaign_id"] == 1
    [created] = [p for p in unit.prospects() if p["email"] == "zed@x.com"]
    assert created["campaign_id"] == 7
    assert calls(unit) == {UPSERT: 2, UPDATE: 1}


def test_match_by_email_false_on_a_unique_email_unit_rejects_with_code_9(
    make_emulator: Any, tmp_path: Path
) -> None:
    emulator = make_emulator(ampsea=False)
    emulator.add_prospect(email="eve@x.com")
    result = sync(emulator, tmp_path, [{"email": "eve@x.com"}], match_by_email=False)
    [reject] = result.rejects
    assert (reject["code"], reject["field"]) == (9, "email")
    assert len(emulator.prospects()) == 1


# -- fields and errors -----------------------------------------------------------------------


def test_unknown_traits_are_not_sent_but_reported_and_the_write_succeeds(
    unit: PardotEmulator, tmp_path: Path
) -> None:
    result = sync(
        unit,
        tmp_path,
        [
            {
                "email": "ann@x.com",
                "first_name": "Ann",
                "favourite_colour": "red",
                "crm_owner_fid": "005000000000001",  # a v3/v4 field v5 cannot write
                "org_id": "org-1",
            }
        ],
    )
    [prospect] = unit.prospects()
    assert (prospect["first_name"], prospect["org_id"]) == ("Ann", "org-1")
    assert prospect["crm_owner_fid"] is None
    assert result.rejects == []
    # One warning for the run (each log line currently reaches stderr twice, hence the set).
    [line] = {line for line in result.stderr.splitlines() if "Traits not sent" in line}
    assert "favourite_colour" in line and "crm_owner_fid" in line
    assert "Admin > Configure Fields > Prospect Fields" in line


@pytest.mark.parametrize(
    ("endpoint", "retried"),
    [(None, CUSTOM_FIELDS), (UPDATE, UPDATE)],  # the run's first call, or the write itself
)
def test_concurrency_errors_are_retried(
    unit: PardotEmulator, tmp_path: Path, endpoint: str | None, retried: str
) -> None:
    known = unit.add_prospect(email="a@x.com")
    unit.queue_error(66, endpoint=endpoint, count=2)
    result = sync(unit, tmp_path, [{"pardot_id": str(known["id"]), "city": "Oslo"}])
    assert unit.prospect(known["id"])["city"] == "Oslo"
    assert result.rejects == []
    assert "1 updated" in result.summary
    # Two HTTP 429 answers with code 66, then the call that succeeds.
    assert unit.call_counts[retried] == 3
    assert unit.call_counts[UPDATE] == (3 if retried == UPDATE else 1)


# -- what it costs ---------------------------------------------------------------------------


def test_cost_id_and_fid_records(ampsea: PardotEmulator, tmp_path: Path) -> None:
    ids = [
        ampsea.add_prospect(email=f"p{n}@x.com", crm_lead_fid=f"00Q{n:012d}")["id"]
        for n in range(1500)
    ]
    records = [
        {"pardot_id": str(ids[n]), "city": "Oslo"}
        if n % 2
        else {"pardot_fid": f"00Q{n:012d}", "city": "Oslo"}
        for n in range(200)
    ]
    sync(ampsea, tmp_path, records)
    # One PATCH per record; the fids cost one scan of 1500 prospects, 1000 a page.
    assert calls(ampsea) == {UPDATE: 200, QUERY: 2}


@pytest.mark.parametrize(
    ("strategy", "queries"),
    [
        ("read", 20),  # one query per distinct email
        ("scan", 3),  # 2500 prospects, 1000 a page
        ("auto", 3),  # the lazy scan ends before it has cost the 20 reads
    ],
)
def test_cost_lookup_records(
    ampsea: PardotEmulator, tmp_path: Path, strategy: str, queries: int
) -> None:
    for n in range(2500):
        ampsea.add_prospect(email=f"p{n}@x.com", org_id=f"org-{n}")
    records = [
        {"email": f"p{n}@x.com", "org_id": f"org-{n}", "city": "Oslo"} for n in range(0, 5000, 250)
    ]  # half match existing prospects, half are new
    sync(ampsea, tmp_path, records, lookup_field="org_id", lookup_strategy=strategy)
    assert calls(ampsea) == {QUERY: queries, UPDATE: 10, CREATE: 10}
    assert len(ampsea.prospects()) == 2510


def test_cost_auto_reads_when_a_scan_would_cost_more(
    ampsea: PardotEmulator, tmp_path: Path
) -> None:
    for n in range(3500):
        ampsea.add_prospect(email=f"p{n}@x.com", org_id=f"org-{n}")
    sync(
        ampsea,
        tmp_path,
        [{"email": "p7@x.com", "org_id": "org-7", "city": "Oslo"}],
        lookup_field="org_id",
    )
    # Two scan pages (as many as the read, plus one), then the read: the scan of 4 pages
    # is left unfinished.
    assert calls(ampsea) == {QUERY: 3, UPDATE: 1}
    assert [p["city"] for p in ampsea.prospects() if p["org_id"] == "org-7"] == ["Oslo"]
