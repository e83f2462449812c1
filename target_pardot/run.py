"""One run of the target: the client, worker pools, dialect, catalog and report it shares.

Every stream's sink hands its batches to the same PardotRun, so the concurrency limit, the token,
the custom field list and the scan index exist once per run, whatever the number of streams.
A batch flows one way:

    records --prepare--> Prepared --group--> Groups --find--> ids --plan--> Plan
    --for_sync_mode--> Plan --execute--> Pardot calls --> outcomes in the report

In a dry run (setting dry_run) the last step counts the plan instead of executing it: rejects
and skips are settled as usual (the reject file is written), every write is only counted.

The run picks the API version's dialect once (DIALECTS[api_version]); nothing else here asks
which version is in use.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from target_pardot.api.client import PardotClient
from target_pardot.dialects import DIALECTS, Dialect, RunTools
from target_pardot.dialects.base import settle_unsent
from target_pardot.errors import SettingsError
from target_pardot.fields import FieldCatalog
from target_pardot.matching import Identity, group_records
from target_pardot.outcomes import RejectFile, RunReport
from target_pardot.plan import UNSENT, Action, Plan, Step
from target_pardot.prepare import prepare_records
from target_pardot.run_report import (
    ProgressLogger,
    log_metrics,
    metric_points,
    progress_line,
    report_block,
)
from target_pardot.settings import Settings

logger = logging.getLogger(__name__)


class PardotRun:
    def __init__(self, settings: Settings, *, client: PardotClient | None = None) -> None:
        self.settings = settings
        self.client = client or PardotClient(settings)
        self.report = RunReport(
            RejectFile.for_settings(settings), settings.max_reject_ratio, dry_run=settings.dry_run
        )
        self.dry_run = DryRun() if settings.dry_run else None
        self.progress = ProgressLogger(settings.progress_interval, self._progress_line)
        # Writes and reads get separate pools: a batch write whose answer was lost looks its
        # creates up (reads) from inside a write worker, and with one shared pool every worker
        # could end up waiting for reads queued behind it. Calls in flight stay capped by the
        # client, whatever the pools.
        self.executor = ThreadPoolExecutor(
            max_workers=settings.max_concurrency, thread_name_prefix="pardot-write"
        )
        self.read_executor = ThreadPoolExecutor(
            max_workers=settings.max_concurrency, thread_name_prefix="pardot-read"
        )
        self._started = False
        self._start_lock = threading.Lock()
        self.catalog = FieldCatalog(custom={})
        tools = RunTools(settings, self.client, self.report, self.executor, self.read_executor)
        self.dialect: Dialect = DIALECTS[settings.api_version](tools)

    def start(self) -> None:
        """Authenticate and read the custom fields once, before the first record is sent."""
        with self._start_lock:
            if self._started:
                return
            self.client.authenticate()
            self.catalog = self.dialect.load_catalog()
            self._check_lookup_field()
            # Imports an earlier run left unprocessed are waited for before any record.
            self.dialect.resume()
            self._started = True
            self.progress.start()

    def sync(self, stream: str, records: list[Mapping[str, Any]]) -> None:
        self.start()
        try:
            prepared = prepare_records(
                stream,
                records,
                settings=self.settings,
                catalog=self.catalog,
                rules=self.dialect,
                report=self.report,
            )
            # Judged on the whole prepared batch, before any of it is written: a broken mapping
            # stops the run within its first batch, and a few bad rows that happen to come
            # first do not stop a batch that is mostly good.
            self.report.check_reject_ratio()
            if prepared:
                self.execute(self.plan(stream, prepared))
            self.report.batch_done(len(records))
        finally:
            self.report.log_rejects()
        self.report.check_reject_ratio()

    def plan(self, stream: str, prepared: list[Any]) -> Plan:
        """Group, find and plan a prepared batch: every read, no write."""
        groups = group_records(prepared, self.dialect.identity_of)
        merged = sum(len(group.members) - 1 for group in groups)
        if merged:
            self.report.merged(merged, stream=stream)
        plan = self.dialect.plan(groups, self.dialect.find(groups))
        if self.dry_run is not None:
            plan = self.dry_run.as_if_written(plan)
        plan = plan.for_sync_mode(self.settings.sync_mode)
        if self.dry_run is not None:
            self.dry_run.remember(plan)
        duplicates = sum(1 for step in plan.of(Action.CREATE) if step.beside_empty_lookup)
        if duplicates:
            made = "would be made" if self.dry_run is not None else "was made"
            self.report.notice(
                f"on_empty_lookup create: prospects with a record's email but an empty "
                f"{self.settings.lookup_field} were left alone and a new prospect {made} "
                "beside them (this is how duplicates start: fill in the field, merge them in "
                "Pardot, or set on_empty_lookup to match_by_email)",
                duplicates,
            )
        return plan

    def execute(self, plan: Plan) -> None:
        if self.dry_run is None:
            self.dialect.execute(plan)
            return
        settle_unsent(plan, self.report)
        planned = Counter(step.action.value for step in plan if step.action not in UNSENT)
        if not planned:
            return
        stream = plan.steps[0].group.stream  # a plan is one batch, of one stream
        self.report.planned(planned, stream=stream)
        claims = sum(1 for step in plan if step.claims)
        if claims:
            self.report.claimed(claims, stream=stream)

    def finish(self) -> None:
        self.progress.stop()
        call_counts = self.client.stats.by_endpoint
        logger.info(self.report.summary(call_counts))
        logger.info(report_block(self.report, call_counts, lookup_field=self.settings.lookup_field))
        log_metrics(metric_points(self.report, call_counts))
        for line in self.report.closing_lines():
            logger.warning(line)

    def _progress_line(self, elapsed: float) -> str:
        stats = self.client.stats
        return progress_line(self.report, stats.api_calls, stats.in_flight, elapsed)

    def close(self) -> None:
        self.progress.stop()
        self.executor.shutdown(wait=True)
        self.read_executor.shutdown(wait=True)
        self.dialect.close()
        self.report.rejects.close()
        self.client.close()

    def _check_lookup_field(self) -> None:
        problem = lookup_field_problem(self.settings, self.catalog)
        if problem:
            raise SettingsError(problem)


def lookup_field_problem(settings: Settings, catalog: FieldCatalog) -> str | None:
    """What is wrong with lookup_field for this business unit, if anything."""
    lookup_field = settings.lookup_field
    if lookup_field and lookup_field not in catalog.custom:
        existing = ", ".join(sorted(catalog.custom)) or "none"
        return (
            f"lookup_field {lookup_field!r} is not a custom field of business unit "
            f"{settings.business_unit_id}. Custom fields that exist: {existing}."
        )
    return None


class DryRun:
    """What a dry run must remember across batches, since it writes nothing.

    A real run finds again, in a later batch, the prospect an earlier batch created (v4 by a
    read, v5 by the id the write answered); a dry run made none, so the identity would be planned
    as a create again. Here such a step counts as the update the real run would make.
    """

    # Steps after which the identity's prospect exists (or, for an upsert, surely will).
    _MAKES_PROSPECT = (Action.CREATE, Action.UPSERT_BY_EMAIL, Action.CREATE_IF_NEW)

    def __init__(self) -> None:
        self._made: set[Identity] = set()

    def as_if_written(self, plan: Plan) -> Plan:
        steps = [
            Step(Action.UPDATE, step.group)
            if step.action in self._MAKES_PROSPECT and step.group.identity in self._made
            else step
            for step in plan
        ]
        return Plan(steps)

    def remember(self, plan: Plan) -> None:
        for step in plan.of(*self._MAKES_PROSPECT):
            # A "new" identity is unique to its record: it never comes back.
            if step.group.identity.kind != "new":
                self._made.add(step.group.identity)
