"""End to end, the matching rules v4 and v5 share: the real command against the emulator.

Every rule here runs once per API version. v4 needs an AMPSEA business unit (on one without
AMPSEA it stops at start-up), so it runs on one; v5 works for both kinds of unit and runs on
both, AMPSEA on and unique emails, except the rules about several prospects sharing an email,
which run on AMPSEA units only. The `pardot` fixture is one such case: an API version and an
emulated business unit to run the target against (`ampsea_pardot`: AMPSEA units only).

What a rule asserts is the same in both versions: the prospects the emulator holds afterwards,
the rejects (code and field) and the run's summary counts. Where the versions get there
differently, a small per-version table in the test says how:

- the calls a rule costs: `expect_calls(v5=...)` (exactly these calls) and
  `expect_call_counts(v4=..., v5=...)` (these endpoints this often); a version the table does
  not name has its calls for that rule left unpinned (v4's costs: test_v4_matching);
- which prospect is "the latest with this email" (`LATEST_BY`).

What only one version does stays in its own file:

- test_v4_matching: v4 on a unit without AMPSEA (error 89), and what v4 runs cost.
- test_v5_matching: fids resolved by one scan (15- and 18-character forms), a fid no prospect
  carries rejected rather than created, upsertLatestByEmail with a campaign under both created
  statuses, match_by_email false on a unique-email unit (code 9), traits v5 cannot write,
  concurrency errors retried, and what v5 runs cost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pardot_emulator import PardotEmulator
from tests.conftest import TargetRun, run_target, singer_messages, target_config

V4_READ = "v4.prospect.read"
QUERY = "v5.prospects.query"
READ = "v5.prospects.read"
CREATE = "v5.prospects.create"
UPDATE = "v5.prospects.update"
UPSERT = "v5.prospects.upsertLatestByEmail"
CUSTOM_FIELDS = "v5.customFields.query"
LONG_AGO = "2020-01-01 00:00:00"
STRATEGIES = ["read", "scan", "auto"]


@dataclass
class Pardot:
    """The target at one API version, against one emulated business unit (with an org_id
    custom field), writing its config and reject file under `tmp_path`."""

    api_version: int
    unit: PardotEmulator
    tmp_path: Path

    def sync(self, records: list[dict[str, Any]], **settings: Any) -> TargetRun:
        """One run of the target over `records`, which must end well."""
        result = self.run(records, **settings)
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    def run(self, records: list[dict[str, Any]], **settings: Any) -> TargetRun:
        config = target_config(self.unit, self.tmp_path, api_version=self.api_version, **settings)
        return run_target(config, singer_messages("users", records), self.tmp_path)

    def calls(self) -> dict[str, int]:
        """The runs' API calls, without the token requests and v5's custom-field read."""
        counts = {name: n for name, n in self.unit.call_counts.items() if name != "oauth.token"}
        if self.api_version == 5:
            assert counts.pop(CUSTOM_FIELDS, 0) >= 1  # every v5 run reads the custom fields
        return counts

    def expect_calls(self, **per_version: dict[str, int]) -> None:
        """The runs made exactly these calls, for the versions given (`v4=`, `v5=`)."""
        expected = per_version.get(f"v{self.api_version}")
        if expected is not None:
            assert self.calls() == expected

    def expect_call_counts(self, **per_version: dict[str, int]) -> None:
        """The runs called these endpoints this often (others unpinned), per version."""
        expected = per_version.get(f"v{self.api_version}")
        if expected is not None:
            counts = self.calls()
            assert {name: counts.get(name, 0) for name in expected} == expected


def make_pardot(make_emulator: Any, tmp_path: Path, api_version: int, ampsea: bool) -> Pardot:
    unit = make_emulator(ampsea=ampsea)
    unit.add_custom_field("org_id")
    return Pardot(api_version, unit, tmp_path)


@pytest.fixture(
    params=[(4, True), (5, True), (5, False)], ids=["v4", "v5-ampsea", "v5-unique-email"]
)
def pardot(request: pytest.FixtureRequest, make_emulator: Any, tmp_path: Path) -> Pardot:
    """Each version on each kind of business unit it works with."""
    api_version, ampsea = request.param
    return make_pardot(make_emulator, tmp_path, api_version, ampsea)


@pytest.fixture(params=[4, 5], ids=["v4", "v5"])
def ampsea_pardot(request: pytest.FixtureRequest, make_emulator: Any, tmp_path: Path) -> Pardot:
    """Each version on an AMPSEA business unit, where prospects may share an email."""
    return make_pardot(make_emulator, tmp_path, request.param, ampsea=True)


# -- Pardot id and Salesforce fid ------------------------------------------------------------


def test_a_pardot_id_updates_that_prospect_only(pardot: Pardot) -> None:
    unit = pardot.unit
    first = unit.add_prospect(email="ann@x.com", first_name="A1")
    second = unit.add_prospect(email="ann@x.com" if unit.ampsea else "ann2@x.com", first_name="A2")
    result = pardot.sync(
        [
            {
                "userId": "u",
                "traits": {"email": "ann@x.com", "firstName": "New", "isDoNotEmail": "yes"},
                "integrations": {"Pardot": {"id": str(first["id"])}},
            }
        ]
    )
    assert unit.prospect(first["id"])["first_name"] == "New"
    assert unit.prospect(first["id"])["is_do_not_email"] is True
    assert unit.prospect(second["id"])["first_name"] == "A2"
    assert len(unit.prospects()) == 2
    assert "1 updated" in result.summary
    pardot.expect_calls(v5={UPDATE: 1})


@pytest.mark.parametrize(
    "record",
    [
        {"pardot_id": "999999", "city": "Oslo"},
        # With an email, v4's batchUpsert would create a prospect for the unknown id.
        {"pardot_id": "999999", "email": "gone@x.com", "city": "Oslo"},
        {"pardot_id": "0", "email": "zero@x.com"},  # a warehouse's 0 for "none" is no id
    ],
    ids=["without-email", "with-email", "zero"],
)
def test_an_unknown_pardot_id_is_rejected_with_code_3(
    pardot: Pardot, record: dict[str, Any]
) -> None:
    for _ in range(2):
        result = pardot.sync([record])
        [reject] = result.rejects
        assert (reject["code"], reject["field"]) == (3, "pardot_id")
        assert "1 rejected" in result.summary and "0 updated" in result.summary
    assert pardot.unit.prospects() == []


def test_a_pardot_id_and_fid_of_different_prospects_are_rejected_with_code_81(
    pardot: Pardot,
) -> None:
    unit = pardot.unit
    one = unit.add_prospect(email="a@x.com")
    unit.add_prospect(email="b@x.com", crm_contact_fid="003000000000002")
    result = pardot.sync(
        [{"pardot_id": str(one["id"]), "pardot_fid": "003000000000002", "city": "Oslo"}]
    )
    [reject] = result.rejects
    assert (reject["code"], reject["field"]) == (81, "pardot_fid")
    assert "do not match" in reject["reason"]
    assert unit.prospect(one["id"])["city"] is None
    pardot.expect_calls(v5={READ: 1})


def test_a_fid_updates_the_prospect_with_that_crm_id(pardot: Pardot) -> None:
    unit = pardot.unit
    lead = unit.add_prospect(email="bob@x.com", crm_lead_fid="00Q000000000001")
    pardot.sync([{"pardot_fid": "00Q000000000001", "company": "Acme"}])
    assert unit.prospect(lead["id"])["company"] == "Acme"
    assert len(unit.prospects()) == 1


# -- lookup field ----------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_lookup_by_trait_updates_the_match_and_creates_the_rest(
    pardot: Pardot, strategy: str
) -> None:
    unit = pardot.unit
    # On an AMPSEA unit all of them share one email: only the lookup value tells them apart.
    other_email, new_email = ("kim@x.com",) * 2 if unit.ampsea else ("kim1@x.com", "lee@x.com")
    other = unit.add_prospect(email=other_email, org_id="org-1")
    match = unit.add_prospect(email="kim@x.com", org_id="org-2")
    result = pardot.sync(
        [
            {"email": "kim@x.com", "org_id": "org-2", "city": "Oslo"},
            {"email": new_email, "org_id": "org-3", "city": "Rome"},
        ],
        lookup_field="org_id",
        lookup_strategy=strategy,
        campaign_id=7,
    )
    assert unit.prospect(match["id"])["city"] == "Oslo"
    assert unit.prospect(match["id"])["campaign_id"] == 1  # an update keeps the campaign
    assert unit.prospect(other["id"])["city"] is None
    [created] = [p for p in unit.prospects() if p["org_id"] == "org-3"]
    assert (created["city"], created["email"], created["campaign_id"]) == ("Rome", new_email, 7)
    assert "1 created, 1 updated" in result.summary
    if strategy == "read":  # one query per distinct email
        queries = len({"kim@x.com", new_email})
        pardot.expect_calls(v5={QUERY: queries, UPDATE: 1, CREATE: 1})


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_lookup_values_are_trimmed_on_both_sides_as_every_identifier_is(
    pardot: Pardot, strategy: str
) -> None:
    # A warehouse's padded CHAR column made "org-2 " match nothing: a duplicate every record
    # (the userId was trimmed, a trait was not). A value padded in Pardot matches too.
    unit = pardot.unit
    padded_in_record = unit.add_prospect(email="kim@x.com", org_id="org-2")
    padded_in_pardot = unit.add_prospect(email="lee@x.com", org_id=" org-3  ")
    result = pardot.sync(
        [
            {"email": "kim@x.com", "org_id": "org-2   ", "city": "Oslo"},
            {"email": "lee@x.com", "org_id": "org-3", "city": "Rome"},
        ],
        lookup_field="org_id",
        lookup_strategy=strategy,
    )
    assert "0 created, 2 updated" in result.summary, result.summary
    assert len(unit.prospects()) == 2
    kim, lee = unit.prospect(padded_in_record["id"]), unit.prospect(padded_in_pardot["id"])
    assert (kim["city"], kim["org_id"]) == ("Oslo", "org-2")  # written trimmed
    assert (lee["city"], lee["org_id"]) == ("Rome", "org-3")


def test_lookup_by_user_id_matches_and_writes_the_user_id(pardot: Pardot) -> None:
    unit = pardot.unit
    known = unit.add_prospect(email="lee@x.com", org_id="user-7")
    new_email = "lee@x.com" if unit.ampsea else "max@x.com"
    pardot.sync(
        [
            {"userId": "user-7", "traits": {"email": "lee@x.com", "firstName": "Lee"}},
            {"userId": "user-8", "traits": {"email": new_email, "firstName": "Max"}},
        ],
        lookup_field="org_id",
        use_user_id_as_lookup=True,
    )
    assert unit.prospect(known["id"])["first_name"] == "Lee"
    [created] = [p for p in unit.prospects() if p["id"] != known["id"]]
    assert (created["org_id"], created["first_name"]) == ("user-8", "Max")


@pytest.mark.parametrize("strategy", ["read", "scan"])
def test_a_number_lookup_field_matches_the_number_pardot_reads_back(
    pardot: Pardot, strategy: str
) -> None:
    """Pardot keeps a Number field's value as a number and reads it back as one (`00123` is
    123, `12.50` is 12.5: recorded real v4 traffic). Before: compared as text, such a record
    never found its prospect, and every run made another one; a userId that is not a number
    was dropped by Pardot without a word (v4), so the prospect never got its lookup value."""
    unit = pardot.unit
    unit.add_custom_field("account_no", type="Number")
    by_user_id = [
        {"userId": "00123", "traits": {"email": "a@x.com", "firstName": "A"}},
        {"userId": "user_42", "traits": {"email": "b@x.com", "firstName": "B"}},
    ]
    by_trait = [{"email": "c@x.com", "account_no": "12.50", "city": "Oslo"}]
    for run in ("first", "second"):
        ids = pardot.sync(
            by_user_id,
            lookup_field="account_no",
            use_user_id_as_lookup=True,
            lookup_strategy=strategy,
        )
        traits = pardot.sync(by_trait, lookup_field="account_no", lookup_strategy=strategy)
        held = sorted((p["email"], p["account_no"]) for p in unit.prospects())
        assert held == [("a@x.com", 123), ("c@x.com", 12.5)], run
        [reject] = ids.rejects
        assert reject["field"] == "userId" and reject["record"]["userId"] == "user_42"
        assert "account_no is a Number field in Pardot" in reject["reason"]
        if run == "second":
            assert "0 created, 1 updated" in ids.summary, ids.summary
            assert "0 created, 1 updated" in traits.summary, traits.summary


@pytest.mark.parametrize("write_method", ["api", "import"])
def test_a_prospect_the_run_created_is_found_again_when_reads_lag_behind(
    ampsea_pardot: Pardot, write_method: str
) -> None:
    """Pardot's reads may lag writes by up to a minute. Before: a record of an identity an
    earlier batch of the run had created (v4 batch and import answers carry no ids) was
    looked for at once, not found, and created a second time."""
    unit = ampsea_pardot.unit
    unit.read_lag = 2.0
    records = [
        {"email": "a@x.com", "org_id": "org-1", "first_name": "A"},
        {"email": "a@x.com", "org_id": "org-1", "first_name": "A2"},
    ]
    result = ampsea_pardot.sync(
        records,
        lookup_field="org_id",
        batch_size_rows=1,
        write_method=write_method,
        campaign_id=1,
        import_state_path=str(ampsea_pardot.tmp_path / "imports.json"),
    )
    held = unit.prospects()
    assert [(p["email"], p["org_id"], p["first_name"]) for p in held] == [
        ("a@x.com", "org-1", "A2")
    ]
    assert "1 created, 1 updated" in result.summary, result.summary


def test_a_record_without_a_lookup_value_is_rejected_naming_the_field(pardot: Pardot) -> None:
    result = pardot.sync([{"email": "x@x.com", "city": "Oslo"}], lookup_field="org_id")
    [reject] = result.rejects
    assert reject["field"] == "org_id" and "org_id" in reject["reason"]
    assert pardot.unit.prospects() == []


def test_a_scan_finds_a_prospect_whose_email_changed_and_updates_its_email(
    pardot: Pardot,
) -> None:
    unit = pardot.unit
    known = unit.add_prospect(email="old@x.com", org_id="org-1")
    pardot.sync(
        [{"email": "new@x.com", "org_id": "org-1", "city": "Oslo"}],
        lookup_field="org_id",
        lookup_strategy="scan",
    )
    assert [(p["id"], p["email"], p["city"]) for p in unit.prospects()] == [
        (known["id"], "new@x.com", "Oslo")
    ]
    pardot.expect_calls(v5={QUERY: 1, UPDATE: 1})


def test_duplicate_identities_in_one_batch_are_merged_not_created_twice(pardot: Pardot) -> None:
    result = pardot.sync(
        [
            {"email": "a@x.com", "org_id": "org-1", "first_name": "One", "city": "Oslo"},
            {"email": "a@x.com", "org_id": "org-1", "first_name": "Two"},
        ],
        lookup_field="org_id",
    )
    [prospect] = pardot.unit.prospects()
    assert (prospect["first_name"], prospect["city"]) == ("Two", "Oslo")
    assert "1 merged as duplicates" in result.summary
    pardot.expect_call_counts(v5={CREATE: 1})


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_later_batch_updates_the_prospect_an_earlier_batch_created(
    pardot: Pardot, strategy: str
) -> None:
    unit = pardot.unit
    records: list[dict[str, Any]] = [
        {"email": f"p{n}@x.com", "org_id": f"org-{n}"} for n in range(3)
    ]
    records.append({"email": "p0@x.com", "org_id": "org-0", "city": "Later"})
    result = pardot.sync(
        records, lookup_field="org_id", lookup_strategy=strategy, batch_size_rows=3
    )
    assert len(unit.prospects()) == 3
    assert [p["city"] for p in unit.prospects() if p["org_id"] == "org-0"] == ["Later"]
    assert "3 created, 1 updated" in result.summary
    # v5 remembers it by the id the create answered with: no read back, no second create.
    pardot.expect_call_counts(v5={CREATE: 3, UPDATE: 1})


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_three_strategies_give_the_same_prospects(ampsea_pardot: Pardot, strategy: str) -> None:
    unit = ampsea_pardot.unit
    for n in range(0, 30, 3):
        unit.add_prospect(email=f"p{n}@x.com", org_id=f"org-{n}")
    records = [{"email": f"p{n}@x.com", "org_id": f"org-{n}", "city": f"C{n}"} for n in range(30)]
    ampsea_pardot.sync(records, lookup_field="org_id", lookup_strategy=strategy)
    state = sorted((p["email"], p["org_id"], p["city"]) for p in unit.prospects())
    assert state == sorted((f"p{n}@x.com", f"org-{n}", f"C{n}") for n in range(30))


def test_a_lookup_field_that_is_not_a_custom_field_stops_at_start_up(pardot: Pardot) -> None:
    result = pardot.run([{"email": "a@x.com", "org_ident": "1"}], lookup_field="org_ident")
    assert result.returncode != 0
    assert "org_ident" in result.stderr and "org_id" in result.stderr
    assert pardot.unit.prospects() == []


# -- email only ------------------------------------------------------------------------------

# "The latest prospect with this email": v4 reads them all and the target takes the one updated
# last; v5's upsertLatestByEmail lets Pardot take the one active last.
LATEST_BY = {4: "updated_at", 5: "last_activity_at"}


def test_email_only_updates_the_latest_prospect_and_twice_never_duplicates(
    pardot: Pardot,
) -> None:
    unit = pardot.unit
    latest_by = LATEST_BY[pardot.api_version]
    # Existing prospects were made long before the run: v5 tells a create from an update by
    # createdAt, since Pardot's answer status does not say.
    if unit.ampsea:
        older = unit.add_prospect(email="eve@x.com", created_at=LONG_AGO, **{latest_by: LONG_AGO})
    newer = unit.add_prospect(
        email="eve@x.com", created_at=LONG_AGO, **{latest_by: "2024-01-01 00:00:00"}
    )
    records = [{"email": "eve@x.com", "city": "Oslo"}, {"email": "zed@x.com", "city": "Rome"}]
    first = pardot.sync(records)
    # Pardot's timestamps are whole seconds: a prospect made in the second or two before an
    # upsert cannot be told from one the upsert made. Scheduled runs are further apart.
    time.sleep(2.5)
    second = pardot.sync(records)
    assert unit.prospect(newer["id"])["city"] == "Oslo"
    if unit.ampsea:
        assert unit.prospect(older["id"])["city"] is None
    emails = sorted(p["email"] for p in unit.prospects())
    assert emails == (["eve@x.com"] if unit.ampsea else []) + ["eve@x.com", "zed@x.com"]
    assert "1 created, 1 updated" in first.summary
    assert "0 created, 2 updated" in second.summary
    pardot.expect_calls(v5={UPSERT: 4})  # one call per record and run, never a query


def test_match_by_email_false_applies_pardots_raw_rule(ampsea_pardot: Pardot) -> None:
    unit = ampsea_pardot.unit
    unit.add_prospect(email="eve@x.com")
    ampsea_pardot.sync([{"email": "eve@x.com", "city": "Oslo"}], match_by_email=False)
    assert len([p for p in unit.prospects() if p["email"] == "eve@x.com"]) == 2
    # Nothing is looked for: one create.
    ampsea_pardot.expect_call_counts(v4={V4_READ: 0})
    ampsea_pardot.expect_calls(v5={CREATE: 1})


# -- values Pardot refuses -------------------------------------------------------------------


def test_an_email_pardot_refuses_is_rejected_with_its_code(pardot: Pardot) -> None:
    # Passes the target's own check (Unicode letters), but the emulated Pardot refuses it.
    result = pardot.sync([{"email": "jürgen@x.com"}, {"email": "ok@x.com"}])
    [reject] = result.rejects
    assert (reject["code"], reject["field"]) == (4, "email")
    assert reject["record"]["email"] == "jürgen@x.com"
    assert [p["email"] for p in pardot.unit.prospects()] == ["ok@x.com"]


def test_a_value_of_the_wrong_type_for_its_field_is_rejected_naming_the_field(
    pardot: Pardot,
) -> None:
    pardot.unit.add_custom_field("seats", type="Number")
    result = pardot.sync([{"email": "a@x.com", "score": "12", "seats": "many"}])
    [reject] = result.rejects
    assert reject["field"] == "seats"
    assert pardot.unit.prospects() == []


# -- Segment's integrations switch -----------------------------------------------------------


def test_events_with_pardot_switched_off_are_skipped_and_counted(pardot: Pardot) -> None:
    result = pardot.sync(
        [
            {"userId": "u1", "traits": {"email": "off@x.com"}, "integrations": {"Pardot": False}},
            {
                "userId": "u2",
                "traits": {"email": "on@x.com"},
                "integrations": {"All": False, "Pardot": True},
            },
        ]
    )
    assert [p["email"] for p in pardot.unit.prospects()] == ["on@x.com"]
    assert "1 skipped" in result.summary
    assert result.rejects == []
