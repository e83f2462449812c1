"""Reading a business unit's custom fields (the catalog every record is mapped against), and the
cheapest v3/v4 prospect call, which tells whether the unit takes that version."""

from __future__ import annotations

from typing import Any

from target_pardot.api.client import PardotClient
from target_pardot.fields import CustomField, FieldCatalog

V5_CUSTOM_FIELDS = "objects/custom-fields"


def load_v34_catalog(client: PardotClient, *, version: int) -> FieldCatalog:
    """From `customField/version/{3|4}/do/query`; `field_id` is the name prospects use."""
    response = client.v34("customField", "query", version=version)
    result = response.body.get("result") or {}
    raw = result.get("customField") or []
    fields = raw if isinstance(raw, list) else [raw]
    return FieldCatalog.from_custom_fields(
        CustomField(
            field_id=str(field["field_id"]),
            type=str(field.get("type") or "Text"),
            multi=_truthy(field.get("is_record_multiple_responses")),
        )
        for field in fields
    )


def load_v5_catalog(client: PardotClient) -> FieldCatalog:
    """From the v5 custom-fields endpoint, with the `apiFieldId` v5 names each field by."""
    params: dict[str, Any] = {"fields": "id,name,fieldId,apiFieldId,type,isRecordMultipleResponses"}
    fields: list[CustomField] = []
    while True:
        body = client.v5(
            "GET", V5_CUSTOM_FIELDS, endpoint="v5.customFields.query", params=params
        ).body
        for field in body.get("values") or []:
            api_field_id = field.get("apiFieldId")
            fields.append(
                CustomField(
                    field_id=str(field["fieldId"]),
                    type=str(field.get("type") or "Text"),
                    multi=field.get("isRecordMultipleResponses") is True,
                    # Absent or empty: CustomField falls back to fieldId + "__c".
                    api_field_id=str(api_field_id) if api_field_id else None,
                )
            )
        token = body.get("nextPageToken")
        if not token:
            return FieldCatalog.from_custom_fields(fields)
        params = {"fields": params["fields"], "nextPageToken": token}


def probe_v34_prospects(client: PardotClient, *, version: int) -> None:
    """The cheapest prospect call in v3/v4: one prospect, no count. It fails with 88 or 89
    when the business unit needs the other version."""
    client.v34("prospect", "query", version=version, params={"limit": 1, "output": "bulk"})


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")
