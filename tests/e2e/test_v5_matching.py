"""End to end, v5 matching rules: the real command against the emulator, AMPSEA on and off.

v5 works for both kinds of business unit, so most rules run on both. Call counts are asserted
per rule from the emulator's own tally (every v5 run also reads the custom fields once).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from pardot_emulator import PardotEmulator
from tests.conftest import TargetRun, run_target, singer_messages, target_config

QUERY = "v5.prospects.query"
READ = "v5.prospects.read"
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


# -- Pardot id -------------------------------------------------------------------------------


def test_pardot_id_patches_that_prospect_only(unit: PardotEmulator, tmp_path: Path) -> None:
    first = unit.add_prospect(email="ann@x.com", first_name="A1")
    other_email = "ann@x.com" if unit.ampsea else "ann2@x.com"
    second = unit.add_prospect(email=other_email, first_name="A2")
    result = sync(
        unit,
        tmp_path,
        [
            {
                "userId": "u",
                "traits": {"email": "ann@x.com", "firstName": "New", "isDoNotEmail": "yes"},
                "integrations": {"Pardot": {"id": str(first["id"])}},
            }
        ],
    )
    assert unit.prospect(first["id"])["first_name"] == "New"
    assert unit.prospect(first["id"])["is_do_not_email"] is True
    assert unit.prospect(second["id"])["first_name"] == "A2"
    assert len(unit.prospects()) == 2
    assert calls(unit) == {UPDATE: 1}
    assert "1 updated" in result.summary


def test_unknown_pardot_id_is_rejected_with_code_3(unit: PardotEmulator, tmp_path: Path) -> None:
    result = sync(unit, tmp_path, [{"pardot_id": "999999", "city": "Oslo"}])
    [reject] = result.rejects
    assert (reject["code"], reject["field"]) == (3, "pardot_id")
    assert unit.prospects() == []


def test_id_and_fid_of_different_prospects_is_rejected(
    unit: PardotEmulator, tmp_path: Path
) -> None:
    one = unit.add_prospect(email="a@x.com")
    unit.add_prospect(email="b@x.com", crm_contact_fid="003000000000002")
    result = sync(
        unit,
        tmp_path,
        [{"pardot_id": str(one["id"]), "pardot_fid": "003000000000002", "city": "Oslo"}],
    )
    [reject] = result.rejects
    assert (reject["code"], reject["field"]) == (81, "pardot_fid")
    assert unit.prospect(one["id"])["city"] is None
    assert calls(unit) == {READ: 1}


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


# -- lookup field ----------------------------------------------------------------------------


def test_lookup_by_trait_patches_the_match_and_creates_the_rest(
    unit: PardotEmulator, tmp_path: Path
) -> None:
    shared = "kim@x.com" if unit.ampsea else "kim1@x.com"
    other = unit.add_prospect(email=shared, org_id="org-1")
    match = unit.add_prospect(email="kim@x.com", org_id="org-2")
    result = sync(
        unit,
        tmp_path,
        [
            {"email": "kim@x.com", "org_id": "org-2", "city": "Oslo"},
            {"email": "lee@x.com", "org_id": "org-3", "city": "Rome"},
        ],
        lookup_field="org_id",
        lookup_strategy="read",
        campaign_id=7,
    )
    assert unit.prospect(match["id"])["city"] == "Oslo"
    assert unit.prospect(match["id"])["campaign_id"] == 1  # an update keeps the campaign
    assert unit.prospect(other["id"])["city"] is None
    [created] = [p for p in unit.prospects() if p["org_id"] == "org-3"]
    assert (created["city"], created["email"], created["campaign_id"]) == ("Rome", "lee@x.com", 7)
    assert calls(unit) == {QUERY: 2, UPDATE: 1, CREATE: 1}
    assert "1 created, 1 updated" in result.summary


def test_lookup_by_user_id_matches_and_writes_the_user_id(
    unit: PardotEmulator, tmp_path: Path
) -> None:
    known = unit.add_prospect(email="lee@x.com", org_id="user-7")
    sync(
        unit,
        tmp_path,
        [
            {"userId": "user-7", "traits": {"email": "lee@x.com", "firstName": "Lee"}},
            {"userId": "user-8", "traits": {"email": "max@x.com", "firstName": "Max"}},
        ],
        lookup_field="org_id",
        use_user_id_as_lookup=True,
    )
    assert unit.prospect(known["id"])["first_name"] == "Lee"
    [created] = [p for p in unit.prospects() if p["id"] != known["id"]]
    assert (created["org_id"], created["first_name"]) == ("user-8", "Max")


def test_scan_finds_a_prospect_whose_email_changed(unit: PardotEmulator, tmp_path: Path) -> None:
    known = unit.add_prospect(email="old@x.com", org_id="org-1")
    sync(
        unit,
        tmp_path,
        [{"email": "new@x.com", "org_id": "org-1", "city": "Oslo"}],
        lookup_field="org_id",
        lookup_strategy="scan",
    )
    assert [(p["id"], p["email"], p["city"]) for p in unit.prospects()] == [
        (known["id"], "new@x.com", "Oslo")
    ]
    assert calls(unit) == {QUERY: 1, UPDATE: 1}


def test_duplicate_identities_in_one_batch_are_merged(unit: PardotEmulator, tmp_path: Path) -> None:
    result = sync(
        unit,
        tmp_path,
        [
            {"email": "a@x.com", "org_id": "org-1", "first_name": "One", "city": "Oslo"},
            {"email": "a@x.com", "org_id": "org-1", "first_name": "Two"},
        ],
        lookup_field="org_id",
    )
    [prospect] = unit.prospects()
    assert (prospect["first_name"], prospect["city"]) == ("Two", "Oslo")
    assert "1 merged as duplicates" in result.summary
    assert calls(unit)[CREATE] == 1


@pytest.mark.parametrize("strategy", ["read", "scan", "auto"])
def test_a_later_batch_patches_the_prospect_this_run_created(
    unit: PardotEmulator, tmp_path: Path, strategy: str
) -> None:
    records: list[dict[str, Any]] = [
        {"email": f"p{n}@x.com", "org_id": f"org-{n}"} for n in range(3)
    ]
    records.append({"email": "p0@x.com", "org_id": "org-0", "city": "Later"})
    result = sync(
        unit,
        tmp_path,
        records,
        lookup_field="org_id",
        lookup_strategy=strategy,
        batch_size_rows=3,
    )
    assert len(unit.prospects()) == 3
    assert [p["city"] for p in unit.prospects() if p["org_id"] == "org-0"] == ["Later"]
    # Remembered by the id the create answered with: no read back, no second create.
    assert calls(unit)[CREATE] == 3 and calls(unit)[UPDATE] == 1
    assert "3 created, 1 updated" in result.summary


@pytest.mark.parametrize("strategy", ["read", "scan", "auto"])
def test_the_three_strategies_give_the_same_prospects(
    make_emulator: Any, tmp_path: Path, strategy: str
) -> None:
    emulator = make_emulator(ampsea=True)
    emulator.add_custom_field("org_id")
    for n in range(0, 30, 3):
        emulator.add_prospect(email=f"p{n}@x.com", org_id=f"org-{n}")
    records = [{"email": f"p{n}@x.com", "org_id": f"org-{n}", "city": f"C{n}"} for n in range(30)]
    sync(emulator, tmp_path, records, lookup_field="org_id", lookup_strategy=strategy)
    state = sorted((p["email"], p["org_id"], p["city"]) for p in emulator.prospects())
    assert state == sorted((f"p{n}@x.com", f"org-{n}", f"C{n}") for n in range(30))


# -- email only ------------------------------------------------------------------------------


def test_email_only_upserts_the_latest_and_twice_never_duplicates(
    unit: PardotEmulator, tmp_path: Path
) -> None:
    # Existing prospects were made long before the run: the target tells a create from an
    # update by createdAt, since Pardot's answer status does not say.
    if unit.ampsea:
        older = unit.add_prospect(
            email="eve@x.com", created_at=LONG_AGO, last_activity_at="2020-01-01 00:00:00"
        )
    newer = unit.add_prospect(
        email="eve@x.com", created_at=LONG_AGO, last_activity_at="2024-01-01 00:00:00"
    )
    records = [{"email": "eve@x.com", "city": "Oslo"}, {"email": "zed@x.com", "city": "Rome"}]
    first = sync(unit, tmp_path, records)
    # Pardot's timestamps are whole seconds: a prospect made in the second or two before an
    # upsert cannot be told from one the upsert made. Scheduled runs are further apart.
    time.sleep(2.5)
    second = sync(unit, tmp_path, records)
    assert unit.prospect(newer["id"])["city"] == "Oslo"
    if unit.ampsea:
        assert unit.prospect(older["id"])["city"] is None
    emails = sorted(p["email"] for p in unit.prospects())
    assert emails == (["eve@x.com"] if unit.ampsea else []) + ["eve@x.com", "zed@x.com"]
    assert "1 created, 1 updated" in first.summary
    assert "0 created, 2 updated" in second.summary
    # One call per record and run, never a query.
    assert calls(unit) == {UPSERT: 4}


@pytest.mark.parametrize("created_status", [200, 201])
def test_email_only_with_a_campaign_gives_it_only_to_created_prospects(
    unit: PardotEmulator, tmp_path: Path, created_status: int
) -> None:
    unit.upsert_created_status = created_status
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


def test_match_by_email_false_applies_pardots_raw_rule(
    ampsea: PardotEmulator, tmp_path: Path
) -> None:
    ampsea.add_prospect(email="eve@x.com")
    sync(ampsea, tmp_path, [{"email": "eve@x.com", "city": "Oslo"}], match_by_email=False)
    assert len([p for p in ampsea.prospects() if p["email"] == "eve@x.com"]) == 2
    assert calls(ampsea) == {CREATE: 1}


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


def test_an_email_pardot_refuses_is_rejected_with_its_code(
    unit: PardotEmulator, tmp_path: Path
) -> None:
    # Passes the target's own check (Unicode letters), but the emulated Pardot refuses it.
    result = sync(unit, tmp_path, [{"email": "jürgen@x.com"}, {"email": "ok@x.com"}])
    [reject] = result.rejects
    assert (reject["code"], reject["field"]) == (4, "email")
    assert reject["record"]["email"] == "jürgen@x.com"
    assert [p["email"] for p in unit.prospects()] == ["ok@x.com"]


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


def test_a_field_pardot_refuses_is_rejected_naming_it(make_emulator: Any, tmp_path: Path) -> None:
    emulator = make_emulator(ampsea=True)
    emulator.add_custom_field("seats", type="Number")
    result = sync(emulator, tmp_path, [{"email": "a@x.com", "score": "12", "seats": "many"}])
    [reject] = result.rejects
    assert reject["field"] == "seats"
    assert emulator.prospects() == []


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
