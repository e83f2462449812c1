"""API v4: several prospects may share an email, so every write names the prospect it means.

Identity: Pardot id, then Salesforce fid, then the lookup value, then the email (or, with
`match_by_email: false`, none: Pardot's raw rule, every record creates).
Plan: an id or fid is an UPDATE through it. A lookup value or email is first matched to an
existing prospect (finder.py) and is an UPDATE of it; only when none matches is it a CREATE
(or a REJECT: a lookup record without an email cannot create; or, for a lookup value, an UPDATE
claiming a prospect with the email whose lookup field is empty: on_empty_lookup). Everything
goes out as batchUpsert, 50 a call (batchUpdate in sync_mode update_only, which never creates).
A create whose answer was lost is looked for before it is sent again.

With write_method import (or auto, for a batch with more than import_threshold updates) the
UPDATE steps go through Pardot's v4 Import API instead (v4_imports.py, importing.py): rows
matched by prospect_id or salesforce_fid. A v4 import cannot create, so creates, and the steps
a CSV row cannot express, still go out in batches as above.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from target_pardot.api.client import PardotClient
from target_pardot.dialects.base import (
    Found,
    RunTools,
    lookup_without_email,
    require_some_identity,
    settle_unsent,
    unmatched_lookup_step,
    update_by_pardot_id,
    v4_identity,
)
from target_pardot.dialects.batches import (
    BatchOutcome,
    BatchWriter,
    WriteItem,
    apply_outcome,
    write_resolving,
)
from target_pardot.dialects.customfields import load_v34_catalog, probe_v34_prospects
from target_pardot.dialects.importing import ImportWriter
from target_pardot.dialects.imports_state import ImportLedger
from target_pardot.dialects.v4_imports import V4ImportApi, V4ImportRows
from target_pardot.errors import PardotAPIError, RecordError
from target_pardot.fields import FieldCatalog, is_number_field
from target_pardot.finder import Candidate, ProspectFinder
from target_pardot.identify import Identify
from target_pardot.matching import Group, Identity
from target_pardot.outcomes import Result
from target_pardot.plan import Action, Plan, Step
from target_pardot.prepare import Prepared
from target_pardot.settings import Settings

QUERY_PAGE = 200
NOT_FOUND_BY_EMAIL = 4
ARCHIVED = 132  # "Prospect is archived": in the recycle bin


class V4Source:
    """The v4 calls the finder needs: read by email, and paging through all prospects."""

    page_size = QUERY_PAGE

    def __init__(self, client: PardotClient, lookup_field: str | None) -> None:
        self._client = client
        self._lookup_field = lookup_field
        # Whether the lookup field is a Number field: known once the catalog is read.
        self.lookup_numeric = False

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
        return Candidate.from_prospect(
            prospect, self._lookup_field, "updated_at", numeric=self.lookup_numeric
        )


def _as_list(value: Any) -> list[dict[str, Any]]:
    # Pardot's XML heritage: one element is an object, several are an array.
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def plan_v4(groups: list[Group], found: Found, settings: Settings) -> Plan:
    """v4's rules as data (the README's matching table, v4 column)."""
    steps: list[Step] = []
    claimed: set[int] = set()
    for group in groups:
        identity = group.identity
        if identity.kind == "id":
            steps.append(update_by_pardot_id(group, check_fid=True))
        elif identity.kind == "fid":
            steps.append(Step(Action.UPDATE, group, fid=identity.value))
        elif found.get(identity) is not None:
            steps.append(Step(Action.UPDATE, group, found[identity]))
        elif group.email is None:
            steps.append(lookup_without_email(group, settings))
        elif identity.kind == "lookup":
            steps.append(unmatched_lookup_step(group, found, settings, claimed))
        else:
            steps.append(Step(Action.CREATE, group))
    return Plan(steps)


class V4Dialect:
    version: ClassVar[int] = 4
    json_values: ClassVar[bool] = False

    def __init__(self, tools: RunTools) -> None:
        self._tools = tools
        settings = tools.settings
        self._writer = BatchWriter(tools.client, version=4, executor=tools.executor)
        self.source = V4Source(tools.client, settings.lookup_field)
        self.finder = ProspectFinder(
            self.source,
            lookup_field=settings.lookup_field,
            strategy=settings.lookup_strategy,
            report=tools.report,
            executor=tools.read_executor,
            pause=lambda seconds: tools.client.pause_before_retry(
                seconds, failure="waiting for Pardot's reads to show a prospect this run wrote"
            ),
        )
        self.imports = ImportWriter(
            api=V4ImportApi(tools.client, settings),
            rows=V4ImportRows(settings),
            ledger=ImportLedger.for_settings(settings, api="v4"),
            settings=settings,
            report=tools.report,
            on_applied=self._applied_by_import,
        )

    def load_catalog(self) -> FieldCatalog:
        catalog = load_v34_catalog(self._tools.client, version=4)
        self.source.lookup_numeric = is_number_field(catalog, self._tools.settings.lookup_field)
        return catalog

    def check_api_version(self) -> str:
        probe_v34_prospects(self._tools.client, version=4)
        return (
            "Pardot answered a v4 prospect query: this business unit allows several prospects "
            "per email"
        )

    def resume(self) -> None:
        self.imports.resume()

    def close(self) -> None:
        self.imports.ledger.close()

    def require_identity(self, identify: Identify) -> None:
        require_some_identity(identify)

    def identity_of(self, prepared: Prepared) -> Identity:
        return v4_identity(prepared, self._tools.settings)

    def find(self, groups: list[Group]) -> Found:
        to_find = [group for group in groups if group.identity.kind in ("lookup", "email")]
        return self.finder.find(to_find) if to_find else {}

    def plan(self, groups: list[Group], found: Found) -> Plan:
        return plan_v4(groups, found, self._tools.settings)

    def execute(self, plan: Plan) -> None:
        settings = self._tools.settings
        report = self._tools.report
        settle_unsent(plan, report)
        steps = plan.of(Action.UPDATE, Action.CREATE)
        # Noted before anything of this batch is sent: what its creates made is above it.
        since = self.finder.watermark()
        # A v4 import only updates: auto weighs the updates, not the creates it cannot take.
        if self.imports.wanted(plan.of(Action.UPDATE)):
            steps = self.imports.write(steps)  # what an import row cannot say goes on below
        items: list[WriteItem] = []
        claiming: set[int] = set()
        for step in steps:
            if step.action is Action.UPDATE and step.prospect_id is not None:
                items.append(update_item(step.group, step.prospect_id, fid=step.fid))
            elif step.action is Action.UPDATE:
                items.append(fid_item(step.group))
            else:
                items.append(create_item(step.group, settings.campaign_id))
            if step.claims:
                claiming.add(id(step.group))
        # batchUpsert creates a prospect for an id or fid Pardot does not know (when the item
        # has an email); update_only must never create, and batchUpdate never does. Nor may an
        # update by Pardot id in any mode: a record naming a prospect since deleted or merged
        # would make a new one on every run, counted as updated. batchUpdate refuses the id
        # (error 3), which rejects the record naming pardot_id.
        update_only = settings.sync_mode == "update_only"
        outcome = write_resolving(
            self._writer,
            "batchUpdate" if update_only else "batchUpsert",
            items,
            resolve_lost=lambda lost: self._resolve_lost(lost, since),
            max_rounds=settings.max_retries,
            by_id=None if update_only else "batchUpdate",
        )
        if not update_only:
            outcome = self._restoring_binned(outcome, since)
        for item, _result in outcome.applied:
            if id(item.group) in claiming:
                report.claimed(stream=item.group.stream)
        apply_outcome(outcome, report, self._tools.on_applied, self.finder)

    def _restoring_binned(self, outcome: BatchOutcome, since: int) -> BatchOutcome:
        """Updates by id that batchUpdate refused because their prospect is in the recycle bin
        (132), sent again with batchUpsert, which restores and updates it as upsert mode
        always did (and the import's restoreDeleted does). Rare: one more call when it
        happens."""
        binned: list[WriteItem] = []
        refused: list[tuple[WriteItem, RecordError]] = []
        for item, error in outcome.failed:
            if error.code == ARCHIVED and item.prospect_id is not None:
                binned.append(item)
            else:
                refused.append((item, error))
        if not binned:
            return outcome
        outcome.failed = refused
        outcome.merge(
            write_resolving(
                self._writer,
                "batchUpsert",
                binned,
                resolve_lost=lambda lost: self._resolve_lost(lost, since),
                max_rounds=self._tools.settings.max_retries,
            )
        )
        return outcome

    def _applied_by_import(self, step: Step, result: Result) -> None:
        """What api mode keeps after a write: skip_unchanged's record of what Pardot holds and
        the finder's index."""
        group = step.group
        self._tools.on_applied(group)
        if step.prospect_id is not None:
            self.finder.remember_updated(step.prospect_id, group)
        elif group.identity.kind == "fid":
            self.finder.remember_written_by_fid(group)

    def _resolve_lost(self, items: list[WriteItem], since: int) -> list[WriteItem]:
        """After a lost answer: creates Pardot did apply become updates of what they made."""
        creates = [item for item in items if item.creates]
        if not creates:
            return items
        found = self.finder.find_lost_creates([item.group for item in creates], since=since)
        resolved: list[WriteItem] = []
        for item in items:
            prospect_id = found.get(item.group.identity) if item.creates else None
            if prospect_id is None:
                resolved.append(item)
                continue
            update = update_item(item.group, prospect_id)
            # The finder saw no such prospect when the create was planned: the lost call
            # made it.
            update.result = Result.CREATED
            resolved.append(update)
        return resolved


def update_item(group: Group, prospect_id: int, *, fid: str | None = None) -> WriteItem:
    payload: dict[str, Any] = {"id": str(prospect_id)}
    if fid:
        payload["fid"] = fid
    payload.update(group.fields)
    if group.email:
        payload["email"] = group.email
    return WriteItem(group, payload, Result.UPDATED, prospect_id=prospect_id)


def fid_item(group: Group) -> WriteItem:
    payload = {"fid": group.identity.value, **group.fields}
    if group.email:
        payload["email"] = group.email
    return WriteItem(group, payload, Result.UPDATED)


def create_item(group: Group, campaign_id: int | None) -> WriteItem:
    payload: dict[str, Any] = {"email": group.email, **group.fields}
    if campaign_id is not None:
        payload["campaign_id"] = str(campaign_id)
    return WriteItem(group, payload, Result.CREATED, creates=True)
