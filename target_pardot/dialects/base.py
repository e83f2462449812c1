"""What every API version's dialect provides, and the tools of the run it works with.

A dialect is one Pardot API version's way of doing each step of a sync. The run picks one by
`api_version` and nothing outside `dialects/` asks which version is in use:

    load_catalog()        the business unit's custom fields (after authenticating)
    check_api_version()   one cheap prospect query: does the unit take this version (--test)
    resume()              finish what an earlier run left unprocessed (imports), before any record
    require_identity()    what a record must carry to be matched at all in this version
    identity_of()         the record's identity under this version's matching rules
    find()                existing prospect ids for the batch's groups (Pardot reads)
    plan()                a Plan from the groups and what find() returned (pure)
    execute()             the Plan's Pardot calls; outcomes go to the run's report, and each
                          group Pardot confirmed goes to `RunTools.on_applied`
    close()               release what the dialect holds (the import ledger's lock)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from target_pardot.api.client import PardotClient
from target_pardot.errors import RecordError
from target_pardot.fields import FieldCatalog
from target_pardot.finder import empty_lookup_of
from target_pardot.identify import Identify
from target_pardot.matching import Group, Identity, new_identity
from target_pardot.outcomes import RunReport
from target_pardot.plan import SKIP_NO_PROSPECT, UNSENT, Action, Plan, Step
from target_pardot.prepare import Prepared
from target_pardot.settings import Settings

Found = Mapping[Identity, int | None]


@dataclass
class RunTools:
    """One run's shared pieces: every stream's batches go through the same ones."""

    settings: Settings
    client: PardotClient
    report: RunReport
    executor: Executor  # writes
    read_executor: Executor  # reads, apart: a write that lost its answer reads from a worker
    # Called (from any worker thread) for each group once Pardot confirmed writing it, and
    # never for a group that failed or was rejected: skip_unchanged records what Pardot holds.
    on_applied: Callable[[Group], None] = field(default=lambda group: None)


class Dialect(Protocol):
    version: ClassVar[int]
    # v5 takes typed JSON values; v3/v4 take form-encoded text.
    json_values: ClassVar[bool]

    def load_catalog(self) -> FieldCatalog: ...

    def check_api_version(self) -> str:
        """One cheap prospect query in this version: Pardot refuses it (88, 89) when the
        business unit needs another version. Returns what the answer says about the unit."""
        ...

    def resume(self) -> None: ...

    def close(self) -> None: ...

    def require_identity(self, identify: Identify) -> None:
        """Raise RecordError when the record carries nothing this version can match on."""
        ...

    def identity_of(self, prepared: Prepared) -> Identity: ...

    def find(self, groups: list[Group]) -> Found: ...

    def plan(self, groups: list[Group], found: Found) -> Plan: ...

    def execute(self, plan: Plan) -> None: ...


def reject_group(report: RunReport, group: Group, problem: RecordError) -> None:
    """Every record merged into the group goes to the reject file with the same reason."""
    for member in group.members:
        report.reject(member.reject(problem.reason, field=problem.field, code=problem.code))


def settle_unsent(plan: Plan, report: RunReport) -> None:
    """The steps that send nothing: rejects go to the reject file, skips are counted."""
    for step in plan.of(*UNSENT):
        if step.action is Action.REJECT:
            assert step.problem is not None
            reject_group(report, step.group, step.problem)
        else:
            report.skip(step.skip_reason or "skipped", stream=step.group.stream)


def lookup_without_email(group: Group, settings: Settings) -> Step:
    """A lookup value no prospect has, and no email to create one with."""
    reason = f"no prospect has {settings.lookup_field} = {group.identity.value}"
    if settings.sync_mode == "update_only":
        # Nothing would be created anyway: the record is skipped like any other without one.
        return Step.skip(group, SKIP_NO_PROSPECT)
    return Step.reject(group, "email", f"{reason} and the record has no email to create one with")


def unmatched_lookup_step(
    group: Group, found: Found, settings: Settings, claimed: set[int]
) -> Step:
    """A lookup value no prospect has, for a record with an email: what on_empty_lookup says
    about the prospects with that email whose lookup field is empty.

    match_by_email claims the most recently updated one not yet claimed by this plan (`claimed`
    is the plan's, so two lookup values never claim one prospect); reject refuses to make a
    duplicate beside them; create makes one anyway (the behaviour before on_empty_lookup).
    """
    empty = [
        prospect for prospect in empty_lookup_of(found, group.identity) if prospect not in claimed
    ]
    policy = settings.on_empty_lookup
    if empty and policy == "match_by_email":
        claimed.add(empty[0])
        return Step(Action.UPDATE, group, empty[0], claims=True)
    if empty and policy == "reject":
        field = settings.lookup_field
        others = (
            "1 prospect with the record's email has"
            if len(empty) == 1
            else (f"{len(empty)} prospects with the record's email have")
        )
        return Step.reject(
            group,
            field,
            f"no prospect has {field} = {group.identity.value}, and {others} {field} empty: "
            "on_empty_lookup reject makes no duplicate beside them (fill in "
            f"{field} in Pardot, or set on_empty_lookup to match_by_email or create)",
        )
    return Step(Action.CREATE, group, beside_empty_lookup=bool(empty))


def update_by_pardot_id(group: Group, *, check_fid: bool) -> Step:
    """An UPDATE of the prospect the group's Pardot id names, or a REJECT (code 3, as Pardot
    answers) when the id is not a whole number. With `check_fid`, a fid given beside the id goes
    along for Pardot's id/fid agreement check (v4, v5; v3 has none)."""
    value = group.identity.value
    if not value.isdigit():
        return Step.reject(
            group, "pardot_id", f"{value!r} is not a Pardot prospect id (a whole number)", code=3
        )
    return Step(Action.UPDATE, group, int(value), fid=group.identity.fid if check_fid else None)


def v4_identity(prepared: Prepared, settings: Settings) -> Identity:
    """v4's precedence, which v5 shares: Pardot id, Salesforce fid, lookup value, email; with
    `match_by_email: false`, none (Pardot's raw rule: every such record creates a prospect)."""
    identify = prepared.identify
    if identify.pardot_id:
        return Identity("id", identify.pardot_id, fid=identify.pardot_fid)
    if identify.pardot_fid:
        return Identity("fid", identify.pardot_fid)
    if settings.lookup_field and prepared.lookup_value is not None:
        return Identity("lookup", prepared.lookup_value)
    if settings.match_by_email:
        return Identity("email", (prepared.email or "").lower())
    return new_identity()


def require_some_identity(identify: Identify) -> None:
    if identify.email is None and not (identify.pardot_id or identify.pardot_fid):
        raise RecordError(
            "email", "an email, a Pardot id or a Salesforce fid is required to find the prospect"
        )
