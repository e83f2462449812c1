"""Finding the existing prospect for a lookup value or an email (v4 and v5 matching).

Two ways to look, chosen by `lookup_strategy`:

- read: ask Pardot for the prospects with the record's email, one call per distinct email.
- scan: page once through every prospect of the business unit, asking only for id, email,
  lookup field and update time, and keep that index for the run. It finds a prospect by its
  lookup value even after its email changed, which the read cannot.
- auto: the first scan page tells how many prospects there are, so how many calls a scan costs;
  once the reads a run needs would cost more than finishing the scan, the scan is finished.
  When the API gives no total (v5 queries), the scan is paged lazily instead: pages are fetched
  while the scan has cost no more than the reads would (those made so far plus this batch's),
  and the index is used only once the scan has ended. Without knowing the size of the business
  unit, a run then spends at most about twice the calls of the cheaper strategy.

Pardot's batch answers carry no ids, so prospects this run created are remembered by the email
they were created with and resolved by one read if the same identity comes back.

Pardot's reads may lag its writes by up to a minute (READ_LAG_SECONDS). So when the prospect an
identity of this run created is not in a read yet, the finder reads again, at growing
intervals, until the lag since that create has passed: taking "not there yet" for "not there"
would create the prospect a second time. It costs nothing when reads keep up, and at most a
minute and a few reads when they do not. (A create whose answer was lost is looked for once,
at once: see find_lost_creates.)

For a lookup value no prospect has, the finder also reports the prospects with the record's email
whose lookup field is empty (FoundProspects.empty_lookup): what to do with them is the plan's
choice (setting on_empty_lookup).
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol

from target_pardot.fields import canonical_number
from target_pardot.matching import Group, Identity
from target_pardot.outcomes import RunReport
from target_pardot.scanindex import NEWEST, ScanIndex, recency_key

logger = logging.getLogger(__name__)


# What a read or a query page says of one prospect (the scan index keeps them compactly).
@dataclass(frozen=True, slots=True)
class Candidate:
    id: int
    email: str | None
    lookup: str | None
    updated: str  # sortable text: ISO or "YYYY-MM-DD HH:MM:SS"

    @property
    def recency(self) -> tuple[str, int]:
        return (self.updated or "", self.id)

    @classmethod
    def from_prospect(
        cls,
        prospect: Mapping[str, Any],
        lookup_field: str | None,
        updated_key: str,
        *,
        numeric: bool = False,
    ) -> Candidate:
        """From a prospect as v4 (`updated_at`) or v5 (`updatedAt`) returns it; `numeric`: the
        lookup field is a Number field."""
        value = prospect.get(lookup_field) if lookup_field else None
        # Trimmed, as the record's value is (prepare._lookup_value): a value some other
        # writer padded still finds its prospect, and blank counts as empty. A Number field's
        # value comes back as a number (123 for the 00123 written): compared in one form.
        lookup = None if value is None else str(value).strip()
        if numeric and lookup:
            lookup = canonical_number(value) or lookup
        return cls(
            id=int(prospect["id"]),
            email=prospect.get("email"),
            lookup=lookup or None,
            updated=str(prospect.get(updated_key) or ""),
        )


class FoundProspects(dict[Identity, int | None]):
    """The prospect id for each identity looked for (None: no prospect matches it).

    `empty_lookup` holds, for lookup values no prospect has, the prospects with the record's
    email whose lookup field is empty, most recently updated first: prospects made before the
    lookup field was used. The plan decides what to do with them (setting on_empty_lookup).
    """

    def __init__(self) -> None:
        super().__init__()
        self.empty_lookup: dict[Identity, list[int]] = {}

    def merge(self, other: Mapping[Identity, int | None]) -> None:
        self.update(other)
        if isinstance(other, FoundProspects):
            self.empty_lookup.update(other.empty_lookup)


def empty_lookup_of(found: Mapping[Identity, int | None], identity: Identity) -> list[int]:
    """The prospects an unmatched lookup identity could claim (see FoundProspects)."""
    if isinstance(found, FoundProspects):
        return found.empty_lookup.get(identity, [])
    return []


class ProspectSource(Protocol):
    """The API-version-specific calls the finder needs."""

    page_size: int

    def read_by_email(self, email: str) -> list[Candidate]: ...

    def scan(self, after_id: int = 0) -> Iterator[tuple[int | None, list[Candidate]]]:
        """Yield (total prospects if known, page of candidates) until every prospect with an
        id above `after_id` is seen, in id order."""
        ...


# How long Pardot's reads may lag its writes (the notes), and the first and longest wait
# between two reads while waiting for a write to show.
READ_LAG_SECONDS = 60.0
FIRST_LAG_POLL_SECONDS = 1.0
MAX_LAG_POLL_SECONDS = 15.0


class ProspectFinder:
    def __init__(
        self,
        source: ProspectSource,
        *,
        lookup_field: str | None,
        strategy: str,
        report: RunReport,
        executor: Executor,
        pause: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        read_lag: float = READ_LAG_SECONDS,
    ) -> None:
        self._source = source
        self._pause = pause
        self._monotonic = monotonic
        self._read_lag = read_lag
        self._lookup_field = lookup_field
        self._strategy = strategy
        self._report = report
        self._executor = executor
        self._lock = threading.RLock()
        self._scan: Iterator[tuple[int | None, list[Candidate]]] | None = None
        self._scan_total: int | None = None
        self._scan_seen = 0
        self._scan_pages = 0
        self._scan_complete = False
        self._reads_done = 0
        # The scan index: every prospect seen, by email and lookup value (scanindex.py).
        self._table = ScanIndex()
        self._created: dict[Identity, str] = {}
        # When each of those was created (monotonic): its read may lag until READ_LAG after.
        self._created_at: dict[Identity, float] = {}
        # Every prospect with an id up to this one is in the index (once the scan is complete).
        self._indexed_up_to = 0
        # Lookup values this run wrote, by prospect: reads may lag writes (v5: up to 60 s), and
        # a prospect claimed for one lookup value must not look empty to the next batch.
        self._lookup_written: dict[int, str] = {}
        # Emails (lowercased) of v4 writes by fid since the scan began: finds of them read
        # again, since the index cannot follow those writes (see remember_written_by_fid).
        self._read_again: set[str] = set()
        # The update time the index gives this run's writes: above any time Pardot answered,
        # and rising with each write, so that among prospects sharing an email the one this run
        # wrote last is the most recently updated, as Pardot will say (a constant would leave
        # the choice to their ids).
        self._writes = itertools.count(NEWEST)

    # public ---------------------------------------------------------------------------------

    def find(self, groups: list[Group], *, fresh: bool = False) -> FoundProspects:
        """The prospect id for each lookup/email group, or None when a new one must be made.

        `fresh` forces reads by email (after an ambiguous write, the index cannot know).
        """
        found = FoundProspects()
        with self._lock:
            to_read: list[Group] = []
            others: list[Group] = []
            for group in groups:
                (to_read if fresh or self._needs_read(group) else others).append(group)
            if others and self._use_scan(others):
                self._finish_scan()
                for group in others:
                    found[group.identity] = self._from_index(group, found)
            else:
                to_read.extend(others)
        found.merge(self._read(to_read))
        return found

    def watermark(self) -> int:
        """The highest prospect id indexed so far: every prospect at or below it existed then.

        A batch notes it before it sends anything: whatever its creates made is above it.
        """
        with self._lock:
            return self._indexed_up_to

    def find_lost_creates(
        self, groups: list[Group], *, since: int | None = None
    ) -> dict[Identity, int | None]:
        """After a lost answer: the prospect each create made, where Pardot did apply it.

        With the scan index complete, one query for the prospects made since the index was
        last brought up to date (ids above it) brings the index up to date for a whole batch;
        a create is matched only among the prospects above `since` (the watermark noted before
        the batch was sent), so an older prospect with the same email is never taken for it.
        Several batches may be in flight at once, and another one's catch-up may already have
        indexed what this batch made: hence the batch's own watermark, not the index's.
        Without the index, one read per email. The calls are reported as recovery calls.
        Looked for once, at once: a create that Pardot applied but its reads do not show yet
        is sent again (reads lagging a lost write: see the note in README "Reads that lag
        writes").
        """
        with self._lock:
            if self._scan_complete:
                floor = self._indexed_up_to if since is None else since
                self._catch_up()
                found: dict[Identity, int | None] = {}
                table = self._table
                for group in groups:
                    if group.identity.kind == "lookup":
                        rows = table.rows_for_lookup(group.identity.value)
                    else:
                        rows = table.rows_for_email(group.email or "")
                    found[group.identity] = table.latest(rows, above=floor)
                return found
        reads_before = self._reads_done
        found_by_reads = self._read_once(groups)
        self._report.recovery_calls(self._reads_done - reads_before)
        return found_by_reads

    def _catch_up(self) -> None:
        """Index the prospects made since the index was last brought up to date."""
        pages = 0
        for _total, page in self._source.scan(after_id=self._indexed_up_to):
            pages += 1
            for candidate in page:
                self._index(candidate)
                self._indexed_up_to = max(self._indexed_up_to, candidate.id)
        self._report.recovery_calls(pages)

    def finish_scan(self) -> None:
        """Page through every prospect now (v5 resolves Salesforce ids from the scan)."""
        with self._lock:
            self._finish_scan()

    def remember_created(self, group: Group) -> None:
        if group.email:
            with self._lock:
                self._created[group.identity] = group.email
                self._created_at[group.identity] = self._monotonic()

    def remember_written_by_fid(self, group: Group) -> None:
        """A v4 write by Salesforce fid: Pardot's answer names no prospect, so the index cannot
        follow a lookup value or email it changed. Finds of the group's email read again (one
        read per find of that email from now on; none while no scan was begun)."""
        if not group.email:
            return
        with self._lock:
            if self._scan is not None or self._scan_complete:
                self._read_again.add(group.email.lower())

    def _needs_read(self, group: Group) -> bool:
        if group.identity in self._created:
            return True
        return bool(self._read_again) and (group.email or "").lower() in self._read_again

    def remember_updated(self, prospect_id: int, group: Group) -> None:
        """Keep the scan index true to what this run wrote (a changed email or lookup value)."""
        with self._lock:
            if not self._scan_complete:
                if group.lookup_value is not None:
                    self._lookup_written[prospect_id] = group.lookup_value
                if self._scan is None:
                    return  # the scan, if it comes, reads what this write left
            # Also while the scan is under way (auto reads a few pages, then reads by email):
            # a page already read holds what the prospect was before. A page read later
            # leaves this row as it is (ScanIndex.put, keep_written).
            self._table.put(
                prospect_id,
                group.email,
                group.lookup_value,
                next(self._writes),
                keep_missing=True,
            )

    # choosing --------------------------------------------------------------------------------

    def _use_scan(self, groups: list[Group]) -> bool:
        if self._strategy == "scan" or self._scan_complete:
            return True
        if any(group.email is None for group in groups):
            # Reads go by email; only the scan can find a prospect by lookup value alone.
            return self._strategy == "auto"
        if self._strategy == "read":
            return False
        reads_needed = len({group.email.lower() for group in groups if group.email})
        if self._scan is None:
            self._next_scan_page()
        if self._scan_total is None:
            return self._scan_lazily(reads_needed)
        remaining_pages = self._remaining_scan_pages()
        reads = self._reads_done + reads_needed
        if reads <= remaining_pages:
            return False
        if remaining_pages == 0:
            # The pages already read hold everyone; "more than 0 calls left" read as nonsense.
            logger.info(
                "lookup_strategy auto: the query pages read so far hold all %d prospects of "
                "the business unit; using them instead of %s by email",
                self._scan_total,
                _plural(reads, "read"),
            )
        else:
            logger.info(
                "lookup_strategy auto: %s by email would cost more than the %s that finish "
                "the scan of all %d prospects; scanning",
                _plural(reads, "read"),
                _plural(remaining_pages, "query call"),
                self._scan_total,
            )
        return True

    def _scan_lazily(self, reads_needed: int) -> bool:
        """auto without a total: rent or buy, one scan page for each read the run would make."""
        budget = self._reads_done + reads_needed
        # `<=`: the call after the last page ends the scan without costing a query.
        while not self._scan_complete and self._scan_pages <= budget:
            self._next_scan_page()
        if self._scan_complete:
            logger.info(
                "lookup_strategy auto: the scan of all prospects ended after %d query calls, "
                "about as many as the reads by email it replaces; using it",
                self._scan_pages,
            )
        return self._scan_complete

    def _remaining_scan_pages(self) -> int:
        total = self._scan_total or 0
        return max(0, math.ceil(max(0, total - self._scan_seen) / self._source.page_size))

    # scanning --------------------------------------------------------------------------------

    def _next_scan_page(self) -> bool:
        if self._scan_complete:
            return False
        if self._scan is None:
            self._scan = self._source.scan()
        try:
            total, page = next(self._scan)
        except StopIteration:
            self._scan_complete = True
            return False
        if total is not None and self._scan_total is None:
            self._scan_total = total
        self._scan_pages += 1
        self._scan_seen += len(page)
        for candidate in page:
            self._index(candidate)
            self._indexed_up_to = max(self._indexed_up_to, candidate.id)
        return True

    def _finish_scan(self) -> None:
        while self._next_scan_page():
            pass

    def _index(self, candidate: Candidate) -> None:
        """Add a candidate, replacing what the index held for its id unless this run wrote it."""
        self._table.put(
            candidate.id,
            candidate.email,
            candidate.lookup,
            recency_key(candidate.updated),
            keep_written=True,
        )

    def _from_index(self, group: Group, found: FoundProspects) -> int | None:
        table = self._table
        if group.identity.kind == "lookup":
            rows = table.rows_for_lookup(group.identity.value)
            if not rows and group.email:
                same_email = table.rows_for_email(group.email)
                self._note_empty_lookup(
                    found,
                    group,
                    [
                        (table.recency(row), table.prospect_id(row))
                        for row in same_email
                        if not table.has_lookup(row)
                    ],
                )
        else:
            rows = table.rows_for_email(group.identity.value)
        return table.latest(rows)

    # reading ---------------------------------------------------------------------------------

    def _read(self, groups: list[Group]) -> FoundProspects:
        """What reads by email find; a prospect this run created and the read does not show
        yet is read again until the read lag since its create has passed."""
        found = self._read_once(groups)
        delay = FIRST_LAG_POLL_SECONDS
        while True:
            with self._lock:
                late = [
                    group
                    for group in groups
                    if found.get(group.identity) is None and group.identity in self._created_at
                ]
                deadline = (
                    max((self._created_at[group.identity] for group in late), default=0.0)
                    + self._read_lag
                )
            remaining = deadline - self._monotonic()
            if not late or remaining <= 0:
                return found
            self._pause(min(delay, remaining))
            delay = min(delay * 2, MAX_LAG_POLL_SECONDS)
            again = self._read_once(late)
            for group in late:
                if again.get(group.identity) is not None:
                    found[group.identity] = again[group.identity]
                    found.empty_lookup.pop(group.identity, None)

    def _read_once(self, groups: list[Group]) -> FoundProspects:
        # One read per distinct email, whatever its case: Pardot matches emails without case.
        emails: dict[str, str] = {}
        for group in groups:
            email = self._read_email(group)
            if email:
                emails.setdefault(email.lower(), email)
        with self._lock:
            self._reads_done += len(emails)
        answers = self._executor.map(self._source.read_by_email, emails.values())
        results = dict(zip(emails, answers, strict=True))
        found = FoundProspects()
        for group in groups:
            email = self._read_email(group)
            candidates = results.get(email.lower(), []) if email else []
            if group.identity.kind == "lookup":
                matching = [c for c in candidates if str(c.lookup) == group.identity.value]
                if not matching:
                    self._note_empty_lookup(
                        found,
                        group,
                        [(c.recency, c.id) for c in candidates if c.lookup in (None, "")],
                    )
                found[group.identity] = _latest(matching)
            else:
                found[group.identity] = _latest(candidates)
        return found

    def _read_email(self, group: Group) -> str | None:
        return self._created.get(group.identity) or group.email

    def _note_empty_lookup(
        self, found: FoundProspects, group: Group, empty: list[tuple[Any, int]]
    ) -> None:
        """Prospects with the group's email whose lookup field is empty: (recency, id) each,
        ranked latest first for on_empty_lookup, leaving out those this run gave a value."""
        with self._lock:
            kept = [item for item in empty if item[1] not in self._lookup_written]
        if kept:
            found.empty_lookup[group.identity] = [
                prospect_id for _recency, prospect_id in sorted(kept, reverse=True)
            ]


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _latest(candidates: list[Candidate]) -> int | None:
    if not candidates:
        return None
    return max(candidates, key=lambda candidate: candidate.recency).id
