"""v3: email is unique in the business unit, so a batchUpsert keyed by email never duplicates.

With `campaign_id` set, new prospects must get the campaign but existing ones must keep theirs,
and batchUpsert cannot tell them apart; so email-keyed records go to batchCreate (with the
campaign) and those Pardot answers "already exists" (error 9) go to batchUpdate.
"""

from __future__ import annotations

from target_pardot.matching import group_records
from target_pardot.outcomes import Result
from target_pardot.prepare import Prepared
from target_pardot.sync.batches import WriteItem
from target_pardot.sync.context import SyncContext

EMAIL_EXISTS = 9


def sync_v3(prepared: list[Prepared], context: SyncContext) -> None:
    groups = group_records(prepared, context.settings)
    context.note_merges(groups)
    by_id: list[WriteItem] = []
    by_email: list[WriteItem] = []
    for group in groups:
        payload = dict(group.fields)
        if group.identity.kind == "id":
            if group.email:
                # upsert by id with an email changes that prospect's email
                payload["email"] = group.email
            by_id.append(WriteItem(group, payload, Result.UPDATED, key=group.identity.value))
        else:
            by_email.append(WriteItem(group, payload, Result.UPSERTED, key=group.email))

    campaign_id = context.settings.campaign_id
    if campaign_id is None:
        context.apply(context.write("batchUpsert", by_id + by_email))
        return

    context.apply(context.write("batchUpdate", by_id))
    for item in by_email:
        item.payload["campaign_id"] = str(campaign_id)
        item.result = Result.CREATED
    created = context.write("batchCreate", by_email)
    existing = [failure.item for failure in created.failed if failure.code == EMAIL_EXISTS]
    created.failed = [failure for failure in created.failed if failure.code != EMAIL_EXISTS]
    context.apply(created)
    for item in existing:
        item.payload.pop("campaign_id", None)
        # "Already exists" after a lost answer may mean the lost call created it.
        item.result = Result.UPSERTED if item.after_lost_answer else Result.UPDATED
    context.apply(context.write("batchUpdate", existing))
