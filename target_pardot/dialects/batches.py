"""Sending v3/v4 batch writes: 50 items a call, calls in parallel, answers tied back to items.

The writer never decides what a lost answer means: creates whose answer was lost go back to the
dialect, which knows how to look for what they made (`write_resolving`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, wait
from dataclasses import dataclass, field
from typing import Any

import backoff

from target_pardot.api.client import PardotClient
from target_pardot.api.codes import ErrorClass, classify, code_for_message, field_for
from target_pardot.dialects.base import reject_group
from target_pardot.errors import (
    AmbiguousWriteError,
    PardotAPIError,
    RecordError,
    TransientError,
    stopping_error,
)
from target_pardot.finder import ProspectFinder
from target_pardot.matching import Group
from target_pardot.outcomes import Result, RunReport

logger = logging.getLogger(__name__)

BATCH_LIMIT = 50  # Pardot answers error 70 above this


@dataclass
class WriteItem:
    group: Group
    payload: dict[str, Any]  # Pardot field values, plus the identifiers in v4
    result: Result  # what applying it means: created, updated, or "created or updated" (v3)
    key: str | None = None  # v3 only: the object key, an email or a Pardot id
    creates: bool = False  # True when a lost answer would leave us unsure a prospect was made
    prospect_id: int | None = None
    # Sent before in a call whose answer was lost: its result now is not the whole story.
    after_lost_answer: bool = False


def refused(code: int | None, message: str) -> RecordError:
    """Pardot's refusal of one item, as the reject it becomes."""
    return RecordError(field_for(code, message), f"Pardot refused it: {message}", code=code)


@dataclass
class BatchOutcome:
    """What one write of items came to.

    `ambiguous` holds creates whose answer was lost: Pardot may or may not have made them, so
    only the caller, which knows how to look for them, may decide how to send them again.
    `error` is what stopped a call (quota, auth...): it is raised only after the items other
    calls applied were counted, so a run that stops reports what really reached Pardot.
    """

    applied: list[tuple[WriteItem, Result]] = field(default_factory=list)
    failed: list[tuple[WriteItem, RecordError]] = field(default_factory=list)
    ambiguous: list[WriteItem] = field(default_factory=list)
    error: BaseException | None = None

    def merge(self, other: BatchOutcome) -> None:
        self.applied.extend(other.applied)
        self.failed.extend(other.failed)
        self.ambiguous.extend(other.ambiguous)
        self.error = stopping_error((self.error, other.error))


def expand_multi_values(values: dict[str, Any]) -> dict[str, Any]:
    """Multi-value fields go to Pardot as `<field>_0`, `<field>_1`, ..."""
    # Nearly always no list: nothing to spread, no copy. Checked per item of every batch
    # call, so in one C-level pass (field mapping makes a multi-value field's value a plain
    # list, never a subclass).
    if list not in map(type, values.values()):
        return values
    expanded: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, list):
            # An empty list clears the field: `<field>_0=` (a bare `<field>=` is ignored).
            for position, element in enumerate(value or [""]):
                expanded[f"{name}_{position}"] = element
        else:
            expanded[name] = value
    return expanded


class BatchWriter:
    def __init__(
        self,
        client: PardotClient,
        *,
        version: int,
        executor: Executor,
        backoff_factor: float = 1.0,
    ) -> None:
        self._client = client
        self._version = version
        self._executor = executor
        self._backoff_factor = backoff_factor

    def write(self, operation: str, items: list[WriteItem]) -> BatchOutcome:
        """Send `items` 50 a call, calls in parallel; never raises for one call's failure."""
        return self.write_many({operation: items})

    def write_many(self, writes: Mapping[str, list[WriteItem]]) -> BatchOutcome:
        """`write` for the items of several operations, all their calls in parallel."""
        outcome = BatchOutcome()
        futures = [
            self._executor.submit(self._write_chunk, operation, items[i : i + BATCH_LIMIT])
            for operation, items in writes.items()
            for i in range(0, len(items), BATCH_LIMIT)
        ]
        # Every call finishes before the outcome is returned, so what the others applied is
        # counted even when one of them stopped the run.
        wait(futures)
        for future in futures:
            error = future.exception()
            if error is not None:
                outcome.merge(BatchOutcome(error=error))
            else:
                outcome.merge(future.result())
        return outcome

    def _encode(self, items: list[WriteItem]) -> str:
        if self._version == 3:
            body: Any = {item.key: expand_multi_values(item.payload) for item in items}
        else:
            body = [expand_multi_values(item.payload) for item in items]
        return json.dumps({"prospects": body}, separators=(",", ":"))

    def _write_chunk(self, operation: str, items: list[WriteItem]) -> BatchOutcome:
        outcome = BatchOutcome()
        pending = list(items)
        max_rounds = self._client.settings.max_retries
        transient_rounds = 0
        delays = backoff.expo(base=2, factor=self._backoff_factor, max_value=60)
        next(delays)
        while pending:
            try:
                response = self._client.v34(
                    "prospect",
                    operation,
                    version=self._version,
                    params={"prospects": self._encode(pending)},
                    idempotent=not any(item.creates for item in pending),
                )
            except AmbiguousWriteError as error:
                logger.info("%s; the caller checks which creates were applied", error)
                outcome.ambiguous.extend(pending)
                return outcome
            except PardotAPIError as error:
                if error.error_class is ErrorClass.RECORD and len(pending) == 1:
                    outcome.failed.append((pending[0], refused(error.code, error.message)))
                    return outcome
                raise
            if response.after_lost_answer:
                for item in pending:
                    item.after_lost_answer = True
            errors = _errors_map(response.body)
            if not errors:
                # Nearly every call: Pardot applied all of it.
                outcome.applied.extend(
                    (item, _result(item, response.status, len(pending))) for item in pending
                )
                return outcome
            retry: list[WriteItem] = []
            applied: list[WriteItem] = []
            for position, item in enumerate(pending):
                message = errors.get(item.key if self._version == 3 else str(position))
                if message is None:
                    applied.append(item)
                    continue
                code = code_for_message(message)
                if classify(code) is ErrorClass.TRANSIENT:
                    retry.append(item)
                else:
                    outcome.failed.append((item, refused(code, message)))
            outcome.applied.extend(
                (item, _result(item, response.status, len(applied))) for item in applied
            )
            if retry:
                transient_rounds += 1
                if transient_rounds > max_rounds:
                    raise TransientError(
                        f"{len(retry)} items of a {operation} batch kept failing transiently: "
                        f"{errors.get(retry[0].key if self._version == 3 else '0', '')}"
                    )
                self._client.pause_before_retry(
                    backoff.full_jitter(next(delays)),
                    failure=f"{len(retry)} items of a {operation} batch failed transiently",
                )
            pending = retry
        return outcome


def _result(item: WriteItem, status: int, applied_count: int) -> Result:
    if item.result is not Result.UPSERTED:
        return item.result
    if item.after_lost_answer:
        # The lost call may have created it; this answer only says the retry did not.
        return Result.UPSERTED
    # v3 batchUpsert says only whether anything was created (201) or not (200).
    if status == 200:
        return Result.UPDATED
    if applied_count == 1:
        return Result.CREATED
    return Result.UPSERTED


def _errors_map(body: dict[str, Any]) -> dict[str, str]:
    errors = body.get("errors")
    if isinstance(errors, dict):
        return {str(key): str(value) for key, value in errors.items()}
    if isinstance(errors, list):
        # An XML-to-JSON quirk: a map with keys 0..n-1 can come back as a list.
        return {str(i): str(value) for i, value in enumerate(errors) if value}
    return {}


def write_resolving(
    writer: BatchWriter,
    operation: str,
    items: list[WriteItem],
    *,
    resolve_lost: Callable[[list[WriteItem]], list[WriteItem]] | None,
    max_rounds: int,
    by_id: str | None = None,
) -> BatchOutcome:
    """Write `items`; creates whose answer was lost are resolved and sent again.

    The writer hands lost creates back unsent; `resolve_lost` (the dialect's) turns the ones
    Pardot did apply into updates of what they made. Nothing is raised here: what stopped a
    call is in `outcome.error`, raised by `apply_outcome` once what reached Pardot is counted.

    `by_id`: the operation for the items that update a prospect by its Pardot id, where it is
    not `operation` (their calls go in parallel with the others). Such items never create, so
    a lost answer of theirs is only retried: lost creates are sent again with `operation`.
    """
    if by_id is None:
        outcome = writer.write(operation, items)
    else:
        outcome = writer.write_many(
            {
                by_id: [item for item in items if item.prospect_id is not None],
                operation: [item for item in items if item.prospect_id is None],
            }
        )
    rounds = 0
    while outcome.ambiguous and outcome.error is None:
        rounds += 1
        lost, outcome.ambiguous = outcome.ambiguous, []
        if resolve_lost is None or rounds > max_rounds:
            outcome.error = TransientError(
                f"{operation}: {len(lost)} creates lost their answer {rounds} times in a row; "
                "stopping rather than risking duplicates"
            )
            break
        try:
            resolved = resolve_lost(lost)
        except Exception as error:  # counted by apply_outcome, then raised there
            outcome.error = error
            break
        outcome.merge(writer.write(operation, resolved))
    return outcome


def apply_outcome(
    outcome: BatchOutcome,
    report: RunReport,
    on_applied: Callable[[Group], None],
    finder: ProspectFinder | None = None,
) -> None:
    """Count what was applied, reject what Pardot refused, then raise what stopped a call."""
    # Counted in runs of the same result and stream (a batch's items nearly all share one),
    # under the report's lock once per run rather than once per item.
    current: tuple[Result, str] | None = None
    run = 0
    for item, result in outcome.applied:
        key = (result, item.group.stream)
        if key != current:
            if current is not None:
                report.count(current[0], run, stream=current[1])
            current, run = key, 0
        run += 1
    if current is not None:
        report.count(current[0], run, stream=current[1])
    for item, result in outcome.applied:
        on_applied(item.group)
        if finder is not None:
            if item.prospect_id is not None:
                finder.remember_updated(item.prospect_id, item.group)
            elif result is Result.CREATED:
                # Batch answers carry no ids: the finder reads it back by email if needed.
                finder.remember_created(item.group)
            elif item.group.identity.kind == "fid":
                finder.remember_written_by_fid(item.group)
    for item, problem in outcome.failed:
        reject_group(report, item.group, problem)
    if outcome.error is not None:
        raise outcome.error
