"""The match plan: what to do for each group of records, as plain data.

A dialect's pure planning function turns the batch's groups and what finding returned into a
Plan; executing it is a separate step. So the matching rules of each API version can be tested
as data, and a dry run is a plan that is counted instead of executed.

    groups + found ids --plan()--> Plan [Step(action, group, prospect_id, fid, problem)]
                                   --execute()--> Pardot calls --> outcomes
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from target_pardot.errors import RecordError
from target_pardot.matching import Group


class Action(enum.Enum):
    CREATE = "create"  # make a new prospect
    UPDATE = "update"  # write to one known prospect: by Pardot id, or (v4) by Salesforce fid
    UPSERT_BY_EMAIL = "upsert by email"  # Pardot picks the prospect by email or creates one
    REJECT = "reject"  # never sent: `problem` says why


@dataclass(frozen=True)
class Step:
    action: Action
    group: Group
    prospect_id: int | None = None  # UPDATE: the prospect, when its id is known
    # UPDATE: the Salesforce id to update by (v4), or the one the prospect must carry when
    # `prospect_id` is given too (Pardot's id/fid agreement check, error 81).
    fid: str | None = None
    problem: RecordError | None = None  # REJECT: the reason, field and code for the reject file

    @staticmethod
    def reject(group: Group, field: str | None, reason: str, code: int | None = None) -> Step:
        return Step(Action.REJECT, group, problem=RecordError(field, reason, code=code))


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
