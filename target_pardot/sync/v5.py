"""v5: the v4 matching rules through `/api/v5/objects/prospects`, one call per record.

v5 has no batch writes, so every record group is one call, sent concurrently (the worker pool
and the client cap calls in flight at `max_concurrency`). Per identity:

- Pardot id: `PATCH prospects/{id}`. With a fid as well, `GET prospects/{id}` first checks that
  the prospect carries that Salesforce id (v4's error 81 when it does not).
- fid: v5 has no single-record upsert by Salesforce id, and its prospect query filters only by
  email, id, creation/update time and deleted state: there is no salesforceLeadId /
  salesforceContactId / salesforceId filter. So fids are resolved from the scan of all
  prospects (`GET prospects?fields=id,email,updatedAt,salesforceLeadId,salesforceContactId`,
  1000 a call, following nextPageToken), the same scan the finder uses for lookup values, made
  at most once a run and kept. The first fid record of a run pays for the whole scan; each
  record then costs one PATCH. 15- and 18-character Salesforce ids of one record compare equal
  (the 18-character form only adds a checksum). A fid that no prospect carries is rejected
  (code 77): v5 cannot write a Salesforce id (those fields are read-only), so creating the
  prospect, as v4 does, would make one that is not linked to the lead or contact.
- lookup value: the finder (read by email or scan, see finder.py), then `PATCH prospects/{id}`,
  or `POST prospects` with the lookup field (and `campaignId`) when none matches.
- email only, match_by_email true: `POST prospects/do/upsertLatestByEmail`, which updates the
  prospect with that email that was active last or creates one, so it never duplicates; with
  `secondaryDeletedSearch` a prospect in the recycle bin is restored rather than duplicated.
  Whether it created or updated is told by the `createdAt` it answers with (asked for with
  `fields`), compared with the time of the call on Pardot's clock (its Date header), never by
  the HTTP status: production answers 200 for both. An answer without an `id` is resolved by a
  read by email. With `campaign_id`, a created prospect gets the campaign by one more PATCH,
  so that existing prospects keep theirs.
- email only, match_by_email false: `POST prospects`, Pardot's raw rule.

Reads may lag writes by up to 60 seconds, so nothing this run wrote is read back: every id a
write answers with (creates and upserts return it) is remembered for the identity written, and
a later record with that identity PATCHes that prospect. A create whose answer was lost
(AmbiguousWriteError) is never simply sent again: the prospects with its email are queried
(until the read lag has passed) for the one it made, or one with its lookup value, which is
then PATCHed; only when none shows up is the create retried.

Field names go out in camelCase (`first_name` -> `firstName`), custom fields by the apiFieldId
the custom-fields endpoint gives (`<fieldId>__c`; real v5 refuses the bare fieldId with 154 in
bodies and 51 in `fields`). A field v5 cannot write would make Pardot refuse the whole write
(error 180), so it is left out and reported once with the unknown traits.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import wait
from dataclasses import dataclass
from typing import Any

from target_pardot.api.client import ApiResponse, PardotClient
from target_pardot.api.errors import (
    AmbiguousWriteError,
    ErrorClass,
    PardotAPIError,
    TransientError,
    field_for,
)
from target_pardot.fields import (
    STANDARD_FIELDS,
    CustomField,
    FieldCatalog,
    to_v5_name,
)
from target_pardot.finder import Candidate
from target_pardot.matching import Group, Identity, group_records
from target_pardot.outcomes import Result
from target_pardot.prepare import Prepared
from target_pardot.sync.context import SyncContext

logger = logging.getLogger(__name__)

QUERY_PAGE = 1000  # the v5 maximum for `limit`
PROSPECTS = "objects/prospects"
CUSTOM_FIELDS = "objects/custom-fields"
FID_FIELDS = ("salesforceLeadId", "salesforceContactId")
# Pardot's documented delay before a write shows in reads and queries.
READ_LAG_SECONDS = 60.0
LAG_POLL_SECONDS = 15.0
# Allowance for the difference between this machine's clock and Pardot's when telling whether
# a prospect found after a lost create was made by that create.
CLOCK_SKEW_SECONDS = 120.0
# v5 calls the owner salesforceOwnerId and takes a user id there, not a CRM id: not sendable.
NOT_IN_V5 = frozenset({"crm_owner_fid"})
INVALID_FID = 77
ID_AND_FID_DIFFER = 81
# Errors whose message ends with the v5 names at fault: "...: firstName, org_id__c".
_NAMES_AFTER_COLON = frozenset({51, 153, 154, 180})
# What an upsertLatestByEmail answers with: enough to tell a create from an update.
UPSERT_ANSWER_FIELDS = ["id", "email", "createdAt"]
# Date headers and createdAt are both whole seconds.
SERVER_CLOCK_TOLERANCE_SECONDS = 2.0

Outcome = tuple[int, Result]


def load_custom_fields(client: PardotClient) -> FieldCatalog:
    """The business unit's custom fields, from the v5 custom-fields endpoint."""
    params: dict[str, Any] = {"fields": "id,name,fieldId,apiFieldId,type,isRecordMultipleResponses"}
    fields: list[CustomField] = []
    while True:
        body = client.v5("GET", CUSTOM_FIELDS, endpoint="v5.customFields.query", params=params).body
        for field in body.get("values") or []:
            api_field_id = field.get("apiFieldId")
            fields.append(
                CustomField(
                    field_id=str(field["fieldId"]),
                    type=str(field.get("type") or "Text"),
                    multi=field.get("isRecordMultipleResponses") is True,
                    # Absent or empty: CustomField falls back to fieldId + "__c".
                    api_field_id=str(api_field_id) if api_field_id else None,
                )
            )
        token = body.get("nextPageToken")
        if not token:
            return FieldCatalog.from_custom_fields(fields)
        params = {"fields": params["fields"], "nextPageToken": token}


def fid_key(fid: str) -> str:
    """Salesforce ids compare on their 15 case-sensitive characters; 18 adds a checksum."""
    text = fid.strip()
    return text[:15] if len(text) == 18 else text


def parse_time(text: Any) -> dt.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        # Python 3.10's parser does not know the "Z" suffix.
        moment = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


class V5Source:
    """The v5 queries the finder needs, plus the Salesforce ids seen while scanning."""

    page_size = QUERY_PAGE

    def __init__(
        self,
        client: PardotClient,
        lookup_field: str | None,
        catalog: Callable[[], FieldCatalog] = FieldCatalog,
    ) -> None:
        self._client = client
        self._lookup_field = lookup_field
        # The catalog is read when the run starts, after this source is made.
        self._catalog = catalog
        self._lock = threading.Lock()
        self._by_fid: dict[str, dict[int, Candidate]] = defaultdict(dict)

    @property
    def lookup_name(self) -> str | None:
        """The lookup field as v5 names it in `fields` and answers (`<fieldId>__c`)."""
        if not self._lookup_field:
            return None
        return to_v5_name(self._lookup_field, self._catalog())

    def read_by_email(self, email: str) -> list[Candidate]:
        return [self.candidate(prospect) for prospect in self.query_by_email(email)]

    def query_by_email(self, email: str, *extra_fields: str) -> list[dict[str, Any]]:
        params = {"email": email, "fields": self._fields(*extra_fields), "limit": QUERY_PAGE}
        return [prospect for page in self._pages(params) for prospect in page]

    def scan(self, after_id: int = 0) -> Iterator[tuple[int | None, list[Candidate]]]:
        # The fids come along in the same pages, so one scan serves lookups and fids alike.
        params: dict[str, Any] = {"fields": self._fields(*FID_FIELDS), "limit": QUERY_PAGE}
        if after_id:
            params["idGreaterThan"] = after_id
        for page in self._pages(params):
            candidates = []
            for prospect in page:
                candidate = self.candidate(prospect)
                candidates.append(candidate)
                self._note_fids(prospect, candidate)
            # v5 queries return no total: the finder pages lazily (see finder.py).
            yield None, candidates

    def prospect_for_fid(self, fid: str) -> int | None:
        """The prospect carrying this lead or contact id, from a finished scan (latest wins)."""
        with self._lock:
            candidates = list(self._by_fid.get(fid_key(fid), {}).values())
        return max(candidates, key=lambda c: c.recency).id if candidates else None

    def _pages(self, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        while True:
            body = self._client.v5(
                "GET", PROSPECTS, endpoint="v5.prospects.query", params=params
            ).body
            values = [value for value in body.get("values") or [] if isinstance(value, dict)]
            yield values
            token = body.get("nextPageToken")
            if not token or not values:
                return
            # The token carries the query; only `fields` must be sent again.
            params = {"fields": params["fields"], "nextPageToken": token}

    def _fields(self, *extra: str) -> str:
        fields = ["id", "email", "updatedAt", *extra]
        lookup_name = self.lookup_name
        if lookup_name:
            fields.append(lookup_name)
        return ",".join(dict.fromkeys(fields))

    def candidate(self, prospect: Mapping[str, Any]) -> Candidate:
        return Candidate.from_prospect(prospect, self.lookup_name, "updatedAt")

    def _note_fids(self, prospect: Mapping[str, Any], candidate: Candidate) -> None:
        with self._lock:
            for name in FID_FIELDS:
                fid = prospect.get(name)
                if isinstance(fid, str) and fid:
                    self._by_fid[fid_key(fid)][candidate.id] = candidate


@dataclass
class Payload:
    """A group's v5 body, which of our field names each v5 name came from, and what was left
    out because v5 cannot write it."""

    body: dict[str, Any]
    names: dict[str, str]
    unsendable: list[str]


class RecordRejected(Exception):
    """A group the target itself refuses, with the code and field for the reject file."""

    def __init__(self, reason: str, *, code: int | None, field: str | None) -> None:
        self.reason = reason
        self.code = code
        self.field = field
        super().__init__(reason)


class V5Sync:
    """The v5 sync for one run; it keeps the ids of the prospects the run wrote."""

    def __init__(
        self,
        source: V5Source,
        catalog: Callable[[], FieldCatalog],
        *,
        read_lag: float = READ_LAG_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._catalog = catalog
        self._read_lag = read_lag
        self._sleep = sleep
        self._now = now
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._written: dict[Identity, int] = {}
        self._created: set[int] = set()

    def __call__(self, prepared: list[Prepared], context: SyncContext) -> None:
        settings = context.settings
        groups = group_records(prepared, settings)
        context.note_merges(groups)
        with self._lock:
            known = {
                g.identity: self._written[g.identity] for g in groups if g.identity in self._written
            }
        fresh = [group for group in groups if group.identity not in known]
        to_find = [group for group in fresh if group.identity.kind == "lookup"]
        found = context.finder.find(to_find) if to_find and context.finder else {}
        if any(group.identity.kind == "fid" for group in fresh):
            if context.finder is None:
                raise RuntimeError("v5 needs the finder's scan to resolve Salesforce ids")
            context.finder.finish_scan()

        tasks: list[tuple[Group, Callable[[], Outcome | None]]] = []
        for group in groups:
            task = self._plan(group, known.get(group.identity), found, context)
            if task is not None:
                tasks.append((group, task))
        futures = [
            context.executor.submit(self._run, group, task, context) for group, task in tasks
        ]
        # Let every call finish before raising, so what the others applied is counted.
        wait(futures)
        for future in futures:
            error = future.exception()
            if error is not None:
                raise error

    # planning ---------------------------------------------------------------------------------

    def _plan(
        self,
        group: Group,
        known: int | None,
        found: Mapping[Identity, int | None],
        context: SyncContext,
    ) -> Callable[[], Outcome | None] | None:
        identity = group.identity
        if known is not None:
            return lambda: self._update(group, known, Result.UPDATED, context)
        if identity.kind == "id":
            return lambda: self._update_by_id(group, context)
        if identity.kind == "fid":
            prospect_id = self._source.prospect_for_fid(identity.value)
            if prospect_id is None:
                context.reject_group(
                    group,
                    f"no prospect has Salesforce id {identity.value}; API v5 cannot set a "
                    "Salesforce id, so none is created (sync the lead or contact to Pardot, or "
                    "send the record with its email instead)",
                    code=INVALID_FID,
                    field="pardot_fid",
                )
                return None
            return lambda: self._update(group, prospect_id, Result.UPDATED, context)
        if identity.kind == "lookup":
            prospect_id = found.get(identity)
            if prospect_id is not None:
                return lambda: self._update(group, prospect_id, Result.UPDATED, context)
            if group.email is None:
                context.reject_group(
                    group,
                    f"no prospect has {context.settings.lookup_field} = {identity.value} and "
                    "the record has no email to create one with",
                    field="email",
                )
                return None
            return lambda: self._create(group, context)
        if identity.kind == "email":
            return lambda: self._upsert_latest(group, context)
        return lambda: self._create(group, context)

    def _run(self, group: Group, task: Callable[[], Outcome | None], context: SyncContext) -> None:
        try:
            outcome = task()
        except RecordRejected as rejected:
            context.reject_group(group, rejected.reason, code=rejected.code, field=rejected.field)
            return
        except PardotAPIError as error:
            if error.error_class is not ErrorClass.RECORD:
                raise
            context.reject_group(
                group,
                f"Pardot refused it: {error.message}",
                code=error.code,
                field=self._field_of(error, group),
            )
            return
        if outcome is None:
            context.report.count(Result.UNCHANGED)
            return
        prospect_id, result = outcome
        with self._lock:
            if group.identity.kind != "new":
                self._written[group.identity] = prospect_id
            if result is Result.CREATED:
                self._created.add(prospect_id)
        context.report.count(result)
        if context.finder is not None:
            context.finder.remember_updated(prospect_id, group)

    # calls ------------------------------------------------------------------------------------

    def _update(
        self, group: Group, prospect_id: int, result: Result, context: SyncContext
    ) -> Outcome | None:
        body = self._body(group, context)
        if not body:
            return None  # only fields v5 cannot write: nothing to send
        context.client.v5(
            "PATCH",
            f"{PROSPECTS}/{prospect_id}",
            endpoint="v5.prospects.update",
            params={"fields": "id"},
            json=body,
        )
        return prospect_id, result

    def _update_by_id(self, group: Group, context: SyncContext) -> Outcome | None:
        identity = group.identity
        if not identity.value.isdigit():
            raise RecordRejected(
                f"{identity.value!r} is not a Pardot prospect id (a whole number)",
                code=3,
                field="pardot_id",
            )
        prospect_id = int(identity.value)
        if identity.fid:
            # v4 has Pardot check that an id and a fid name one prospect; v5 leaves it to us.
            prospect = context.client.v5(
                "GET",
                f"{PROSPECTS}/{prospect_id}",
                endpoint="v5.prospects.read",
                params={"fields": ",".join(FID_FIELDS)},
            ).body
            carried = {fid_key(str(prospect.get(name) or "")) for name in FID_FIELDS}
            if fid_key(identity.fid) not in carried:
                raise RecordRejected(
                    f"Pardot prospect {prospect_id} does not carry Salesforce id "
                    f"{identity.fid} (Prospect ID and FID do not match)",
                    code=ID_AND_FID_DIFFER,
                    field="pardot_fid",
                )
        return self._update(group, prospect_id, Result.UPDATED, context)

    def _upsert_latest(self, group: Group, context: SyncContext) -> Outcome:
        body = self._body(group, context)
        request = {
            "matchEmail": group.email,
            "prospect": body,
            "fields": UPSERT_ANSWER_FIELDS,
            "secondaryDeletedSearch": True,
        }
        # Twice at most: upserting by email again is harmless (it finds what the first made).
        for _ in range(2):
            sent_at = self._now()
            response = context.client.v5(
                "POST",
                f"{PROSPECTS}/do/upsertLatestByEmail",
                endpoint="v5.prospects.upsertLatestByEmail",
                json=request,
            )
            answer = response.body
            if not _prospect_id(answer):
                answer = self._latest_by_email(group, context) or {}
            prospect_id = _prospect_id(answer)
            if prospect_id is not None:
                break
            logger.info(
                "upsertLatestByEmail answered without a prospect id and no prospect with the "
                "email shows in reads yet; sending it again"
            )
        else:
            raise TransientError(
                "upsertLatestByEmail answered twice without a prospect id, and reads by the "
                "email found none; stopping so the next run sends these records again"
            )
        # Pardot's status does not say which it did (production answers 200 for both), so
        # the prospect's creation time does, on Pardot's own clock where the answer gives it.
        created = self._created_since(answer.get("createdAt"), sent_at, response, self._now())
        if not created:
            return prospect_id, Result.UPDATED
        campaign_id = context.settings.campaign_id
        if campaign_id is not None:
            # Only a prospect the upsert created joins the campaign; existing ones keep theirs.
            context.client.v5(
                "PATCH",
                f"{PROSPECTS}/{prospect_id}",
                endpoint="v5.prospects.update",
                params={"fields": "id"},
                json={"campaignId": campaign_id},
            )
        return prospect_id, Result.CREATED

    def _latest_by_email(self, group: Group, context: SyncContext) -> dict[str, Any] | None:
        """The prospect an upsert by this email chose: the latest active one with it."""
        assert group.email is not None
        prospects = self._source.query_by_email(group.email, "createdAt", "lastActivityAt")
        if not prospects:
            return None
        return max(
            prospects,
            key=lambda p: (str(p.get("lastActivityAt") or ""), str(p.get("updatedAt") or "")),
        )

    @staticmethod
    def _created_since(
        created_at: Any, sent_at: dt.datetime, response: ApiResponse, received_at: dt.datetime
    ) -> bool:
        created = parse_time(created_at)
        if created is None:
            return False
        if response.server_time is None:
            return created >= sent_at - dt.timedelta(seconds=CLOCK_SKEW_SECONDS)
        # The call started at about this time on Pardot's clock.
        started = sent_at + (response.server_time - received_at)
        return created >= started - dt.timedelta(seconds=SERVER_CLOCK_TOLERANCE_SECONDS)

    def _create(self, group: Group, context: SyncContext) -> Outcome:
        body = self._body(group, context)
        if context.settings.campaign_id is not None:
            body["campaignId"] = context.settings.campaign_id
        attempts = context.settings.max_retries + 1
        for _ in range(attempts):
            sent_at = self._now()
            started = self._monotonic()
            try:
                response = context.client.v5(
                    "POST",
                    PROSPECTS,
                    endpoint="v5.prospects.create",
                    params={"fields": "id"},
                    json=body,
                    idempotent=False,
                )
            except AmbiguousWriteError as error:
                logger.info("%s; looking for the prospect it may have made", error)
                recovered = self._recover_lost_create(group, context, sent_at, started)
                if recovered is not None:
                    return recovered
                logger.info("no prospect from the lost create showed up; creating it again")
                continue
            return int(response.body["id"]), Result.CREATED
        raise TransientError(
            f"creating a prospect lost its answer {attempts} times in a row; stopping rather "
            "than risking duplicates"
        )

    # after a lost create ---------------------------------------------------------------------

    def _recover_lost_create(
        self, group: Group, context: SyncContext, sent_at: dt.datetime, started: float
    ) -> Outcome | None:
        """Find what a create whose answer was lost made, waiting out the read lag."""
        deadline = started + self._read_lag
        while True:
            context.report.recovery_calls(1)
            match = self._match_lost_create(group, sent_at)
            if match is not None:
                prospect_id, made_by_us = match
                result = Result.CREATED if made_by_us else Result.UPDATED
                # PATCH either way: idempotent, and it makes sure the record's values are there.
                update = self._update(group, prospect_id, result, context)
                return update or (prospect_id, result)
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                return None
            self._sleep(min(LAG_POLL_SECONDS, remaining))

    def _match_lost_create(self, group: Group, sent_at: dt.datetime) -> tuple[int, bool] | None:
        if not group.email:
            return None
        since = sent_at - dt.timedelta(seconds=CLOCK_SKEW_SECONDS)
        with self._lock:
            ours_already = set(self._created)
        matches: list[tuple[Candidate, bool]] = []
        for prospect in self._source.query_by_email(group.email, "createdAt"):
            candidate = self._source.candidate(prospect)
            created = parse_time(prospect.get("createdAt"))
            new = created is not None and created >= since and candidate.id not in ours_already
            if group.identity.kind == "lookup":
                if candidate.lookup == group.identity.value:
                    matches.append((candidate, new))
            elif new:
                # Pardot's raw rule creates on every record: only a prospect made since the
                # lost call, and by no other create of this run, can be the one it made.
                matches.append((candidate, True))
        if not matches:
            return None
        candidate, new = max(matches, key=lambda match: match[0].recency)
        return candidate.id, new

    # bodies -----------------------------------------------------------------------------------

    def _body(self, group: Group, context: SyncContext) -> dict[str, Any]:
        payload = self.payload(group)
        if payload.unsendable:
            context.report.note_unknown_traits(payload.unsendable)
        return payload.body

    def payload(self, group: Group) -> Payload:
        """The group's fields under their v5 names, minus the ones v5 cannot write."""
        catalog = self._catalog()
        body: dict[str, Any] = {}
        names: dict[str, str] = {}
        unsendable: list[str] = []
        for name, value in group.fields.items():
            is_custom = name in catalog.custom
            if not is_custom and (name in NOT_IN_V5 or name not in STANDARD_FIELDS):
                unsendable.append(name)
                continue
            v5_name = to_v5_name(name, catalog)
            body[v5_name] = value
            names[v5_name] = name
        if group.email:
            body["email"] = group.email
            names["email"] = "email"
        return Payload(body, names, unsendable)

    def _field_of(self, error: PardotAPIError, group: Group) -> str | None:
        if error.code in _NAMES_AFTER_COLON and ":" in error.message:
            first = error.message.rsplit(":", 1)[1].split(",")[0].strip().rstrip(".")
            if first:
                names = self.payload(group).names
                names.setdefault("matchEmail", "email")
                return names.get(first, first)
        return field_for(error.code, error.message)


def _prospect_id(answer: Mapping[str, Any]) -> int | None:
    value = answer.get("id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None
