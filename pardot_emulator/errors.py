"""Pardot error codes, their messages, and the HTTP status each API version answers with.

Messages come from Pardot's published error-code list where one exists; the few that are
not published (183, 214) are worded plausibly and only ever reach clients via
``PardotEmulator.queue_error``.
"""

from __future__ import annotations

MESSAGES: dict[int, str] = {
    2: "Invalid action",
    3: "Invalid prospect ID",
    4: "Invalid prospect email address",
    5: "Invalid query parameters",
    7: "Invalid timestamp",
    9: "A prospect with the specified email address already exists",
    13: "One or more required parameters are missing",
    14: "Non-existent prospect ID; No email address provided",
    16: "Invalid ID",
    19: "Invalid value specified for sort_by",
    20: "Invalid value specified for sort_order",
    21: "Invalid value specified for offset",
    23: "Invalid value specified for limit",
    27: "Parameter deleted must be true or false",
    31: "Missing required parameter",
    38: "Invalid campaign ID",
    54: "Email address is already in use",
    56: "Invalid number entered for field",
    57: "Invalid date entered for field",
    60: "Invalid HTTP request method",
    61: "Invalid prospect account id",
    62: "Conflicting Update",
    66: "You have exceeded your concurrent request limit.  Please wait, before trying again",
    70: "Batch processing is limited to 50 prospects at once.",
    71: "Input needs to be valid JSON or XML",
    77: "Invalid prospect fid",
    81: "Prospect ID and FID do not match",
    85: "Unable to save the prospect",
    88: "Your account must use version 4 of the API.",
    89: "Your account is unable to use version 4 of the API.",
    90: "Prospect array should be a flat array of attributes",
    91: "Prospect array must be keyed by email address",
    116: "Request outdated.",
    120: "Unable to verify Salesforce connector",
    121: "Unable to sync Prospect with Salesforce",
    122: "Daily API rate limit met",
    132: "Prospect is archived",
    150: "Input needs to be valid JSON",
    152: "Request body can't be empty",
    153: "Missing required property in request",
    154: "Invalid property in request",
    # Import API (v5 and v4). Only 164 is a published code; the others are the emulator's
    # choice (UNCONFIRMED, see the package docstring), with Pardot-like wording.
    161: "Import is not open",
    162: "Import is not finished processing",
    163: "Import has the maximum number of batches",
    164: "Daily import batch limit met",
    165: "Batch file is larger than the maximum size",
    166: "Batch file is not a valid CSV file",
    167: "Batch header must repeat the import's first header",
    168: "Import columns must name each column of the CSV once",
    180: "One or more of the specified fields are invalid",
    181: "A required header is missing",
    # The notes give 182's meaning (the header is invalid) but not its wording or status: both
    # are the emulator's choice, HTTP 400 as for the missing header (181).
    182: "Invalid Pardot-Business-Unit-Id header",
    183: "An internal error occurred. Please try again",
    184: "access_token is invalid, unknown, or malformed: Inactive token",
    201: "Business Unit specified in Pardot-Business-Unit-Id header not found or inactive.",
    214: "The request timed out. Please try again",
}

# Everything not listed answers HTTP 400, which is what Pardot does for most failures.
_V34_STATUS: dict[int, int] = {184: 401, 201: 403}
_V5_STATUS: dict[int, int] = {
    184: 401,
    201: 403,
    66: 429,
    122: 429,
    60: 405,
    163: 429,
    164: 429,
    165: 413,
}


class PardotError(Exception):
    """A failure Pardot reports with a numeric code (v3/v4 ``err_code``, v5 ``code``)."""

    def __init__(self, code: int, message: str | None = None, *, status: int | None = None):
        self.code = code
        self.message = message if message is not None else MESSAGES.get(code, "Unknown error")
        # An explicit status wins over the per-version table (v5 "not found" is a 404).
        self.status = status
        super().__init__(f"{code}: {self.message}")

    def v34_status(self) -> int:
        return self.status or _V34_STATUS.get(self.code, 400)

    def v5_status(self) -> int:
        return self.status or _V5_STATUS.get(self.code, 400)


def field_error(code: int, field: str) -> PardotError:
    """56/57-style errors name the offending field after the published message."""
    return PardotError(code, f"{MESSAGES[code]} {field}")
