"""API v5: the v4 matching rules through `/api/v5/objects/prospects`, one call per record group.

v5 has no batch writes, so every group is one call, sent concurrently (the worker pool and the
client cap calls in flight at `max_concurrency`). Identity as in v4. Per identity:

- Pardot id: `PATCH prospects/{id}`. With a fid as well, `GET prospects/{id}` first checks that
  the prospect carries that Salesforce id (v4's error 81 when it does not).
- fid: resolved from the scan of all prospects (source.py: v5 has no query filter by Salesforce
  id), then `PATCH`. 15- and 18-character Salesforce ids of one record compare equal. A fid no
  prospect carries is rejected (77): v5 cannot write a Salesforce id, so creating the prospect,
  as v4 does, would make one not linked to the lead or contact.
- lookup value: the finder (read by email or scan), then `PATCH`, or `POST prospects` with the
  lookup field (and `campaignId`) when none matches.
- email only, match_by_email true: `POST prospects/do/upsertLatestByEmail` (writes.py). In
  sync_mode update_only and create_only the email is looked up first (the finder's read or
  scan), because the upsert cannot say whether the prospect exists: then `PATCH` or `POST`.
- email only, match_by_email false: `POST prospects`, Pardot's raw rule.

Every id a write answers with is remembered for the identity written (reads lag writes by up to
60 seconds, so nothing this run wrote is read back): a later group with that identity is an
UPDATE of that prospect, found without a call.

With write_method import (or auto, for a batch of more than import_threshold groups) the same
plan is written through Pardot's Import API instead (imports.py, ../importing.py): UPDATE steps
as rows matched by matchId, UPSERT_BY_EMAIL by matchEmail, CREATE as rows that match nothing;
steps a CSV row cannot express still go one call each.

Modules: source.py (finding), bodies.py (v5 names), writes.py (the calls), imports.py (the
Import API and v5 CSV rows), this one (the rules as data, and running a plan's steps
concurrently).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import wait
from typing import ClassVar

from target_pardot.api.codes import ErrorClass
from target_pardot.dialects.base import (
    Found,
    RunTools,
    lookup_without_email,
    reject_group,
    require_some_identity,
    settle_unsent,
    unmatched_lookup_step,
    update_by_pardot_id,
    v4_identity,
)
from target_pardot.dialects.customfields import load_v5_catalog
from target_pardot.dialects.importing import ImportWriter
from target_pardot.dialects.imports_state import ImportLedger
from target_pardot.dialects.v5.bodies import field_of
from target_pardot.dialects.v5.imports import V5ImportApi, V5ImportRows
from target_pardot.dialects.v5.source import V5Source
from target_pardot.dialects.v5.writes import Outcome, V5Writes
from target_pardot.errors import PardotAPIError, RecordError, stopping_error
from target_pardot.fields import FieldCatalog
from target_pardot.finder import FoundProspects, ProspectFinder
from target_pardot.identify import Identify
from target_pardot.matching import Group, Identity
from target_pardot.outcomes import Result
from target_pardot.plan import UNSENT, Action, Plan, Step
from target_pardot.prepare import Prepared
from target_pardot.settings import Settings

INVALID_FID = 77


def plan_v5(groups: list[Group], found: Found, settings: Settings) -> Plan:
    """v5's rules as data (the README's matching table, v5 column).

    `found` holds every id already known: prospects this run wrote, lookup values the finder
    matched, and Salesforce ids the scan resolved.
    """
    steps: list[Step] = []
    claimed: set[int] = set()
    for group in groups:
        identity = group.identity
        known = found.get(identity)
        if known is not None:
            steps.append(Step(Action.UPDATE, group, known))
        elif identity.kind == "id":
            steps.append(update_by_pardot_id(group, check_fid=True))
        elif identity.kind == "fid":
            steps.append(
                Step.reject(
                    group,
                    "pardot_fid",
                    f"no prospect has Salesforce id {identity.value}; API v5 cannot set a "
                    "Salesforce id, so none is created (sync the lead or contact to Pardot, or "
                    "send the record with its email instead)",
                    code=INVALID_FID,
                )
            )
        elif identity.kind == "lookup" and group.email is None:
            steps.append(lookup_without_email(group, settings))
        elif identity.kind == "lookup":
            steps.append(unmatched_lookup_step(group, found, settings, claimed))
        elif identity.kind == "email" and identity not in found:
            steps.append(Step(Action.UPSERT_BY_EMAIL, group))
        else:
            # A new identity, or an email looked up (sync_mode other than upsert) and not found.
            steps.append(Step(Action.CREATE, group))
    return Plan(steps)


class V5Dialect:
    version: ClassVar[int] = 5
    json_values: ClassVar[bool] = True

    def __init__(self, tools: RunTools, **clocks: Callable) -> None:  # type: ignore[type-arg]
        self._tools = tools
        settings = tools.settings
        self.catalog = FieldCatalog()
        self.source = V5Source(tools.client, settings.lookup_field, lambda: self.catalog)
        self.finder = ProspectFinder(
            self.source,
            lookup_field=settings.lookup_field,
            strategy=settings.lookup_strategy,
            report=tools.report,
            executor=tools.read_executor,
            pause=lambda seconds: tools.client.pause_before_retry(
                seconds, failure="waiting for Pardot's reads to show a prospect this run wrote"
            ),
        )
        self.writes = V5Writes(
            tools.client, settings, tools.report, self.source, lambda: self.catalog, **clocks
        )
        self._lock = threading.Lock()
        self._written: dict[Identity, int] = {}
        self.imports = ImportWriter(
            api=V5ImportApi(tools.client),
            rows=V5ImportRows(settings, tools.report, lambda: self.catalog),
            ledger=ImportLedger.for_settings(settings, api="v5"),
            settings=settings,
            report=tools.report,
            on_applied=self._applied_by_import,
        )

    def load_catalog(self) -> FieldCatalog:
        self.catalog = load_v5_catalog(self._tools.client)
        return self.catalog

    def check_api_version(self) -> str:
        self.source.probe()
        return "Pardot answered a v5 prospect query: v5 works with either kind of business unit"

    def resume(self) -> None:
        self.imports.resume()

    def close(self) -> None:
        self.imports.ledger.close()

    def require_identity(self, identify: Identify) -> None:
        require_some_identity(identify)

    def identity_of(self, prepared: Prepared) -> Identity:
        return v4_identity(prepared, self._tools.settings)

    def find(self, groups: list[Group]) -> Found:
        found = FoundProspects()
        with self._lock:
            for group in groups:
                if group.identity in self._written:
                    found[group.identity] = self._written[group.identity]
        fresh = [group for group in groups if group.identity not in found]
        # upsertLatestByEmail cannot say whether a prospect exists before it writes, which
        # update_only and create_only must know: there emails are looked up like lookup values.
        kinds = ("lookup",) if self._tools.settings.sync_mode == "upsert" else ("lookup", "email")
        to_find = [group for group in fresh if group.identity.kind in kinds]
        if to_find:
            found.merge(self.finder.find(to_find))
        fids = [group for group in fresh if group.identity.kind == "fid"]
        if fids:
            self.finder.finish_scan()
            for group in fids:
                found[group.identity] = self.source.prospect_for_fid(group.identity.value)
        return found

    def plan(self, groups: list[Group], found: Found) -> Plan:
        return plan_v5(groups, found, self._tools.settings)

    def execute(self, plan: Plan) -> None:
        settle_unsent(plan, self._tools.report)
        steps = [step for step in plan if step.action not in UNSENT]
        steps = self.imports.without_recovered_creates(steps)
        if self.imports.wanted(steps):
            steps = self.imports.write(steps)  # what a CSV row cannot say goes on below
        self._call_each(steps)

    def _call_each(self, calls: list[Step]) -> None:
        futures = [self._tools.executor.submit(self._run, step) for step in calls]
        # Let every call finish before raising, so what the others applied is counted.
        wait(futures)
        error = stopping_error(future.exception() for future in futures)
        if error is not None:
            raise error

    def _applied_by_import(self, step: Step, result: Result) -> None:
        """Keep what api mode keeps after a write: ids for identities, the scan index true,
        and skip_unchanged's record of what Pardot holds."""
        group = step.group
        self._tools.on_applied(group)
        if step.action is Action.UPDATE and step.prospect_id is not None:
            with self._lock:
                if group.identity.kind != "new":
                    self._written[group.identity] = step.prospect_id
            self.finder.remember_updated(step.prospect_id, group)
        elif step.action is Action.CREATE:
            # An import answers with counts, not ids: a later record with this identity reads
            # the prospect by the email it was created with (as v4 does after batch creates).
            self.finder.remember_created(group)

    def _run(self, step: Step) -> None:
        group = step.group
        try:
            outcome = self._call(step)
        except RecordError as problem:
            reject_group(self._tools.report, group, problem)
            return
        except PardotAPIError as error:
            if error.error_class is not ErrorClass.RECORD:
                raise
            problem = RecordError(
                field_of(error, group, self.catalog),
                f"Pardot refused it: {error.message}",
                code=error.code,
            )
            reject_group(self._tools.report, group, problem)
            return
        report = self._tools.report
        if outcome is None:
            report.count(Result.UNCHANGED, stream=group.stream)
            return
        prospect_id, result = outcome
        with self._lock:
            if group.identity.kind != "new":
                self._written[group.identity] = prospect_id
        if result is Result.CREATED:
            self.writes.note_created(prospect_id)
        report.count(result, stream=group.stream)
        if step.claims:
            report.claimed(stream=group.stream)
        self.finder.remember_updated(prospect_id, group)
        self._tools.on_applied(group)

    def _call(self, step: Step) -> Outcome | None:
        if step.action is Action.UPDATE:
            assert step.prospect_id is not None
            if step.fid:
                return self.writes.update_checking_fid(step.group, step.prospect_id, step.fid)
            return self.writes.update(step.group, step.prospect_id, Result.UPDATED)
        if step.action is Action.UPSERT_BY_EMAIL:
            return self.writes.upsert_latest(step.group)
        if step.action is Action.CREATE:
            return self.writes.create(step.group)
        # UPDATE_IF_EXISTS / CREATE_IF_NEW come from UPSERT_BY_EMAIL, which plan_v5 makes only
        # in sync_mode upsert (elsewhere emails are looked up first).
        raise AssertionError(f"v5 plans never hold {step.action.value!r} steps")
