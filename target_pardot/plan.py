"""The match plan: what to do for each group of records, as plain data.

A dialect's pure planning function turns the batch's groups and what finding returned into a
Plan; executing it is a separate step. So the matching rules of each API version can be tested
as data, and a dry run is a plan that is counted instead of executed.

    groups + found ids --plan()--> Plan [Step(action, group, prospect_id, fid, problem)]
                       --for_sync_mode()--> Plan without what sync_mode forbids (skips)
                                   --execute()--> Pardot calls --> outcomes
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from target_pardot.errors import RecordError
from target_pardot.matching import Group


class Action(enum.Enum):
    CREATE = "create"  # make a new prospect
    UPDATE = "update"  # write to one known prospect: by Pardot id, or (v4) by Salesforce fid
    UPSERT_BY_EMAIL = "upsert by email"  # Pardot picks the prospect by email or creates one
    # sync_mode update_only / create_only where only Pardot knows whether the email exists
    # (v3): the write is refused for a missing / existing prospect, and the record is skipped.
    UPDATE_IF_EXISTS = "update if it exists"
    CREATE_IF_NEW = "create if new"
    SKIP = "skip"  # never sent on purpose: `skip_reason` says why
    REJECT = "reject"  # never sent: `problem` says why


# Actions that send nothing: the report counts them, in a dry run as in a real one.
UNSENT = (Action.SKIP, Action.REJECT)

# Why sync_mode skipped a record (shown as is in the summary: no record values in them).
SKIP_NO_PROSPECT = "no existing prospect, sync_mode update_only"
SKIP_PROSPECT_EXISTS = "the prospect exists, sync_mode create_only"
# An id or fid names a prospect to update; whether Pardot has it is not looked up.
SKIP_NAMES_PROSPECT = (
    "the record names a prospect by Pardot or Salesforce id, sync_mode create_only"
)


@dataclass(frozen=True, slots=True)
class Step:
    action: Action
    group: Group
    prospect_id: int | None = None  # UPDATE: the prospect, when its id is known
    # UPDATE: the Salesforce id to update by (v4), or the one the prospect must carry when
    # `prospect_id` is given too (Pardot's id/fid agreement check, error 81).
    fid: str | None = None
    problem: RecordError | None = None  # REJECT: the reason, field and code for the reject file
    skip_reason: str | None = None  # SKIP
    # UPDATE of a prospect with the record's email whose lookup field is empty: the write sets
    # the field, claiming the prospect for the record's lookup value (on_empty_lookup).
    claims: bool = False
    # CREATE beside prospects with the record's email whose lookup field is empty: the new
    # prospect duplicates them (on_empty_lookup create).
    beside_empty_lookup: bool = False

    @staticmethod
    def reject(group: Group, field: str | None, reason: str, code: int | None = None) -> Step:
        return Step(Action.REJECT, group, problem=RecordError(field, reason, code=code))

    @staticmethod
    def skip(group: Group, reason: str) -> Step:
        return Step(Action.SKIP, group, skip_reason=reason)


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def of(self, *actions: Action) -> list[Step]:
        return [step for step in self.steps if step.action in actions]

    def counts(self) -> Counter[Action]:
        """Groups per action: what a dry run reports."""
        return Counter(step.action for step in self.steps)

    def for_sync_mode(self, sync_mode: str) -> Plan:
        """The plan with what `sync_mode` forbids turned into skips.

        update_only: a CREATE is skipped; an UPSERT_BY_EMAIL becomes UPDATE_IF_EXISTS.
        create_only: an UPDATE is skipped; an UPSERT_BY_EMAIL becomes CREATE_IF_NEW.
        """
        if sync_mode == "upsert":
            return self
        steps = []
        for step in self.steps:
            if sync_mode == "update_only" and step.action is Action.CREATE:
                step = Step.skip(step.group, SKIP_NO_PROSPECT)
            elif sync_mode == "update_only" and step.action is Action.UPSERT_BY_EMAIL:
                step = replace(step, action=Action.UPDATE_IF_EXISTS)
            elif sync_mode == "create_only" and step.action is Action.UPDATE:
                by_id = step.group.identity.kind in ("id", "fid")
                step = Step.skip(step.group, SKIP_NAMES_PROSPECT if by_id else SKIP_PROSPECT_EXISTS)
            elif sync_mode == "create_only" and step.action is Action.UPSERT_BY_EMAIL:
                step = replace(step, action=Action.CREATE_IF_NEW)
            steps.append(step)
        return Plan(steps)


def prospects_written_twice(plan: Plan) -> dict[int, int] | None:
    """When two groups of the plan write one prospect: each planned record's prospect.

    Finding can show that two identities name one prospect (an email matched to the prospect a
    Pardot id names, a fid resolved in v5, a claim). Written in one go, their writes would land
    in no particular order; the answer (id(record) -> prospect id, for every record whose step
    names one) lets matching.first_layer put the later one after the earlier. None in the usual
    case, where every prospect is written by one group.
    """
    first_writer: dict[int, Group] = {}
    for step in plan.steps:
        prospect = step.prospect_id
        if prospect is None or step.action in UNSENT:
            continue
        if first_writer.setdefault(prospect, step.group) is not step.group:
            return prospects_written(plan)
    return None


def prospects_written(plan: Plan) -> dict[int, int]:
    """id(record) -> the prospect its step writes, for every planned record whose step names
    one (what matching.first_layer orders a batch's later records by)."""
    return {
        id(member): step.prospect_id
        for step in plan.steps
        if step.prospect_id is not None and step.action not in UNSENT
        for member in step.group.members
    }
