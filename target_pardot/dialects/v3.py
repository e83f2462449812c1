"""API v3: email is unique in the business unit, so a batchUpsert keyed by email never duplicates.

Identity: the Pardot id, else the email (a Salesforce fid alone cannot be matched in v3).
Plan: an id is an UPDATE keyed by that id (an email in the record changes the prospect's email);
an email is an UPSERT_BY_EMAIL. Nothing needs finding first.

With `campaign_id` set, new prospects must get the campaign but existing ones must keep theirs,
and batchUpsert cannot tell them apart; so email-keyed records go to batchCreate (with the
campaign) and those Pardot answers "already exists" (error 9) go to batchUpdate.
"""

from __future__ import annotations

from typing import ClassVar

from target_pardot.dialects.base import Found, RunTools, reject_group
from target_pardot.dialects.batches import (
    BatchOutcome,
    BatchWriter,
    WriteItem,
    apply_outcome,
    write_resolving,
)
from target_pardot.dialects.customfields import load_v34_catalog
from target_pardot.errors import RecordError
from target_pardot.fields import FieldCatalog
from target_pardot.identify import Identify
from target_pardot.matching import Group, Identity
from target_pardot.outcomes import Result
from target_pardot.plan import Action, Plan, Step
from target_pardot.prepare import Prepared

EMAIL_EXISTS = 9


def plan_v3(groups: list[Group]) -> Plan:
    """v3's rules as data: update by id, else upsert by email."""
    steps = []
    for group in groups:
        identity = group.identity
        if identity.kind == "id" and not identity.value.isdigit():
            steps.append(
                Step.reject(
                    group,
                    "pardot_id",
                    f"{identity.value!r} is not a Pardot prospect id (a whole number)",
                    code=3,
                )
            )
        elif identity.kind == "id":
            steps.append(Step(Action.UPDATE, group, int(identity.value)))
        else:
            steps.append(Step(Action.UPSERT_BY_EMAIL, group))
    return Plan(steps)


class V3Dialect:
    version: ClassVar[int] = 3
    json_values: ClassVar[bool] = False

    def __init__(self, tools: RunTools) -> None:
        self._tools = tools
        self._writer = BatchWriter(tools.client, version=3, executor=tools.executor)

    def load_catalog(self) -> FieldCatalog:
        return load_v34_catalog(self._tools.client, version=3)

    def require_identity(self, identify: Identify) -> None:
        if identify.email is None and not identify.pardot_id:
            raise RecordError(
                "email",
                "v3 matches prospects by email or Pardot id; this record has a Salesforce fid "
                "only, which v3 cannot match"
                if identify.pardot_fid
                else "an email (or a Pardot id) is required to find or create the prospect",
            )

    def identity_of(self, prepared: Prepared) -> Identity:
        identify = prepared.identify
        if identify.pardot_id:
            return Identity("id", identify.pardot_id, fid=identify.pardot_fid)
        # require_identity guarantees an email here.
        return Identity("email", (identify.email or "").lower())

    def find(self, groups: list[Group]) -> Found:
        return {}  # the email or id is the key Pardot matches on: nothing to look up

    def plan(self, groups: list[Group], found: Found) -> Plan:
        return plan_v3(groups)

    def execute(self, plan: Plan) -> None:
        report, applied = self._tools.report, self._tools.on_applied
        for step in plan.of(Action.REJECT):
            assert step.problem is not None
            reject_group(report, step.group, step.problem)
        by_id = [_item(step.group) for step in plan.of(Action.UPDATE)]
        by_email = [_item(step.group) for step in plan.of(Action.UPSERT_BY_EMAIL)]
        campaign_id = self._tools.settings.campaign_id
        if campaign_id is None:
            apply_outcome(self._write("batchUpsert", by_id + by_email), report, applied)
            return

        apply_outcome(self._write("batchUpdate", by_id), report, applied)
        for item in by_email:
            # A payload of its own: the group's fields are what skip_unchanged fingerprints.
            item.payload = {**item.payload, "campaign_id": str(campaign_id)}
            item.result = Result.CREATED
        created = self._write("batchCreate", by_email)
        existing = [item for item, problem in created.failed if problem.code == EMAIL_EXISTS]
        created.failed = [(i, p) for i, p in created.failed if p.code != EMAIL_EXISTS]
        apply_outcome(created, report, applied)
        for item in existing:
            item.payload.pop("campaign_id", None)
            # "Already exists" after a lost answer may mean the lost call created it.
            item.result = Result.UPSERTED if item.after_lost_answer else Result.UPDATED
        apply_outcome(self._write("batchUpdate", existing), report, applied)

    def _write(self, operation: str, items: list[WriteItem]) -> BatchOutcome:
        # v3 writes are idempotent (email is unique): nothing to resolve after a lost answer.
        return write_resolving(
            self._writer,
            operation,
            items,
            resolve_lost=None,
            max_rounds=self._tools.settings.max_retries,
        )


def _item(group: Group) -> WriteItem:
    if group.identity.kind == "id":
        payload = dict(group.fields)
        if group.email:
            # upsert by id with an email changes that prospect's email
            payload["email"] = group.email
        return WriteItem(group, payload, Result.UPDATED, key=group.identity.value)
    # Sent as they are (the batch is keyed by email); nothing changes them on the way.
    return WriteItem(group, group.fields, Result.UPSERTED, key=group.email)
