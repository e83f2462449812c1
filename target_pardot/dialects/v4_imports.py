"""v4's Import API: `/api/import/version/4/do/...`, and plan steps as v4 CSV rows.

Calls (endpoint names as in the summary):

    POST  create                    v4.import.create          multipart: `importInput` (the
                                                              import, JSON) + `importFile` (the
                                                              first CSV batch)
    POST  batch/id/{id}             v4.import.batch           multipart part `importFile`;
                                                              answered 204, no body
    PATCH update/id/{id}            v4.import.update          {"state": "Ready"}: starts it
    GET   read/id/{id}              v4.import.read            polled until Complete
    GET   downloadErrors/id/{id}    v4.import.downloadErrors  the CSV of the rows that failed

A v4 import matches rows only by `prospect_id` or `salesforce_fid` and never creates, so only
UPDATE steps become rows (in an "update" import): by Pardot id -> `prospect_id`, by Salesforce
id alone -> `salesforce_fid`. Everything else goes through the API as in api mode (batchUpsert
or batchUpdate, 50 a call): creates, an id given with a fid (Pardot's agreement check), values
that clear a field (an empty cell cannot say "clear" for one row and "leave alone" for the
next) and multi-value lists. Columns are the v4 names of v4 batch bodies (snake_case, custom
fields by their field_id) plus `email` when the record has one, as api mode sends it.

Every import declares its `columns`, each with nullOverwrite false (v4's default is true: an
empty cell would clear the field) and overwrite true. restoreDeleted is what api mode's call
would do with a prospect in the recycle bin: batchUpsert (sync_mode upsert) restores and
updates it, batchUpdate (update_only) refuses it.

A row Pardot refuses because no prospect has its Salesforce id goes through the API after all
in sync_mode upsert: v4 batchUpsert creates a prospect for such a record when it has an email
(and refuses it, with its own code, when it has none), and the write method must not change
what a record does. A row whose Pardot id no prospect has is a reject, as in api mode, which
updates by id with batchUpdate (v4.py): batchUpsert would make a new prospect for it on every
run.
"""

from __future__ import annotations

import json

from target_pardot.api.client import PardotClient
from target_pardot.api.codes import code_for_message
from target_pardot.dialects.importing import UPDATE_IMPORT, ColumnNames, ImportStatus, Row
from target_pardot.errors import TargetPardotError
from target_pardot.plan import Action, Step
from target_pardot.settings import Settings

PROSPECT_ID = "prospect_id"
SALESFORCE_FID = "salesforce_fid"
# The rule of every column: write the value, and leave the field alone when the cell is empty.
COLUMN_RULE = {"overwrite": True, "nullOverwrite": False}
# Error rows for an id / Salesforce id no prospect has (Invalid prospect ID / fid).
NO_SUCH_PROSPECT = frozenset({3, 77})


class V4ImportApi:
    def __init__(self, client: PardotClient, settings: Settings) -> None:
        self._client = client
        self._restore_deleted = settings.sync_mode != "update_only"

    def create(
        self,
        *,
        kind: str,
        header: list[str],
        rules: dict[str, dict[str, bool]],
        first_batch: bytes,
    ) -> int:
        if kind != UPDATE_IMPORT:
            raise TargetPardotError(f"a v4 import cannot create prospects: no {kind} import (bug)")
        spec = {
            "operation": "Upsert",
            "object": "Prospect",
            "restoreDeleted": self._restore_deleted,
            # Every column of the CSV, the match column included, as v4 requires.
            "columns": [{"field": column, **rules.get(column, COLUMN_RULE)} for column in header],
        }
        response = self._client.v4_import(
            "POST",
            "create",
            files={
                "importInput": (None, json.dumps(spec), "application/json"),
                "importFile": ("batch-1.csv", first_batch, "text/csv"),
            },
            idempotent=False,
        )
        return int(response.body["id"])

    def add_batch(self, import_id: int, number: int, batch: bytes) -> None:
        self._client.v4_import(
            "POST",
            "batch",
            import_id=import_id,
            files={"importFile": (f"batch-{number}.csv", batch, "text/csv")},
            idempotent=False,
            no_content=True,
        )

    def start(self, import_id: int) -> None:
        self._client.v4_import(
            "PATCH", "update", import_id=import_id, json={"state": "Ready"}, idempotent=False
        )

    def read(self, import_id: int) -> ImportStatus:
        body = self._client.v4_import("GET", "read", import_id=import_id).body
        return ImportStatus(
            status=str(body.get("state") or ""),
            created=int(body.get("createdCount") or 0),
            updated=int(body.get("updatedCount") or 0),
            errors=int(body.get("errorCount") or 0),
        )

    def error_file(self, import_id: int) -> bytes:
        return self._client.v4_import(
            "GET", "downloadErrors", import_id=import_id, download=True
        ).content


class V4ImportRows:
    match_columns = (PROSPECT_ID, SALESFORCE_FID)
    campaign_column = None  # a v4 import never creates
    required_for_creates: tuple[str, ...] = ()

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._names = ColumnNames()

    def row_for(self, step: Step) -> Row | None:
        if step.action is not Action.UPDATE:
            return None  # a v4 import row cannot create: batchUpsert / batchCreate
        if step.prospect_id is not None and step.fid:
            return None  # an id with a fid: Pardot's agreement check (api mode)
        if step.prospect_id is None and not step.fid:
            return None
        group = step.group
        if any(value == "" or isinstance(value, list) for value in group.fields.values()):
            return None  # clearing a field, or a multi-value field: the API says it exactly
        cells = {name: str(value) for name, value in group.fields.items()}
        names = {name: name for name in cells}
        if group.email:
            cells["email"] = group.email
            names["email"] = "email"
        if step.prospect_id is not None:
            cells[PROSPECT_ID] = str(step.prospect_id)
            names[PROSPECT_ID] = "pardot_id"
        else:
            cells[SALESFORCE_FID] = str(step.fid)
            names[SALESFORCE_FID] = "pardot_fid"
        return Row(step, UPDATE_IMPORT, cells, self._names.shared(names))

    def through_api_after(self, row: Row, reason: str) -> bool:
        # An id Pardot does not know is refused by api mode too (batchUpdate, in every
        # sync_mode): a reject. So is an unknown fid in update_only.
        if self._settings.sync_mode == "update_only" or row.step.prospect_id is not None:
            return False
        return code_for_message(reason) in NO_SUCH_PROSPECT
