"""One run of the target: the client, worker pool, field catalog, finder and report it shares.

Every stream's sink hands its batches to the same PardotRun, so the concurrency limit, the token,
the custom field list and the scan index exist once per run, whatever the number of streams.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from target_pardot.api.client import PardotClient
from target_pardot.api.errors import TargetPardotError
from target_pardot.fields import CustomField, FieldCatalog
from target_pardot.finder import ProspectFinder
from target_pardot.outcomes import RejectFile, RunReport
from target_pardot.prepare import Prepared, prepare_records
from target_pardot.settings import Settings
from target_pardot.sync.batches import BatchWriter
from target_pardot.sync.context import SyncContext
from target_pardot.sync.v3 import sync_v3
from target_pardot.sync.v4 import V4Source, resolve_ambiguous_v4, sync_v4
from target_pardot.sync.v5 import V5Source, V5Sync, load_custom_fields

logger = logging.getLogger(__name__)

Sync = Callable[[list[Prepared], SyncContext], None]


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
        self.context = SyncContext(
            settings=settings,
            client=self.client,
            report=self.report,
            executor=self.executor,
            writer=BatchWriter(
                self.client,
                version=settings.api_version,
                executor=self.executor,
                resolve_ambiguous=lambda items: resolve_ambiguous_v4(self.context, items),
            ),
        )
        self._sync: Sync = sync_v3 if settings.api_version == 3 else sync_v4
        source: V4Source | V5Source | None = None
        if settings.api_version == 4:
            source = V4Source(self.client, settings.lookup_field)
        elif settings.api_version == 5:
            source = V5Source(self.client, settings.lookup_field)
            # The catalog is read at start(); the sync looks it up when it builds bodies.
            self._sync = V5Sync(source, lambda: self.catalog)
        if source is not None:
            self.context.finder = ProspectFinder(
                source,
                lookup_field=settings.lookup_field,
                strategy=settings.lookup_strategy,
                report=self.report,
                executor=self.read_executor,
            )

    def start(self) -> None:
        """Authenticate and read the custom fields once, before the first record is sent."""
        with self._start_lock:
            if self._started:
                return
            self.client.authenticate()
            self.catalog = self._load_catalog()
            self._check_lookup_field()
            self._started = True

    def sync(self, stream: str, records: list[Mapping[str, Any]]) -> None:
        self.start()
        prepared = prepare_records(
            stream, records, settings=self.settings, catalog=self.catalog, report=self.report
        )
        try:
            if prepared:
                self._sync(prepared, self.context)
        finally:
            self.report.log_rejects()
        self.report.check_reject_ratio()

    def finish(self) -> None:
        logger.info(self.report.summary(self.client.stats.by_endpoint))
        for line in self.report.closing_lines():
            logger.warning(line)

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.read_executor.shutdown(wait=True)
        self.report.rejects.close()
        self.client.close()

    def _load_catalog(self) -> FieldCatalog:
        version = self.settings.api_version
        if version == 5:
            return load_custom_fields(self.client)
        response = self.client.v34("customField", "query", version=version)
        result = response.body.get("result") or {}
        raw = result.get("customField") or []
        fields = raw if isinstance(raw, list) else [raw]
        return FieldCatalog.from_custom_fields(
            CustomField(
                field_id=str(field["field_id"]),
                type=str(field.get("type") or "Text"),
                multi=_truthy(field.get("is_record_multiple_responses")),
            )
            for field in fields
        )

    def _check_lookup_field(self) -> None:
        lookup_field = self.settings.lookup_field
        if lookup_field and lookup_field not in self.catalog.custom:
            existing = ", ".join(sorted(self.catalog.custom)) or "none"
            raise TargetPardotError(
                f"lookup_field {lookup_field!r} is not a custom field of business unit "
                f"{self.settings.business_unit_id}. Custom fields that exist: {existing}."
            )


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")
