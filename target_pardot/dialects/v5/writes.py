"""v5 writes, one call per record group: PATCH, upsertLatestByEmail, create, and what to do
when a create's answer was lost.

- upsertLatestByEmail updates the prospect with that email that was active last or creates one,
  so it never duplicates; with `secondaryDeletedSearch` a prospect in the recycle bin is
  restored rather than duplicated. Whether it created or updated is told by the `createdAt` it
  answers with (asked for with `fields`), compared with the time of the call on Pardot's clock
  (its Date header), never by the HTTP status: production answers 200 for both. An answer
  without an `id` is resolved by a read by email. With `campaign_id`, a created prospect gets
  the campaign by one more PATCH, so that existing prospects keep theirs.
- Reads may lag writes by up to 60 seconds, so nothing this run wrote is read back. A create
  whose answer was lost (AmbiguousWriteError) is never simply sent again: the prospects with
  its email are queried (until the read lag has passed) for the one it made, or one with its
  lookup value, which is then PATCHed; only when none shows up is the create retried.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from target_pardot.api.client import ApiResponse, PardotClient
from target_pardot.dialects.v5.bodies import build_payload
from target_pardot.dialects.v5.source import FID_FIELDS, PROSPECTS, V5Source, fid_key, parse_time
from target_pardot.errors import AmbiguousWriteError, RecordError, TransientError
from target_pardot.fields import FieldCatalog
from target_pardot.finder import READ_LAG_SECONDS, Candidate
from target_pardot.matching import Group
from target_pardot.outcomes import Result, RunReport
from target_pardot.settings import Settings

logger = logging.getLogger(__name__)

# Pardot's documented delay before a write shows in reads and queries.
LAG_POLL_SECONDS = 15.0
# Allowance for the difference between this machine's clock and Pardot's when telling whether
# a prospect found after a lost create was made by that create.
CLOCK_SKEW_SECONDS = 120.0
ID_AND_FID_DIFFER = 81
# What an upsertLatestByEmail answers with: enough to tell a create from an update.
UPSERT_ANSWER_FIELDS = ["id", "email", "createdAt"]
# Date headers and createdAt are both whole seconds.
SERVER_CLOCK_TOLERANCE_SECONDS = 2.0

Outcome = tuple[int, Result]


class V5Writes:
    """The calls that write one group each; a RecordError means that group is rejected."""

    def __init__(
        self,
        client: PardotClient,
        settings: Settings,
        report: RunReport,
        source: V5Source,
        catalog: Callable[[], FieldCatalog],
        *,
        read_lag: float = READ_LAG_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._settings = settings
        self._report = report
        self._source = source
        self._catalog = catalog
        self._read_lag = read_lag
        self._sleep = sleep
        self._now = now
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._created: set[int] = set()  # prospects this run's creates made

    def note_created(self, prospect_id: int) -> None:
        with self._lock:
            self._created.add(prospect_id)

    def _body(self, group: Group) -> dict[str, Any]:
        payload = build_payload(group, self._catalog())
        if payload.unsendable:
            self._report.note_unknown_traits(payload.unsendable)
        return payload.body

    def update(self, group: Group, prospect_id: int, result: Result) -> Outcome | None:
        body = self._body(group)
        if not body:
            return None  # only fields v5 cannot write: nothing to send
        self._client.v5(
            "PATCH",
            f"{PROSPECTS}/{prospect_id}",
            endpoint="v5.prospects.update",
            params={"fields": "id"},
            json=body,
        )
        return prospect_id, result

    def update_checking_fid(self, group: Group, prospect_id: int, fid: str) -> Outcome | None:
        """v4 has Pardot check that an id and a fid name one prospect; v5 leaves it to us."""
        prospect = self._client.v5(
            "GET",
            f"{PROSPECTS}/{prospect_id}",
            endpoint="v5.prospects.read",
            params={"fields": ",".join(FID_FIELDS)},
        ).body
        carried = {fid_key(str(prospect.get(name) or "")) for name in FID_FIELDS}
        if fid_key(fid) not in carried:
            raise RecordError(
                "pardot_fid",
                f"Pardot prospect {prospect_id} does not carry Salesforce id {fid} "
                "(Prospect ID and FID do not match)",
                code=ID_AND_FID_DIFFER,
            )
        return self.update(group, prospect_id, Result.UPDATED)

    def upsert_latest(self, group: Group) -> Outcome:
        body = self._body(group)
        request = {
            "matchEmail": group.email,
            "prospect": body,
            "fields": UPSERT_ANSWER_FIELDS,
            "secondaryDeletedSearch": True,
        }
        # Twice at most: upserting by email again is harmless (it finds what the first made).
        for _ in range(2):
            sent_at = self._now()
            response = self._client.v5(
                "POST",
                f"{PROSPECTS}/do/upsertLatestByEmail",
                endpoint="v5.prospects.upsertLatestByEmail",
                json=request,
            )
            answer = response.body
            if not _prospect_id(answer):
                answer = self._latest_by_email(group) or {}
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
        campaign_id = self._settings.campaign_id
        if campaign_id is not None:
            # Only a prospect the upsert created joins the campaign; existing ones keep theirs.
            self._client.v5(
                "PATCH",
                f"{PROSPECTS}/{prospect_id}",
                endpoint="v5.prospects.update",
                params={"fields": "id"},
                json={"campaignId": campaign_id},
            )
        return prospect_id, Result.CREATED

    def _latest_by_email(self, group: Group) -> dict[str, Any] | None:
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

    def create(self, group: Group) -> Outcome:
        body = self._body(group)
        if self._settings.campaign_id is not None:
            body["campaignId"] = self._settings.campaign_id
        attempts = self._settings.max_retries + 1
        for _ in range(attempts):
            sent_at = self._now()
            started = self._monotonic()
            try:
                response = self._client.v5(
                    "POST",
                    PROSPECTS,
                    endpoint="v5.prospects.create",
                    params={"fields": "id"},
                    json=body,
                    idempotent=False,
                )
            except AmbiguousWriteError as error:
                logger.info("%s; looking for the prospect it may have made", error)
                recovered = self._recover_lost_create(group, sent_at, started)
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
        self, group: Group, sent_at: dt.datetime, started: float
    ) -> Outcome | None:
        """Find what a create whose answer was lost made, waiting out the read lag."""
        deadline = started + self._read_lag
        while True:
            self._report.recovery_calls(1)
            match = self._match_lost_create(group, sent_at)
            if match is not None:
                prospect_id, made_by_us = match
                result = Result.CREATED if made_by_us else Result.UPDATED
                # PATCH either way: idempotent, and it makes sure the record's values are there.
                update = self.update(group, prospect_id, result)
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


def _prospect_id(answer: Mapping[str, Any]) -> int | None:
    value = answer.get("id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None
