"""Deliberate misbehaviour and account limits: queued errors, the daily quota, the
concurrency slots, and the every-Nth-call faults. Callers hold the emulator lock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Fault = Literal["fail", "drop"]


@dataclass
class QueuedError:
    code: int
    endpoint: str | None  # None matches every endpoint
    remaining: int
    drops: bool = False  # applied, then the connection closes unanswered (queue_drop)


class FaultPlan:
    def __init__(self) -> None:
        self.queued: list[QueuedError] = []
        self.daily_used = 0
        # Requests currently holding one of the account's concurrent-request slots.
        self.slots_taken = 0

    def queue(self, code: int, endpoint: str | None, count: int, *, drops: bool = False) -> None:
        if count > 0:
            self.queued.append(QueuedError(code, endpoint, count, drops))

    def take_queued(self, endpoint: str) -> int | None:
        """The code of the oldest queued error matching this endpoint, consuming one use."""
        entry = self._take(endpoint, drops=False)
        return entry.code if entry else None

    def take_drop(self, endpoint: str) -> bool:
        """Whether a queued drop matches this endpoint, consuming one use."""
        return self._take(endpoint, drops=True) is not None

    def _take(self, endpoint: str, *, drops: bool) -> QueuedError | None:
        for entry in self.queued:
            if entry.drops == drops and entry.endpoint in (None, endpoint):
                entry.remaining -= 1
                if entry.remaining == 0:
                    self.queued.remove(entry)
                return entry
        return None

    def charge_daily(self, limit: int | None) -> bool:
        """Count one call against the daily quota; False once the quota is exceeded."""
        self.daily_used += 1
        return limit is None or self.daily_used <= limit

    def reset_daily(self) -> None:
        self.daily_used = 0

    def take_slot(self, limit: int | None) -> bool:
        # The request over the limit fails at once rather than waiting for a slot.
        if limit is not None and self.slots_taken >= limit:
            return False
        self.slots_taken += 1
        return True

    def release_slot(self) -> None:
        self.slots_taken -= 1


def injected_fault(
    call_number: int, fail_every: int | None, drop_every: int | None
) -> Fault | None:
    """Which deliberate fault, if any, API call number ``call_number`` (1-based) suffers.
    A 500 wins over a drop: nothing is applied for a 500."""
    if fail_every and call_number % fail_every == 0:
        return "fail"
    if drop_every and call_number % drop_every == 0:
        return "drop"
    return None
