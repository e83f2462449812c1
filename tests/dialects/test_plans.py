"""Each API version's matching rules as data: groups and found ids in, a Plan out, no HTTP.

Read as the README's matching table: one test per row, per version.
"""

from __future__ import annotations

from typing import Any

import pytest

from target_pardot.dialects.v3 import plan_v3
from target_pardot.dialects.v4 import plan_v4
from target_pardot.dialects.v5 import plan_v5
from target_pardot.finder import FoundProspects
from target_pardot.matching import Group, Identity
from target_pardot.plan import (
    SKIP_NAMES_PROSPECT,
    SKIP_NO_PROSPECT,
    SKIP_PROSPECT_EXISTS,
    Action,
    Plan,
    Step,
    prospects_written,
    prospects_written_twice,
)
from target_pardot.settings import Settings

LEAD = "00Q000000000001AAA"


def settings(**overrides: Any) -> Settings:
    return Settings.from_config(
        {"business_unit_id": "0Uv000000000001AAA", "access_token": "t", **overrides}
    )


def group(kind: str, value: str, *, email: str | None = "a@x.com", fid: str | None = None) -> Group:
    return Group(Identity(kind, value, fid=fid), [], email=email)


def steps(plan: Plan) -> list[tuple[Any, ...]]:
    """A plan as comparable rows: (action, identity kind, prospect id, fid, reject code)."""
    return [
        (
            step.action,
            step.group.identity.kind,
            step.prospect_id,
            step.fid,
            step.problem.code if step.problem else None,
        )
        for step in plan
    ]


def plan(version: int, groups: list[Group], found: dict[Identity, int | None]) -> Plan:
    config = settings(api_version=version, lookup_field="org_id" if version > 3 else None)
    if version == 4:
        return plan_v4(groups, found, config)
    return plan_v5(groups, found, config)


# -- v3 -----------------------------------------------------------------------------------------


def test_v3_updates_by_id_and_upserts_by_email_with_nothing_to_find() -> None:
    groups = [group("id", "17"), group("email", "a@x.com")]
    assert steps(plan_v3(groups)) == [
        (Action.UPDATE, "id", 17, None, None),
        (Action.UPSERT_BY_EMAIL, "email", None, None, None),
    ]


def test_v3_rejects_an_id_that_is_not_a_number() -> None:
    assert steps(plan_v3([group("id", "abc")])) == [(Action.REJECT, "id", None, None, 3)]


# -- rules v4 and v5 share ----------------------------------------------------------------------


@pytest.mark.parametrize("version", [4, 5])
def test_an_id_is_an_update_of_that_prospect_carrying_the_fid_to_check(version: int) -> None:
    assert steps(plan(version, [group("id", "17", fid=LEAD)], {})) == [
        (Action.UPDATE, "id", 17, LEAD, None)
    ]


@pytest.mark.parametrize("version", [4, 5])
def test_an_id_that_is_not_a_number_is_rejected_with_code_3(version: int) -> None:
    [step] = plan(version, [group("id", "17x")], {})
    assert (step.action, step.problem and step.problem.field) == (Action.REJECT, "pardot_id")


@pytest.mark.parametrize("version", [4, 5])
def test_a_lookup_value_found_is_an_update_and_one_not_found_a_create(version: int) -> None:
    found = {Identity("lookup", "org-1"): 42, Identity("lookup", "org-2"): None}
    groups = [group("lookup", "org-1"), group("lookup", "org-2")]
    assert steps(plan(version, groups, found)) == [
        (Action.UPDATE, "lookup", 42, None, None),
        (Action.CREATE, "lookup", None, None, None),
    ]


@pytest.mark.parametrize("version", [4, 5])
def test_a_lookup_value_not_found_without_an_email_is_rejected(version: int) -> None:
    [step] = plan(version, [group("lookup", "org-2", email=None)], {})
    assert step.action is Action.REJECT
    assert step.problem is not None and step.problem.field == "email"
    assert "org_id = org-2" in step.problem.reason


@pytest.mark.parametrize("version", [4, 5])
def test_the_raw_rule_always_creates(version: int) -> None:
    assert steps(plan(version, [group("new", "1")], {})) == [
        (Action.CREATE, "new", None, None, None)
    ]


# -- where v4 and v5 differ ---------------------------------------------------------------------


def test_v4_updates_by_fid_and_lets_pardot_match_it() -> None:
    assert steps(plan(4, [group("fid", LEAD)], {})) == [(Action.UPDATE, "fid", None, LEAD, None)]


def test_v5_updates_a_fid_the_scan_resolved_and_rejects_one_it_did_not() -> None:
    found = {Identity("fid", LEAD): 7}
    groups = [group("fid", LEAD), group("fid", "00Q000000000002AAA")]
    assert steps(plan(5, groups, found)) == [
        (Action.UPDATE, "fid", 7, None, None),
        (Action.REJECT, "fid", None, None, 77),
    ]


def test_v4_updates_the_prospect_found_by_email_and_creates_when_none() -> None:
    found = {Identity("email", "a@x.com"): 5, Identity("email", "b@x.com"): None}
    groups = [group("email", "a@x.com"), group("email", "b@x.com", email="b@x.com")]
    assert steps(plan(4, groups, found)) == [
        (Action.UPDATE, "email", 5, None, None),
        (Action.CREATE, "email", None, None, None),
    ]


def test_v5_leaves_email_matching_to_upsert_latest_by_email() -> None:
    assert steps(plan(5, [group("email", "a@x.com")], {})) == [
        (Action.UPSERT_BY_EMAIL, "email", None, None, None)
    ]


def test_v5_updates_whatever_this_run_already_wrote_by_id() -> None:
    found = {Identity("email", "a@x.com"): 9, Identity("id", "17", fid=LEAD): 17}
    groups = [group("email", "a@x.com"), group("id", "17", fid=LEAD)]
    # Known from this run's own writes: no upsert, and no second id/fid check.
    assert steps(plan(5, groups, found)) == [
        (Action.UPDATE, "email", 9, None, None),
        (Action.UPDATE, "id", 17, None, None),
    ]


def test_a_plan_counts_its_actions_for_a_dry_run() -> None:
    found = {Identity("lookup", "org-1"): 42}
    groups = [group("lookup", "org-1"), group("lookup", "org-2"), group("fid", LEAD)]
    assert plan(5, groups, found).counts() == {
        Action.UPDATE: 1,
        Action.CREATE: 1,
        Action.REJECT: 1,
    }


def test_a_reject_step_carries_the_reason_for_the_reject_file() -> None:
    step = Step.reject(group("id", "x"), "pardot_id", "not a number", code=3)
    assert (step.problem.field, step.problem.reason, step.problem.code) == (  # type: ignore[union-attr]
        "pardot_id",
        "not a number",
        3,
    )


# -- sync_mode: what the mode forbids becomes a skip ----------------------------------------------


def mixed_plan() -> Plan:
    return Plan(
        [
            Step(Action.CREATE, group("email", "new@x.com")),
            Step(Action.UPDATE, group("email", "old@x.com"), 5),
            Step(Action.UPDATE, group("id", "17"), 17),
            Step(Action.UPSERT_BY_EMAIL, group("email", "any@x.com")),
            Step.reject(group("id", "x"), "pardot_id", "not a number", code=3),
        ]
    )


def actions(plan: Plan) -> list[tuple[Action, str | None]]:
    return [(step.action, step.skip_reason) for step in plan]


def test_upsert_keeps_the_plan_as_it_is() -> None:
    plan = mixed_plan()
    assert plan.for_sync_mode("upsert") is plan


def test_update_only_skips_creates_and_leaves_email_upserts_to_what_pardot_has() -> None:
    assert actions(mixed_plan().for_sync_mode("update_only")) == [
        (Action.SKIP, SKIP_NO_PROSPECT),
        (Action.UPDATE, None),
        (Action.UPDATE, None),
        (Action.UPDATE_IF_EXISTS, None),
        (Action.REJECT, None),
    ]


def test_create_only_skips_updates_and_email_upserts_create_only_if_new() -> None:
    assert actions(mixed_plan().for_sync_mode("create_only")) == [
        (Action.CREATE, None),
        (Action.SKIP, SKIP_PROSPECT_EXISTS),
        (Action.SKIP, SKIP_NAMES_PROSPECT),
        (Action.CREATE_IF_NEW, None),
        (Action.REJECT, None),
    ]


@pytest.mark.parametrize("version", [4, 5])
def test_update_only_skips_a_lookup_value_without_email_instead_of_rejecting_it(
    version: int,
) -> None:
    config = settings(api_version=version, lookup_field="org_id", sync_mode="update_only")
    planner = plan_v4 if version == 4 else plan_v5
    [step] = planner([group("lookup", "org-2", email=None)], {}, config)
    assert (step.action, step.skip_reason) == (Action.SKIP, SKIP_NO_PROSPECT)


def test_v5_creates_an_email_it_looked_up_and_did_not_find() -> None:
    # Outside sync_mode upsert the finder looks emails up; upsertLatestByEmail is not used.
    found = {Identity("email", "a@x.com"): None}
    assert steps(plan(5, [group("email", "a@x.com")], found)) == [
        (Action.CREATE, "email", None, None, None)
    ]


# -- on_empty_lookup ------------------------------------------------------------------------------


def found_beside_empty(*empty: int) -> FoundProspects:
    found = FoundProspects()
    for value in ("org-1", "org-2"):
        found[Identity("lookup", value)] = None
        found.empty_lookup[Identity("lookup", value)] = list(empty)
    return found


@pytest.mark.parametrize("version", [4, 5])
def test_match_by_email_claims_the_latest_empty_prospect_once(version: int) -> None:
    config = settings(api_version=version, lookup_field="org_id")
    planner = plan_v4 if version == 4 else plan_v5
    groups = [group("lookup", "org-1"), group("lookup", "org-2")]
    claim, second = planner(groups, found_beside_empty(8, 3), config)
    assert (claim.action, claim.prospect_id, claim.claims) == (Action.UPDATE, 8, True)
    # Two lookup values never claim one prospect: the second takes the next one.
    assert (second.action, second.prospect_id, second.claims) == (Action.UPDATE, 3, True)
    _, last = planner(groups, found_beside_empty(8), config)
    assert (last.action, last.beside_empty_lookup) == (Action.CREATE, False)


@pytest.mark.parametrize("version", [4, 5])
def test_on_empty_lookup_reject_names_the_lookup_field(version: int) -> None:
    config = settings(api_version=version, lookup_field="org_id", on_empty_lookup="reject")
    planner = plan_v4 if version == 4 else plan_v5
    [step] = planner([group("lookup", "org-1")], found_beside_empty(8), config)
    assert step.action is Action.REJECT and step.problem is not None
    assert step.problem.field == "org_id"
    assert "org_id empty" in step.problem.reason


@pytest.mark.parametrize("version", [4, 5])
def test_on_empty_lookup_create_makes_a_duplicate_and_says_so(version: int) -> None:
    config = settings(api_version=version, lookup_field="org_id", on_empty_lookup="create")
    planner = plan_v4 if version == 4 else plan_v5
    [step] = planner([group("lookup", "org-1")], found_beside_empty(8), config)
    assert (step.action, step.beside_empty_lookup) == (Action.CREATE, True)


def test_a_plan_writing_each_prospect_once_needs_no_ordering() -> None:
    plan = Plan(
        [
            Step(Action.UPDATE, group("id", "7"), 7),
            Step(Action.UPDATE, group("email", "b@x.com"), 8),
            Step(Action.CREATE, group("email", "c@x.com")),
            Step.reject(group("id", "x"), "pardot_id", "not an id"),
        ]
    )
    assert prospects_written_twice(plan) is None


def test_a_plan_writing_one_prospect_through_two_groups_tells_each_records_prospect() -> None:
    by_id, by_email, other = (
        Group(Identity("id", "7"), [object(), object()]),  # type: ignore[list-item]
        Group(Identity("email", "a@x.com"), [object()]),  # type: ignore[list-item]
        Group(Identity("email", "b@x.com"), [object()]),  # type: ignore[list-item]
    )
    plan = Plan(
        [
            Step(Action.UPDATE, by_id, 7),
            Step(Action.UPDATE, by_email, 7),  # finding matched a@x.com to prospect 7
            Step(Action.UPDATE, other, 8),
        ]
    )
    prospect_of = prospects_written_twice(plan)
    assert prospect_of == {
        id(by_id.members[0]): 7,
        id(by_id.members[1]): 7,
        id(by_email.members[0]): 7,
        id(other.members[0]): 8,
    }


def test_a_rejected_step_naming_a_written_prospect_needs_no_ordering() -> None:
    plan = Plan(
        [
            Step(Action.UPDATE, group("id", "7"), 7),
            Step(Action.REJECT, group("email", "a@x.com"), 7),
        ]
    )
    assert prospects_written_twice(plan) is None


def test_every_planned_records_prospect_is_told_for_ordering_later_layers() -> None:
    by_id = Group(Identity("id", "7"), [object(), object()])  # type: ignore[list-item]
    found = Group(Identity("email", "a@x.com"), [object()])  # type: ignore[list-item]
    plan = Plan(
        [
            Step(Action.UPDATE, by_id, 7),
            Step(Action.UPDATE, found, 8),
            Step(Action.CREATE, group("email", "c@x.com")),  # no prospect yet
            Step(Action.REJECT, group("email", "d@x.com"), 9),  # never sent
        ]
    )
    assert prospects_written(plan) == {
        id(by_id.members[0]): 7,
        id(by_id.members[1]): 7,
        id(found.members[0]): 8,
    }
