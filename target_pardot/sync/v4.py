"""v4: several prospects may share an email, so every write names the prospect it means.

Records with a Pardot id or Salesforce fid are updated through it. Records identified by a lookup
value or by email are first matched to an existing prospect (see finder.py) and updated by its
id; only when none matches is a prospect created. Everything goes out as batchUpsert, 50 a call.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from target_pardot.api.client import PardotClient
from target_pardot.api.errors import PardotAPIError
from target_pardot.finder import Candidate
from target_pardot.matching import Group, group_records
from target_pardot.outcomes import Result
from target_pardot.prepare import Prepared
from target_pardot.sync.batches import WriteItem
from target_pardot.sync.context import SyncContext

QUERY_PAGE = 200
NOT_FOUND_BY_EMAIL = 4


class V4Source:
    """The v4 calls the finder needs: read by email, and paging through all prospects."""

    page_size = QUERY_PAGE

    def __init__(self, client: PardotClient, lookup_field: str | None) -> None:
        self._client = client
        self._lookup_field = lookup_field

    def read_by_email(self, email: str) -> list[Candidate]:
        try:
            response = self._client.v34("prospect", "read", version=4, ident=("email", email))
        except PardotAPIError as error:
            if error.code == NOT_FOUND_BY_EMAIL:
                return []
            raise
        return [self._candidate(p) for p in _as_list(response.body.get("prospect"))]

    def scan(self, after_id: int = 0) -> Iterator[tuple[int | None, list[Candidate]]]:
        fields = ["id", "email", "updated_at"]
        if self._lookup_field:
            fields.append(self._lookup_field)
        last_id = after_id
        seen = 0
        total: int | None = None
        while True:
            params: dict[str, Any] = {
                "limit": QUERY_PAGE,
                "sort_by": "id",
                "sort_order": "ascending",
                "id_greater_than": last_id,
                "fields": ",".join(fields),
            }
            if total is not None:
                # Later pages need no count; bulk output skips it and is cheaper for Pardot.
                params["output"] = "bulk"
            response = self._client.v34("prospect", "query", version=4, params=params)
            result = response.body.get("result") or {}
            if total is None:
                total = int(result.get("total_results") or 0)
            page = [self._candidate(p) for p in _as_list(result.get("prospect"))]
            seen += len(page)
            yield total, page
            if len(page) < QUERY_PAGE or seen >= total:
                return
            last_id = max(candidate.id for candidate in page)

    def _candidate(self, prospect: dict[str, Any]) -> Candidate:
        return Candidate.from_prospect(prospect, self._lookup_field, "updated_at")


def _as_list(value: Any) -> list[dict[str, Any]]:
    # Pardot's XML heritage: one element is an object, several are an array.
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def sync_v4(prepared: list[Prepared], context: SyncContext) -> None:
    settings = context.settings
    groups = group_records(prepared, settings)
    context.note_merges(groups)
    to_find = [group for group in groups if group.identity.kind in ("lookup", "email")]
    found = context.finder.find(to_find) if to_find and context.finder else {}

    items: list[WriteItem] = []
    for group in groups:
        kind = group.identity.kind
        if kind == "id":
            items.append(update_item(group, int(group.identity.value), fid=group.identity.fid))
        elif kind == "fid":
            payload = {"fid": group.identity.value, **group.fields}
            if group.email:
                payload["email"] = group.email
            items.append(WriteItem(group, payload, Result.UPDATED))
        elif found.get(group.identity) is not None:
            items.append(update_item(group, found[group.identity]))  # type: ignore[arg-type]
        elif group.email is None:
            context.reject_group(
                group,
                f"no prospect has {settings.lookup_field} = {group.identity.value} and the "
                "record has no email to create one with",
                field="email",
            )
        else:
            items.append(create_item(group, settings.campaign_id))
    context.apply(
        context.write(
            "batchUpsert", items, resolve_lost=lambda lost: resolve_lost_v4(context, lost)
        )
    )


def update_item(group: Group, prospect_id: int, *, fid: str | None = None) -> WriteItem:
    payload: dict[str, Any] = {"id": str(prospect_id)}
    if fid:
        payload["fid"] = fid
    payload.update(group.fields)
    if group.email:
        payload["email"] = group.email
    return WriteItem(group, payload, Result.UPDATED, prospect_id=prospect_id)


def create_item(group: Group, campaign_id: int | None) -> WriteItem:
    payload: dict[str, Any] = {"email": group.email, **group.fields}
    if campaign_id is not None:
        payload["campaign_id"] = str(campaign_id)
    return WriteItem(group, payload, Result.CREATED, creates=True)


def resolve_lost_v4(context: SyncContext, items: list[WriteItem]) -> list[WriteItem]:
    """After a lost answer: creates that Pardot did apply become updates of what they made."""
    creates = [item for item in items if item.creates]
    if not creates or context.finder is None:
        return items
    found = context.finder.find_lost_creates([item.group for item in creates])
    resolved: list[WriteItem] = []
    for item in items:
        prospect_id = found.get(item.group.identity) if item.creates else None
        if prospect_id is None:
            resolved.append(item)
            continue
        update = update_item(item.group, prospect_id)
        # The finder saw no such prospect when the create was planned: the lost call made it.
        update.result = Result.CREATED
        resolved.append(update)
    return resolved
