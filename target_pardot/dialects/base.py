"""What every API version's dialect provides, and the tools of the run it works with.

A dialect is one Pardot API version's way of doing each step of a sync. The run picks one by
`api_version` and nothing outside `dialects/` asks which version is in use:

    load_catalog()        the business unit's custom fields (after authenticating)
    require_identity()    what a record must carry to be matched at all in this version
    identity_of()         the record's identity under this version's matching rules
    find()                existing prospect ids for the batch's groups (Pardot reads)
    plan()                a Plan from the groups and what find() returned (pure)
    execute()             the Plan's Pardot calls; outcomes go to the run's report, and each
                          group Pardot confirmed goes to `RunTools.on_applied`
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from target_pardot.api.client import PardotClient
from target_pardot.errors import RecordError
from target_pardot.fields import FieldCatalog
from target_pardot.identify import Identify
from target_pardot.matching import Group, Identity
from target_pardot.outcomes import RunReport
from target_pardot.plan import Plan
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


def email_or_lookup_identity(prepared: Prepared, settings: Settings) -> Identity | None:
    """v4/v5 precedence after id and fid: the lookup value, then the email (if matching by
    email), else None: Pardot's raw rule, every such record creates a prospect."""
    if settings.lookup_field and prepared.lookup_value is not None:
        return Identity("lookup", prepared.lookup_value)
    if settings.match_by_email:
        return Identity("email", (prepared.email or "").lower())
    return None


def require_some_identity(identify: Identify) -> None:
    if identify.email is None and not (identify.pardot_id or identify.pardot_fid):
        raise RecordError(
            "email", "an email, a Pardot id or a Salesforce fid is required to find the prospect"
        )
