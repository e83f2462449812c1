"""Pardot error codes and what each one means for a sync (the exceptions are in errors.py).

Every failure is sorted into one class, because the class alone decides what the target does:
a record-level error rejects that record and the run goes on; a transient one is retried; quota,
configuration and authentication errors stop the run so that STATE is not advanced past records
that were never applied.
"""

from __future__ import annotations

import enum


class ErrorClass(enum.Enum):
    RECORD = "record"  # this record can never succeed as it is: reject it, carry on
    TRANSIENT = "transient"  # nothing was applied; retry later
    QUOTA = "quota"  # the daily API allowance is spent: stop, the next run resends
    CONFIGURATION = "configuration"  # settings or the account are wrong: stop, tell the user
    AUTHENTICATION = "authentication"  # token refused even after one refresh: stop
    CLIENT_BUG = "client_bug"  # the request was malformed: a bug in target-pardot
    UNKNOWN = "unknown"


# Codes from the Pardot v3/v4 and v5 documentation (see shared/pardot-api.md).
CODE_CLASSES: dict[int, ErrorClass] = {
    3: ErrorClass.RECORD,  # Invalid prospect ID
    4: ErrorClass.RECORD,  # Invalid prospect email address (not found, invalid, too long)
    9: ErrorClass.RECORD,  # A prospect with the specified email address already exists
    56: ErrorClass.RECORD,  # Invalid number entered for field
    57: ErrorClass.RECORD,  # Invalid date entered for field
    77: ErrorClass.RECORD,  # Invalid prospect fid
    81: ErrorClass.RECORD,  # Prospect ID and FID do not match
    180: ErrorClass.RECORD,  # v5: one or more of the specified fields are invalid
    62: ErrorClass.TRANSIENT,  # conflicting update
    66: ErrorClass.TRANSIENT,  # concurrent request limit
    85: ErrorClass.TRANSIENT,  # unable to save
    116: ErrorClass.TRANSIENT,  # request outdated
    120: ErrorClass.TRANSIENT,  # connector sync in progress
    121: ErrorClass.TRANSIENT,  # internal error
    183: ErrorClass.TRANSIENT,  # timed out
    214: ErrorClass.TRANSIENT,  # timed out
    122: ErrorClass.QUOTA,  # Daily API rate limit met
    88: ErrorClass.CONFIGURATION,  # account must use version 4
    89: ErrorClass.CONFIGURATION,  # account unable to use version 4
    181: ErrorClass.CONFIGURATION,  # business unit header missing
    182: ErrorClass.CONFIGURATION,  # business unit header invalid
    201: ErrorClass.CONFIGURATION,  # business unit unknown/inactive or wrong host
    184: ErrorClass.AUTHENTICATION,  # access_token invalid, unknown or malformed
    70: ErrorClass.CLIENT_BUG,  # batch larger than 50
    71: ErrorClass.CLIENT_BUG,  # batch JSON invalid
    90: ErrorClass.CLIENT_BUG,  # v4 batch must be an array
    91: ErrorClass.CLIENT_BUG,  # v3 batch must be an object
}

# Batch responses carry only messages, not codes; these recover the code so reject files and
# retries can use it. Matched as lower-case substrings, first match wins, because Pardot
# appends details and can join several messages for one item.
MESSAGE_CODES: tuple[tuple[str, int], ...] = (
    ("prospect id and fid do not match", 81),
    ("invalid prospect email address", 4),
    ("invalid prospect id", 3),
    ("non-existent prospect id", 3),
    ("non-existent prospect fid", 77),
    ("invalid prospect fid", 77),
    ("a prospect with the specified email address already exists", 9),
    ("invalid number entered for field", 56),
    ("invalid date entered for field", 57),
    ("prospect is archived", 132),
    ("you have exceeded your concurrent request limit", 66),
    ("daily api rate limit met", 122),
)

# The business unit answered, and said it needs the other API version.
WRONG_VERSION_CODES = frozenset({88, 89})

CONFIGURATION_HINTS: dict[int, str] = {
    88: "this business unit allows several prospects per email; set api_version to 4 (or 5)",
    89: "this business unit does not allow several prospects per email; set api_version to 3 "
    "(or 5)",
    181: "the Pardot-Business-Unit-Id header was not sent; set business_unit_id",
    182: "business_unit_id is not a valid business unit id",
    201: "business_unit_id is unknown or inactive on this host; check business_unit_id and "
    "whether the unit is a sandbox/demo one (set sandbox: true or pardot_url)",
}


def classify(code: int | None) -> ErrorClass:
    if code is None:
        return ErrorClass.UNKNOWN
    return CODE_CLASSES.get(code, ErrorClass.RECORD if code < 1000 else ErrorClass.UNKNOWN)


_CODE_FIELDS = {3: "pardot_id", 4: "email", 9: "email", 77: "pardot_fid", 81: "pardot_fid"}


def field_for(code: int | None, message: str) -> str | None:
    """The record field an error is about, when Pardot's answer says."""
    lowered = message.lower()
    marker = "for field "
    if marker in lowered:
        return message[lowered.index(marker) + len(marker) :].split()[0].strip(".:,'\"")
    return _CODE_FIELDS.get(code or 0)


def code_for_message(message: str) -> int | None:
    lowered = message.strip().lower()
    for text, code in MESSAGE_CODES:
        if text in lowered:
            return code
    return None
