"""Every exception target-pardot raises, in one tree.

    Exception
    ├── TargetPardotError          stops the run; the message says what to fix
    │   ├── SettingsError          the settings are wrong (found before or while starting)
    │   ├── AuthenticationError    Salesforce refused a token, or Pardot refused a fresh one
    │   ├── TransientError         retries ran out on a failure that is normally temporary
    │   ├── AmbiguousWriteError    a create's answer was lost: it may or may not be applied
    │   │                          (caught by the dialects, which look before sending again)
    │   └── PardotAPIError         Pardot answered with an error code (`code`, `error_class`)
    │       ├── QuotaExceededError      122: the daily allowance is spent
    │       └── ConfigurationError      88, 89, 181, 182, 201: account or settings are wrong
    └── RecordError (ValueError)   one record can never succeed as it is: it is rejected
                                   (reject file, naming the field) and the run goes on

A PardotAPIError whose `error_class` is RECORD is turned into a RecordError for the record it
was about; every other TargetPardotError ends the run with one `target-pardot stopped:` line,
and STATE is not advanced past records that were not applied.
"""

from __future__ import annotations

from collections.abc import Iterable

from target_pardot.api.codes import CONFIGURATION_HINTS, ErrorClass, classify


class TargetPardotError(Exception):
    """A failure that stops the run; its message tells the user what to fix."""


class SettingsError(TargetPardotError):
    """The settings are wrong or do not fit the business unit."""


class AuthenticationError(TargetPardotError):
    """Salesforce refused to issue a token, or Pardot refused a fresh one."""


class TransientError(TargetPardotError):
    """Retries were exhausted for a failure that is normally temporary."""


class RunStopping(TargetPardotError):
    """A call not sent because another failure is stopping the run (PardotClient.halt)."""


def stopping_error(errors: Iterable[BaseException | None]) -> BaseException | None:
    """Of calls' failures, the one to report: the cause, not a call it halted (RunStopping)."""
    found = [error for error in errors if error is not None]
    causes = [error for error in found if not isinstance(error, RunStopping)]
    return (causes or found or [None])[0]


class AmbiguousWriteError(TargetPardotError):
    """A non-idempotent write may or may not have been applied (its answer was lost)."""

    def __init__(self, endpoint: str, cause: str) -> None:
        self.endpoint = endpoint
        self.cause = cause
        super().__init__(f"no usable answer from {endpoint} after sending a write: {cause}")


class PardotAPIError(TargetPardotError):
    """Pardot answered with an error code (v3/v4 `err_code` or v5 `code`)."""

    def __init__(self, code: int | None, message: str, *, status: int, endpoint: str) -> None:
        self.code = code
        self.message = message
        self.status = status
        self.endpoint = endpoint
        self.error_class = classify(code)
        super().__init__(f"Pardot error {code} on {endpoint} (HTTP {status}): {message}")


class QuotaExceededError(PardotAPIError):
    """Error 122: the business unit's daily API allowance is used up."""

    # The import Pardot goes on running while the run waited for it, when that is where the
    # allowance ran out: its records are applied, but not counted by this run.
    running_import: int | None = None


class ConfigurationError(PardotAPIError):
    """The account or settings are wrong (88, 89, 181, 182, 201)."""

    def __str__(self) -> str:
        base = super().__str__()
        hint = CONFIGURATION_HINTS.get(self.code or 0)
        if not hint:
            return base
        # Pardot's messages may already end with a period ("... of the API.").
        return f"{base.rstrip('.')}. To fix: {hint}."


class RecordError(ValueError):
    """A record that can never succeed as it is.

    `field` names the offending field (dotted path as in the input, e.g. "traits.email"),
    `reason` is a human sentence, `code` is Pardot's error code when Pardot said so.
    """

    def __init__(self, field: str | None, reason: str, *, code: int | None = None) -> None:
        self.field = field
        self.reason = reason
        self.code = code
        super().__init__(f"{field}: {reason}" if field else reason)


def error_for(code: int | None, message: str, *, status: int, endpoint: str) -> PardotAPIError:
    """Build the most specific exception for a Pardot error answer."""
    error_class = classify(code)
    if error_class is ErrorClass.QUOTA:
        return QuotaExceededError(code, message, status=status, endpoint=endpoint)
    if error_class is ErrorClass.CONFIGURATION:
        return ConfigurationError(code, message, status=status, endpoint=endpoint)
    return PardotAPIError(code, message, status=status, endpoint=endpoint)
