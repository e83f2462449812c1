"""API v3: email is unique in the business unit, so a batchUpsert keyed by email never duplicates.

Identity: the Pardot id, else the email (a Salesforce fid alone cannot be matched in v3).
Plan: an id is an UPDATE keyed by that id (an email in the record changes the prospect's email);
an email is an UPSERT_BY_EMAIL. Nothing needs finding first.

With `campaign_id` set, new prospects must get the campaign but existing ones must keep theirs,
and batchUpsert cannot tell them apart; so email-keyed records go to batchCreate (with the
campaign) and those Pardot answers "already exists" (error 9) go to batchUpdate.

sync_mode: without a read per record only Pardot knows whether an email exists, so update_only
sends email-keyed records to batchUpdate (a missing prospect answers "Invalid prospect email
address", 4: skipped) and create_only to batchCreate (an existing one answers 9: skipped).
Records with a Pardot id go to batchUpdate in update_only: batchUpsert would create a prospect
for an id Pardot does not know. v3's update never changes an email.
"""

from __future__ import annotations

from typing import ClassVar

from target_pardot.dialects.base import Found, RunTools, settle_unsent, update_by_pardot_id
from target_pardot.dialects.batches import (
    BatchOutcome,
    BatchWriter,
    WriteItem,
    apply_outcome,
    write_resolving,
)
from target_pardot.dialects.customfields import load_v34_catalog, probe_v34_prospects
from target_pardot.errors import RecordError
from target_pardot.fields import FieldCatalog
from target_pardot.identify import Identify
from target_pardot.matching import Group, Identity
from target_pardot.outcomes import Result
from target_pardot.plan import SKIP_NO_PROSPECT, SKIP_PROSPECT_EXISTS, Action, Plan, Step
from target_pardot.prepare import Prepared

EMAIL_EXISTS = 9
# batchUpdate keyed by an email no prospect has: "Invalid prospect email address".
NOT_FOUND_BY_EMAIL = 4


def plan_v3(groups: list[Group]) -> Plan:
    """v3's rules as data: update by id, else upsert by email."""
    steps = []
    for group in groups:
        identity = group.identity
        if identity.kind == "id":
            steps.append(update_by_pardot_id(group, check_fid=False))
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

    def check_api_version(self) -> str:
        probe_v34_prospects(self._tools.client, version=3)
        return "Pardot answered a v3 prospect query: this business unit keeps emails unique"

    def resume(self) -> None:
        """Nothing to resume: this version writes only through the prospect endpoints."""

    def close(self) -> None:
        pass

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
        settings = self._tools.settings
        report, applied = self._tools.report, self._tools.on_applied
        settle_unsent(plan, report)
        campaign_id = settings.campaign_id
        if campaign_id is None and settings.sync_mode == "upsert":
            # In the batch's order: an id record and an email record of one prospect that the
            # target cannot tell apart (no email beside the id) then land in input order when
            # they share a call.
            items = [_item(step.group) for step in plan.of(Action.UPDATE, Action.UPSERT_BY_EMAIL)]
            apply_outcome(self._write("batchUpsert", items), report, applied)
        else:
            by_id = [_item(step.group) for step in plan.of(Action.UPDATE)]
            by_email = [_item(step.group) for step in plan.of(Action.UPSERT_BY_EMAIL)]
            # batchUpsert by an id Pardot does not know falls back to the email and creates,
            # which update_only must not do; with a campaign, existing prospects keep theirs.
            apply_outcome(self._write("batchUpdate", by_id), report, applied)
            self._create_else_update(by_email, campaign_id)
        self._update_if_exists([_item(step.group) for step in plan.of(Action.UPDATE_IF_EXISTS)])
        self._create_if_new([_item(step.group) for step in plan.of(Action.CREATE_IF_NEW)])

    def _create_else_update(self, items: list[WriteItem], campaign_id: int | None) -> None:
        """Upsert by email so that only new prospects get the campaign."""
        report, applied = self._tools.report, self._tools.on_applied
        created = self._create(items, campaign_id)
        existing = [item for item, problem in created.failed if problem.code == EMAIL_EXISTS]
        created.failed = [(i, p) for i, p in created.failed if p.code != EMAIL_EXISTS]
        apply_outcome(created, report, applied)
        for item in existing:
            if "campaign_id" in item.payload:
                item.payload = {k: v for k, v in item.payload.items() if k != "campaign_id"}
            # "Already exists" after a lost answer may mean the lost call created it.
            item.result = Result.UPSERTED if item.after_lost_answer else Result.UPDATED
        apply_outcome(self._write("batchUpdate", existing), report, applied)

    def _update_if_exists(self, items: list[WriteItem]) -> None:
        """sync_mode update_only: batchUpdate by email; "not found" (4) means skip it."""
        report, applied = self._tools.report, self._tools.on_applied
        outcome = self._write("batchUpdate", items)
        missing = [item for item, problem in outcome.failed if problem.code == NOT_FOUND_BY_EMAIL]
        outcome.failed = [(i, p) for i, p in outcome.failed if p.code != NOT_FOUND_BY_EMAIL]
        for item in missing:
            report.skip(SKIP_NO_PROSPECT, stream=item.group.stream)
        apply_outcome(outcome, report, applied)

    def _create_if_new(self, items: list[WriteItem]) -> None:
        """sync_mode create_only: batchCreate; "already exists" (9) means skip it."""
        report, applied = self._tools.report, self._tools.on_applied
        outcome = self._create(items, self._tools.settings.campaign_id)
        existing = [item for item, problem in outcome.failed if problem.code == EMAIL_EXISTS]
        outcome.failed = [(i, p) for i, p in outcome.failed if p.code != EMAIL_EXISTS]
        for item in existing:
            if item.after_lost_answer:
                report.notice(
                    "sync_mode create_only: a batchCreate was sent again after its answer was "
                    "lost, and Pardot then said prospects already existed; they are counted "
                    "as skipped although the lost call may have created them"
                )
            report.skip(SKIP_PROSPECT_EXISTS, stream=item.group.stream)
        apply_outcome(outcome, report, applied)

    def _create(self, items: list[WriteItem], campaign_id: int | None) -> BatchOutcome:
        for item in items:
            if campaign_id is not None:
                # A copy: the payload may be the group's own fields (see _item).
                item.payload = {**item.payload, "campaign_id": str(campaign_id)}
            item.result = Result.CREATED
        return self._write("batchCreate", items)

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
    # The group's fields are sent as they are (nothing edits them); a payload that differs
    # is a copy, so skip_unchanged's fingerprint of the group's fields stays the record's.
    if group.identity.kind == "id":
        payload = group.fields
        if group.email:
            # upsert by id with an email changes that prospect's email
            payload = {**payload, "email": group.email}
        return WriteItem(group, payload, Result.UPDATED, key=group.identity.value)
    return WriteItem(group, group.fields, Result.UPSERTED, key=group.email)
