"""One run of the target: the client, worker pools, dialect, catalog and report it shares.

Every stream's sink hands its batches to the same PardotRun, so the concurrency limit, the token,
the custom field list and the scan index exist once per run, whatever the number of streams.
A batch flows one way:

    records --prepare--> Prepared --group--> Groups --find--> ids --plan--> Plan --execute-->
    Pardot calls --> outcomes in the report

The run picks the API version's dialect once (DIALECTS[api_version]); nothing else here asks
which version is in use.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from target_pardot.api.client import PardotClient
from target_pardot.dialects import DIALECTS, Dialect, RunTools
from target_pardot.errors import SettingsError
from target_pardot.fields import FieldCatalog
from target_pardot.matching import group_records
from target_pardot.outcomes import RejectFile, Result, RunReport
from target_pardot.plan import Plan
from target_pardot.prepare import prepare_records
from target_pardot.settings import Settings
from target_pardot.unchanged import FingerprintStore, SkipUnchanged

logger = logging.getLogger(__name__)


class PardotRun:
    def __init__(self, settings: Settings, *, client: PardotClient | None = None) -> None:
        self.settings = settings
        self.client = client or PardotClient(settings)
        self.report = RunReport(RejectFile.for_settings(settings), settings.max_reject_ratio)
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
        dialect_class = DIALECTS[settings.api_version]
        self.unchanged: SkipUnchanged | None = None
        if settings.skip_unchanged:
            self.unchanged = SkipUnchanged(
                FingerprintStore(settings.skip_unchanged_store),
                business_unit_id=settings.business_unit_id,
                version=dialect_class.version,
                full_resync=settings.full_resync,
            )
            tools.on_applied = self.unchanged.applied
        self.dialect: Dialect = dialect_class(tools)

    def start(self) -> None:
        """Authenticate and read the custom fields once, before the first record is sent."""
        with self._start_lock:
            if self._started:
                return
            self.client.authenticate()
            self.catalog = self.dialect.load_catalog()
            self._check_lookup_field()
            self._started = True

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
                self.execute(self.plan(prepared))
        finally:
            self.report.log_rejects()
        self.report.check_reject_ratio()

    def plan(self, prepared: list[Any]) -> Plan:
        """Group, find and plan a prepared batch: every read, no write."""
        groups = group_records(prepared, self.dialect.identity_of)
        merged = sum(len(group.members) - 1 for group in groups)
        if merged:
            self.report.merged(merged)
        if self.unchanged is not None:
            # Before finding: an unchanged group costs no call at all, not even a read.
            unchanged, groups = self.unchanged.select(groups)
            if unchanged:
                self.report.count(Result.UNCHANGED, len(unchanged))
        return self.dialect.plan(groups, self.dialect.find(groups))

    def execute(self, plan: Plan) -> None:
        try:
            self.dialect.execute(plan)
        finally:
            if self.unchanged is not None:
                self.unchanged.flush()

    def finish(self) -> None:
        logger.info(self.report.summary(self.client.stats.by_endpoint))
        for line in self.report.closing_lines():
            logger.warning(line)

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.read_executor.shutdown(wait=True)
        self.report.rejects.close()
        if self.unchanged is not None:
            self.unchanged.close()
        self.client.close()

    def _check_lookup_field(self) -> None:
        lookup_field = self.settings.lookup_field
        if lookup_field and lookup_field not in self.catalog.custom:
            existing = ", ".join(sorted(self.catalog.custom)) or "none"
            raise SettingsError(
                f"lookup_field {lookup_field!r} is not a custom field of business unit "
                f"{self.settings.business_unit_id}. Custom fields that exist: {existing}."
            )
