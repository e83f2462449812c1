"""One run of the target: the client, worker pools, dialect, catalog and report it shares.

Every stream's sink hands its batches to the same PardotRun, so the concurrency limit, the token,
the custom field list and the scan index exist once per run, whatever the number of streams.
A batch flows one way:

    records --prepare--> Prepared --first_layer--> Groups --[skip unchanged]--find--> ids
    --plan--> Plan --for_sync_mode--> Plan ==pipeline==> execute --> Pardot calls --> outcomes

Everything up to the plan happens in the thread the SDK calls the sink from (each record is
prepared as the SDK hands it over, the rest once per batch); the plan is then
handed to the pipeline (pipeline.py), which executes it in the background while the next batch
is read and planned. A batch whose records name one prospect through different identities goes
through this in layers, one after the other, so that the later record wins (first_layer).
In a dry run (setting dry_run) the last step counts the plan instead of
executing it: rejects and skips are settled as usual (the reject file is written), every write
is only counted.

The run picks the API version's dialect once (DIALECTS[api_version]); nothing else here asks
which version is in use.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from target_pardot.api.client import PardotClient
from target_pardot.dialects import DIALECTS, Dialect, RunTools
from target_pardot.dialects.base import settle_unsent
from target_pardot.dialects.batches import BATCH_LIMIT
from target_pardot.errors import RunStopping, SettingsError
from target_pardot.fields import FieldCatalog
from target_pardot.matching import Group, Identity, Layer, first_layer
from target_pardot.outcomes import RejectFile, Result, RunReport
from target_pardot.pipeline import Pipeline
from target_pardot.plan import (
    UNSENT,
    Action,
    Plan,
    Step,
    prospects_written,
    prospects_written_twice,
)
from target_pardot.prepare import BatchPreparer, Prepared
from target_pardot.run_report import (
    ProgressLogger,
    log_metrics,
    metric_points,
    progress_line,
    report_block,
)
from target_pardot.settings import Settings
from target_pardot.unchanged import FingerprintStore, SkipUnchanged

logger = logging.getLogger(__name__)

READY_CALLS_PER_WORKER = 3


class PardotRun:
    def __init__(self, settings: Settings, *, client: PardotClient | None = None) -> None:
        self.settings = settings
        self.client = client or PardotClient(settings)
        # The first failure that stops the run stops the calls still to be made: see
        # PardotClient.halt.
        self.client.halt_on_failure = True
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
        # Calls queued ahead of the workers: a few per worker keeps every worker busy
        # between batches; the pipeline also takes two SDK batches, whichever is more.
        self.pipeline = Pipeline(
            capacity=READY_CALLS_PER_WORKER * BATCH_LIMIT * settings.max_concurrency
        )
        self._started = False
        self._start_lock = threading.Lock()
        # Records prepared and not yet handed over, of every stream, in the order they were read
        # (shared by the streams' batches: BatchPreparer.finish).
        self._pending: list[Prepared] = []
        self.catalog = FieldCatalog(custom={})
        tools = RunTools(settings, self.client, self.report, self.executor, self.read_executor)
        dialect_class = DIALECTS[settings.api_version]
        self.unchanged: SkipUnchanged | None = None
        if settings.skip_unchanged:
            self.unchanged = SkipUnchanged(
                FingerprintStore(
                    settings.skip_unchanged_store, business_unit_id=settings.business_unit_id
                ),
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
            # Imports an earlier run left unprocessed are waited for before any record.
            self.dialect.resume()
            self._started = True
            self.progress.start()

    def preparer(self, stream: str, *, compact: bool = False) -> BatchPreparer:
        """A batch of `stream` to fill record by record, then hand to `sync_prepared`; with
        `compact`, its records are kept as JSON text once prepared (a large batch)."""
        self.start()
        return BatchPreparer(
            stream,
            settings=self.settings,
            catalog=self.catalog,
            rules=self.dialect,
            report=self.report,
            pending=self._pending,
            compact=compact,
        )

    def sync_prepared(self, batch: BatchPreparer, *, wait: bool = True) -> None:
        """Match and plan a prepared batch here, and hand its writes to the pipeline.

        With `wait`, return only once everything handed over so far is applied (the SDK is
        about to relay STATE); otherwise return at once, to read the next batch while this one
        is written. A failure in the background is raised here, at the next batch or wait.
        The run was started when the batch was (`preparer`).
        """
        try:
            prepared = batch.finish()
            # Judged on the whole prepared batch, before any of it is written: a broken mapping
            # stops the run within its first batch, and a few bad rows that happen to come
            # first do not stop a batch that is mostly good.
            self.report.check_reject_ratio()
            if prepared:
                try:
                    self._hand_over(prepared)
                except RunStopping:
                    # A read here was halted by a batch's failure in the background: that
                    # failure is what stopped the run (drain raises it).
                    self.pipeline.drain()
                    raise
        finally:
            self.report.log_rejects()
        if wait:
            self.drain()

    def drain(self) -> None:
        """Wait until every batch handed over is applied; raise what stopped one of them."""
        self.pipeline.drain()
        self.report.check_reject_ratio()

    def _hand_over(self, prepared: list[Prepared]) -> None:
        """Hand over records read together (one batch, or the records of several streams read
        since the last batch: `BatchPreparer.finish`), layer by layer."""
        rest = prepared
        floor: dict[int, int] = {}
        written = False
        while rest:
            # A later layer follows writes of its prospects through other identities: no
            # fingerprint of its own tells what those prospects hold (skip_unchanged), unless
            # the layers before it wrote nothing (a second run of the same input).
            handed_over, floor, wrote = self._hand_over_layer(
                rest, trusted=not written, floor=floor
            )
            written = written or wrote
            if len(handed_over) == len(rest):
                return
            taken = {id(record) for record in handed_over}
            held = [record for record in rest if id(record) not in taken]
            if rest is prepared:
                for stream, n in Counter(record.identify.stream for record in held).items():
                    self.report.ordered(n, stream=stream)
            rest = held

    def _hand_over_layer(
        self, records: list[Prepared], *, trusted: bool, floor: dict[int, int]
    ) -> tuple[list[Prepared], dict[int, int], bool]:
        """Match, plan and hand over the records that can be written first, all at once.

        Returns them: all of `records`, unless two identities of the batch name one prospect
        (see first_layer, prospects_written_twice). The others are handed over after, in a
        later layer, and wait for this one to be written: the record that comes later in the
        input wins. Also returns the floor of each of the others for the next pass (first_layer),
        and whether the layer writes anything.
        """
        layer = first_layer(records, self.dialect.identity_of, floor=floor)
        # What the layer names, held until it is written: a later layer, or batch, naming any
        # of it is matched only after, so that what this one created or changed is known.
        keys = layer.keys
        self.pipeline.wait_for(keys)
        while True:
            self.pipeline.watch()
            layer, later, unchanged, plan = self._plan_layer(records, layer, floor, trusted)
            prospects = {step.prospect_id for step in plan.steps if step.prospect_id is not None}
            # An earlier batch may be writing one of these prospects through another identity,
            # and change its email or lookup value: what was found before it finished is found
            # again after.
            if not self.pipeline.wait_for(prospects):
                break
        keys.update(prospects)
        # A group may hold records of several streams: each record merged into it is counted in
        # its own stream, the group's outcome in the stream of its first record (Group.stream).
        merged = Counter(
            member.identify.stream for group in layer.groups for member in group.members[1:]
        )
        for stream, n in merged.items():
            self.report.merged(n, stream=stream)
        for stream, n in Counter(group.stream for group in unchanged).items():
            self.report.count(Result.UNCHANGED, n, stream=stream)
        plan = self._settle_plan(plan)
        if self.unchanged is not None:
            # Noted before the next layer or batch is matched: its groups naming the same
            # prospects through other identities are sent whatever their fingerprints.
            self.unchanged.sending(
                (step.group, step.prospect_id) for step in plan.steps if step.action not in UNSENT
            )
        self.pipeline.submit(len(layer.records), keys, lambda: self.execute(plan))
        return layer.records, later, any(step.action not in UNSENT for step in plan.steps)

    def _plan_layer(
        self, records: list[Prepared], layer: Layer, floor: dict[int, int], trusted: bool
    ) -> tuple[Layer, dict[int, int], list[Group], Plan]:
        """Find and plan `layer` of `records`, made smaller while finding shows it must be.

        Finding may show that a record of the layer writes a prospect that another record of
        the batch writes too, through another identity: in this layer (two groups) or in a
        later one (a Pardot id, or an identity linked to it, that comes earlier in the input).
        The batch is then layered again, knowing those prospects, and what is left of the layer
        is found again. Each pass leaves out at least one more record, never all. Returns the
        layer, the floors of the records it leaves out, the groups skip_unchanged left out, and
        the plan.
        """
        identity_of = self.dialect.identity_of
        unchanged, plan = self._match(layer.groups, trusted=trusted)
        later = layer.later
        prospect_of: dict[int, int] = {}
        while len(layer.records) < len(records) or prospects_written_twice(plan) is not None:
            written = prospects_written(plan)
            if not written or written.items() <= prospect_of.items():
                break
            prospect_of.update(written)
            relayered = first_layer(records, identity_of, prospect_of=prospect_of, floor=floor)
            if len(relayered.records) >= len(layer.records):
                if len(relayered.records) == len(layer.records):
                    later = relayered.later  # the same layer: floors that know more
                break
            layer, later = relayered, relayered.later
            unchanged, plan = self._match(layer.groups, trusted=trusted)
        return layer, later, unchanged, plan

    def _match(self, groups: list[Group], *, trusted: bool) -> tuple[list[Group], Plan]:
        """(groups skip_unchanged leaves out, the plan for the others): every read, no write.

        `trusted`: skip_unchanged may leave out groups whose fingerprint matches.
        """
        unchanged: list[Group] = []
        if self.unchanged is not None:
            # Before finding: an unchanged group costs no call at all, not even a read.
            unchanged, groups = self.unchanged.select(groups, trusted=trusted)
        return unchanged, self.dialect.plan(groups, self.dialect.find(groups))

    def _settle_plan(self, plan: Plan) -> Plan:
        """The plan as it will run: as if a dry run had written, and what sync_mode allows."""
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
        """A planned batch's writes (in a pipeline thread), or in a dry run its counts."""
        try:
            if self.dry_run is None:
                self.dialect.execute(plan)
            else:
                self._count_dry_run(plan)
        finally:
            if self.unchanged is not None:
                self.unchanged.flush()
            self.report.log_rejects()
        # Again after Pardot's answers, which may have refused more.
        self.report.check_reject_ratio()

    def _count_dry_run(self, plan: Plan) -> None:
        settle_unsent(plan, self.report)
        planned: dict[str, Counter[str]] = {}
        claims: Counter[str] = Counter()
        for step in plan:
            if step.action in UNSENT:
                continue
            stream = step.group.stream
            planned.setdefault(stream, Counter())[step.action.value] += 1
            if step.claims:
                claims[stream] += 1
        for stream, actions in planned.items():
            self.report.planned(actions, stream=stream)
        for stream, n in claims.items():
            self.report.claimed(n, stream=stream)

    def finish(self) -> None:
        # A run stopped by a failure elsewhere still has batches in the background: the
        # summary counts what they applied, so it waits for them.
        self.pipeline.settle()
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
        self.pipeline.settle()
        self.progress.stop()
        self.executor.shutdown(wait=True)
        self.read_executor.shutdown(wait=True)
        self.dialect.close()
        self.report.rejects.close()
        if self.unchanged is not None:
            self.unchanged.close()
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
