"""What every version's sync needs for one run, and the shared handling of outcomes."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass

from target_pardot.api.client import PardotClient
from target_pardot.api.errors import field_for
from target_pardot.finder import ProspectFinder
from target_pardot.matching import Group
from target_pardot.outcomes import Result, RunReport
from target_pardot.settings import Settings
from target_pardot.sync.batches import BatchOutcome, BatchWriter


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

    def apply(self, outcome: BatchOutcome) -> None:
        for item, result in outcome.applied:
            self.report.count(result)
            if self.finder is not None:
                if result is Result.CREATED:
                    self.finder.remember_created(item.group)
                elif item.prospect_id is not None:
                    self.finder.remember_updated(item.prospect_id, item.group)
        for failure in outcome.failed:
            self.reject_group(
                failure.item.group,
                f"Pardot refused it: {failure.message}",
                code=failure.code,
                field=field_for(failure.code, failure.message),
            )
