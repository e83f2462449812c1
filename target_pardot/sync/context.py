"""What every version's sync needs for one run, and the shared handling of outcomes."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from target_pardot.api.client import PardotClient
from target_pardot.api.errors import TransientError, field_for
from target_pardot.finder import ProspectFinder
from target_pardot.matching import Group
from target_pardot.outcomes import Result, RunReport
from target_pardot.settings import Settings
from target_pardot.sync.batches import BatchOutcome, BatchWriter, WriteItem


@dataclass
class SyncContext:
    settings: Settings
    client: PardotClient
    report: RunReport
    executor: Executor
    writer: BatchWriter
    finder: ProspectFinder | None = None

    def note_merges(self, groups: list[Group]) -> None:
        merged = sum(len(group.members) - 1 for group in groups)
        if merged:
            self.report.merged(merged)

    def reject_group(
        self, group: Group, reason: str, *, code: int | None = None, field: str | None = None
    ) -> None:
        for member in group.members:
            self.report.reject(member.reject(reason, field=field, code=code))

    def write(
        self,
        operation: str,
        items: list[WriteItem],
        *,
        resolve_lost: Callable[[list[WriteItem]], list[WriteItem]] | None = None,
    ) -> BatchOutcome:
        """Write `items`; creates whose answer was lost are resolved and sent again.

        The writer hands lost creates back unsent; `resolve_lost` turns the ones Pardot did
        apply into updates of what they made. Nothing is raised here: what stopped a call is
        in `outcome.error`, raised by `apply` once what did reach Pardot is counted.
        """
        outcome = self.writer.write(operation, items)
        rounds = 0
        while outcome.ambiguous and outcome.error is None:
            rounds += 1
            lost, outcome.ambiguous = outcome.ambiguous, []
            if resolve_lost is None or rounds > self.settings.max_retries:
                outcome.error = TransientError(
                    f"{operation}: {len(lost)} creates lost their answer {rounds} times in a "
                    "row; stopping rather than risking duplicates"
                )
                break
            try:
                resolved = resolve_lost(lost)
            except Exception as error:  # counted by apply(), then raised there
                outcome.error = error
                break
            outcome.merge(self.writer.write(operation, resolved))
        return outcome

    def apply(self, outcome: BatchOutcome) -> None:
        """Count what was applied, reject what Pardot refused, then raise what stopped."""
        for item, result in outcome.applied:
            self.report.count(result)
            if self.finder is not None:
                if item.prospect_id is not None:
                    self.finder.remember_updated(item.prospect_id, item.group)
                elif result is Result.CREATED:
                    # Batch answers carry no ids: the finder reads it back by email if needed.
                    self.finder.remember_created(item.group)
        for failure in outcome.failed:
            self.reject_group(
                failure.item.group,
                f"Pardot refused it: {failure.message}",
                code=failure.code,
                field=field_for(failure.code, failure.message),
            )
        if outcome.error is not None:
            raise outcome.error
