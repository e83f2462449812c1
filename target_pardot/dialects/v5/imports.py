"""v5's Import API: `/api/v5/imports`, and plan steps as v5 CSV rows.

Calls (endpoint names as in the summary):

    POST  imports                          v5.imports.create      multipart: `input` (the
                                                                   import, JSON) + `file` (the
                                                                   first CSV batch)
    POST  imports/{id}/batches             v5.imports.addBatch    multipart part `file`
    PATCH imports/{id} {"status":"Ready"}  v5.imports.update      starts it
    GET   imports/{id}?fields=...          v5.imports.read        polled until Complete
    GET   imports/{id}/do/downloadErrors   v5.imports.downloadErrors  a redirect to the error CSV

Columns are v5 field names, as in v5 bodies (bodies.py): camelCase, custom fields by their
apiFieldId (`<fieldId>__c`), plus `matchId` / `matchEmail` for the match and `campaignId` on
every row of an upsert import (written only into prospects it creates: overwrite false).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from target_pardot.api.client import PardotClient
from target_pardot.dialects.importing import (
    UPDATE_IMPORT,
    UPSERT_IMPORT,
    ColumnNames,
    ImportStatus,
    Row,
)
from target_pardot.dialects.v5.bodies import build_payload
from target_pardot.fields import FieldCatalog
from target_pardot.outcomes import RunReport
from target_pardot.plan import Action, Step
from target_pardot.settings import Settings

IMPORTS = "imports"
STATUS_FIELDS = "id,status,createdCount,updatedCount,errorCount"


class V5ImportApi:
    def __init__(self, client: PardotClient) -> None:
        self._client = client

    def create(
        self,
        *,
        kind: str,
        header: list[str],
        rules: dict[str, dict[str, bool]],
        first_batch: bytes,
    ) -> int:
        create_on_no_match = kind == UPSERT_IMPORT
        spec = {
            "operation": "Upsert",
            "object": "Prospect",
            "createOnNoMatch": create_on_no_match,
            # As upsertLatestByEmail's secondaryDeletedSearch: an email match in the recycle bin
            # is restored rather than duplicated. Matches by id stay as in api mode, where an
            # archived prospect is not found.
            "restoreDeleted": create_on_no_match,
            "fields": rules,
        }
        response = self._client.v5(
            "POST",
            IMPORTS,
            endpoint="v5.imports.create",
            files={
                "input": (None, json.dumps(spec), "application/json"),
                "file": ("batch-1.csv", first_batch, "text/csv"),
            },
            idempotent=False,
        )
        return int(response.body["id"])

    def add_batch(self, import_id: int, number: int, batch: bytes) -> None:
        self._client.v5(
            "POST",
            f"{IMPORTS}/{import_id}/batches",
            endpoint="v5.imports.addBatch",
            files={"file": (f"batch-{number}.csv", batch, "text/csv")},
            idempotent=False,
        )

    def start(self, import_id: int) -> None:
        self._client.v5(
            "PATCH",
            f"{IMPORTS}/{import_id}",
            endpoint="v5.imports.update",
            json={"status": "Ready"},
            idempotent=False,
        )

    def read(self, import_id: int) -> ImportStatus:
        body = self._client.v5(
            "GET",
            f"{IMPORTS}/{import_id}",
            endpoint="v5.imports.read",
            params={"fields": STATUS_FIELDS},
        ).body
        return ImportStatus(
            status=str(body.get("status") or ""),
            created=int(body.get("createdCount") or 0),
            updated=int(body.get("updatedCount") or 0),
            errors=int(body.get("errorCount") or 0),
        )

    def error_file(self, import_id: int) -> bytes:
        return self._client.v5(
            "GET",
            f"{IMPORTS}/{import_id}/do/downloadErrors",
            endpoint="v5.imports.downloadErrors",
            download=True,
        ).content


class V5ImportRows:
    match_columns = ("matchId", "matchEmail", "matchSalesforceId")
    campaign_column = "campaignId"
    required_for_creates = ("email", "campaignId")

    def __init__(
        self, settings: Settings, report: RunReport, catalog: Callable[[], FieldCatalog]
    ) -> None:
        self._settings = settings
        self._report = report
        self._catalog = catalog
        self._names = ColumnNames()

    def row_for(self, step: Step) -> Row | None:
        group = step.group
        if step.action is Action.UPDATE and (step.fid or step.prospect_id is None):
            return None  # an id with a fid: Pardot's agreement check is a read (api mode)
        if any(value == "" or isinstance(value, list) for value in group.fields.values()):
            return None  # clearing a field, or a multi-value field: the API says it exactly
        payload = build_payload(group, self._catalog())
        if payload.unsendable:
            self._report.note_unknown_traits(payload.unsendable)
        cells = {name: _text(value) for name, value in payload.body.items()}
        names = dict(payload.names)
        if step.action is Action.UPDATE:
            cells["matchId"] = str(step.prospect_id)
            return Row(step, UPDATE_IMPORT, cells, self._names.shared(names))
        if step.action is Action.UPSERT_BY_EMAIL:
            cells["matchEmail"] = group.email or ""
            names["matchEmail"] = "email"
        cells["campaignId"] = str(self._settings.campaign_id)
        return Row(step, UPSERT_IMPORT, cells, self._names.shared(names))

    def through_api_after(self, row: Row, reason: str) -> bool:
        # The rows are what api mode would send; the API would refuse them the same way.
        return False


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")  # never "1e-05"
    return str(value)
