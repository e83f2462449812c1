"""Admission of one API request: everything checked before a handler may run.

Order (first failure wins): bearer token (184) -> Pardot-Business-Unit-Id header (181 when
missing, 182 when it cannot be a business unit id, 201 when not the configured unit) -> daily
quota (122) -> concurrency slot (66) -> queued errors -> every-Nth-call faults.
Unauthenticated calls therefore never use quota, and a request rejected for quota never takes a
concurrency slot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import PardotError
from .faults import Fault, FaultPlan, injected_fault
from .oauth import TokenBook

# The notes: a business unit id is 18 characters and starts with 0Uv (Salesforce ids are
# letters and digits). A header that cannot be one is invalid (182), not an unknown unit (201).
_BUSINESS_UNIT_ID = re.compile(r"0Uv[A-Za-z0-9]{15}")


@dataclass(frozen=True)
class Knobs:
    """The emulator's knob values, read once per request so a run-time change applies next."""

    business_unit_id: str
    daily_limit: int | None
    concurrency_limit: int | None
    token_ttl_seconds: float | None
    token_max_calls: int | None
    fail_every: int | None
    drop_after_commit_every: int | None


@dataclass(frozen=True)
class Verdict:
    error: PardotError | None = None
    fault: Fault | None = None
    holds_slot: bool = False


def bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def is_business_unit_id(text: str) -> bool:
    return _BUSINESS_UNIT_ID.fullmatch(text) is not None


def admit(
    *,
    endpoint: str,
    call_number: int,
    authorization: str | None,
    business_unit: str | None,
    knobs: Knobs,
    tokens: TokenBook,
    faults: FaultPlan,
) -> Verdict:
    live = tokens.admit(
        bearer_token(authorization), ttl=knobs.token_ttl_seconds, max_calls=knobs.token_max_calls
    )
    if not live:
        return Verdict(PardotError(184))
    if not business_unit:
        return Verdict(PardotError(181))
    if not is_business_unit_id(business_unit.strip()):
        return Verdict(PardotError(182))
    if business_unit.strip() != knobs.business_unit_id:
        return Verdict(PardotError(201))
    if not faults.charge_daily(knobs.daily_limit):
        return Verdict(PardotError(122))
    if not faults.take_slot(knobs.concurrency_limit):
        return Verdict(PardotError(66))
    queued = faults.take_queued(endpoint)
    if queued is not None:
        return Verdict(PardotError(queued), holds_slot=True)
    fault = injected_fault(call_number, knobs.fail_every, knobs.drop_after_commit_every)
    return Verdict(fault=fault, holds_slot=True)
