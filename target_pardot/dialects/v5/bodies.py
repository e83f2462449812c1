"""v5 request bodies: our field names in v5's spelling, and v5's errors traced back to them.

Field names go out in camelCase (`first_name` -> `firstName`), custom fields by the apiFieldId
the custom-fields endpoint gives (`<fieldId>__c`; real v5 refuses the bare fieldId with 154 in
bodies and 51 in `fields`). A field v5 cannot write would make Pardot refuse the whole write
(error 180), so it is left out and reported once with the unknown traits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from target_pardot.api.codes import field_for
from target_pardot.errors import PardotAPIError
from target_pardot.fields import STANDARD_FIELDS, FieldCatalog, to_v5_name
from target_pardot.matching import Group

# v5 calls the owner salesforceOwnerId and takes a user id there, not a CRM id: not sendable.
NOT_IN_V5 = frozenset({"crm_owner_fid"})
# Errors whose message ends with the v5 names at fault: "...: firstName, org_id__c".
_NAMES_AFTER_COLON = frozenset({51, 153, 154, 180})


@dataclass(slots=True)
class Payload:
    """A group's v5 body, which of our field names each v5 name came from, and what was left
    out because v5 cannot write it."""

    body: dict[str, Any]
    names: dict[str, str]
    unsendable: list[str]


def build_payload(group: Group, catalog: FieldCatalog) -> Payload:
    """The group's fields under their v5 names, minus the ones v5 cannot write."""
    body: dict[str, Any] = {}
    names: dict[str, str] = {}
    unsendable: list[str] = []
    for name, value in group.fields.items():
        is_custom = name in catalog.custom
        if not is_custom and (name in NOT_IN_V5 or name not in STANDARD_FIELDS):
            unsendable.append(name)
            continue
        v5_name = to_v5_name(name, catalog)
        body[v5_name] = value
        names[v5_name] = name
    if group.email:
        body["email"] = group.email
        names["email"] = "email"
    return Payload(body, names, unsendable)


def field_of(error: PardotAPIError, group: Group, catalog: FieldCatalog) -> str | None:
    """The record field a v5 error is about: v5 names it, in v5's spelling, after a colon."""
    if error.code in _NAMES_AFTER_COLON and ":" in error.message:
        first = error.message.rsplit(":", 1)[1].split(",")[0].strip().rstrip(".")
        if first:
            names = build_payload(group, catalog).names
            names.setdefault("matchEmail", "email")
            return names.get(first, first)
    return field_for(error.code, error.message)
