"""The prospect field catalogue: v3/v4 names, their types, and the v5 (camelCase) names.

Source: the API fact sheet's field lists. ``password`` is write-only: it is stored but never
rendered, as Pardot does not return it.
"""

from __future__ import annotations

WRITABLE: tuple[str, ...] = (
    "salutation",
    "first_name",
    "last_name",
    "email",
    "password",
    "company",
    "prospect_account_id",
    "website",
    "job_title",
    "department",
    "country",
    "address_one",
    "address_two",
    "city",
    "state",
    "territory",
    "zip",
    "phone",
    "fax",
    "source",
    "annual_revenue",
    "employees",
    "industry",
    "years_in_business",
    "comments",
    "notes",
    "score",
    "is_do_not_email",
    "is_do_not_call",
    "is_reviewed",
    "is_starred",
    "campaign_id",
    "crm_owner_fid",
)

READ_ONLY: tuple[str, ...] = (
    "id",
    "grade",
    "last_activity_at",
    "recent_interaction",
    "crm_lead_fid",
    "crm_contact_fid",
    "crm_account_fid",
    "crm_last_sync",
    "crm_url",
    "opted_out",
    "created_at",
    "updated_at",
)

INTEGER_FIELDS = frozenset({"score", "campaign_id", "prospect_account_id"})
BOOLEAN_FIELDS = frozenset(
    {"is_do_not_email", "is_do_not_call", "is_reviewed", "is_starred", "opted_out"}
)
# Kept on the record itself (as epoch floats) rather than among the plain values.
TIMESTAMP_FIELDS = frozenset({"created_at", "updated_at", "last_activity_at"})
WRITE_ONLY = frozenset({"password"})

# v3/v4 output order: Pardot's own order is roughly "identity, profile, crm, flags, times".
V34_ORDER: tuple[str, ...] = (
    "id",
    "campaign_id",
    "salutation",
    "first_name",
    "last_name",
    "email",
    "company",
    "prospect_account_id",
    "website",
    "job_title",
    "department",
    "country",
    "address_one",
    "address_two",
    "city",
    "state",
    "territory",
    "zip",
    "phone",
    "fax",
    "source",
    "annual_revenue",
    "employees",
    "industry",
    "years_in_business",
    "comments",
    "notes",
    "score",
    "grade",
    "last_activity_at",
    "recent_interaction",
    "crm_lead_fid",
    "crm_contact_fid",
    "crm_owner_fid",
    "crm_account_fid",
    "crm_last_sync",
    "crm_url",
    "is_do_not_email",
    "is_do_not_call",
    "opted_out",
    "is_reviewed",
    "is_starred",
    "created_at",
    "updated_at",
)

STANDARD = frozenset(WRITABLE) | frozenset(READ_ONLY)

# v5 renames the CRM fields; everything else is plain camelCase. crm_owner_fid has no v5
# counterpart here (the brief leaves salesforceOwnerId out).
_V5_OVERRIDES: dict[str, str] = {
    "crm_lead_fid": "salesforceLeadId",
    "crm_contact_fid": "salesforceContactId",
    "crm_account_fid": "salesforceAccountId",
    "crm_last_sync": "salesforceLastSync",
    "crm_url": "salesforceUrl",
}
V5_EXCLUDED = frozenset({"crm_owner_fid"})
# Derived on read: the contact id when there is one, else the lead id.
V5_SALESFORCE_ID = "salesforceId"
# v5 names custom fields by their apiFieldId, the v3/v4 fieldId plus this suffix (real
# custom-field responses show {"fieldId": "UniqueId", "apiFieldId": "UniqueId__c"}).
V5_CUSTOM_SUFFIX = "__c"


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def v5_name(snake: str) -> str:
    return _V5_OVERRIDES.get(snake, camel(snake))


V5_TO_SNAKE: dict[str, str] = {v5_name(n): n for n in STANDARD if n not in V5_EXCLUDED}
V5_WRITABLE = frozenset(v5_name(n) for n in WRITABLE if n not in V5_EXCLUDED)
V5_READ_ONLY = frozenset(v5_name(n) for n in READ_ONLY) | {V5_SALESFORCE_ID}
