"""Writing a plan through Pardot's Import API (write_method import / auto).

The plan is the same as in api mode (the dialect's pure `plan()`, after finding); only the
writing differs. Each step becomes one CSV row (the dialect's `ImportRows` says how):

    v5 (v5/imports.py)
    UPDATE (a known prospect id)   -> a row matched by matchId       in an "update" import
    UPSERT_BY_EMAIL                -> a row matched by matchEmail    in an "upsert" import
    CREATE                         -> a row with no match value      in an "upsert" import
    v4 (v4_imports.py)
    UPDATE (a known prospect id)   -> a row matched by prospect_id    in an "update" import
    UPDATE (a Salesforce id only)  -> a row matched by salesforce_fid in an "update" import
    CREATE                         -> through the API: a v4 import row cannot create

An update import never creates (v5: createOnNoMatch off), so an id no prospect has is an error
row rather than a new prospect: a reject, as in v5's api mode, or (v4, where batchUpsert would
create one for a record with an email) the step goes through the API after all
(`ImportRows.through_api_after`). A v5 upsert import has createOnNoMatch on, with campaignId
given only to the prospects it creates (overwrite false). Empty cells never clear a field
(nullOverwrite false). Steps a CSV cannot express go through the API as before: values that
clear a field (an empty cell cannot tell "clear" from "leave alone" row by row), multi-value
lists, and an id given with a fid (the agreement check is a read).

One import, start to finish, inside the sink's process_batch, so STATE never passes records
whose import did not complete:

    create (with the first CSV batch) -> ledger entry written -> more batches -> start
    -> poll with backoff until Complete -> error rows -> rejects, counts -> ledger entry removed

- A lost answer to the create: the import it may have made is never started, so it changes
  nothing; a new one is created. A lost answer to a batch: that import is abandoned the same
  way (never started) and the rows go in a new one, so no row is ever sent twice in one import.
  A lost answer to the start: the import is read to see whether it started.
- Error rows whose reason is transient ("An internal error occurred. Please try again", an
  import that stopped part way) were not applied: they are imported again, up to
  IMPORT_ROUNDS times, then the run stops with STATE held back. Every other error row is a
  reject with Pardot's reason.
- After a crash or a lost answer, the next run (`resume`) waits for the imports left in the
  ledger, and skips the creates they applied when the tap sends their records again (see
  imports_state.py).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NoReturn, Protocol

from target_pardot.api.codes import ErrorClass, classify, code_for_message, field_for
from target_pardot.dialects.base import reject_group
from target_pardot.dialects.imports_state import ImportLedger, LedgerEntry, now_text
from target_pardot.errors import (
    AmbiguousWriteError,
    PardotAPIError,
    QuotaExceededError,
    RecordError,
    TargetPardotError,
    TransientError,
)
from target_pardot.outcomes import Rejection, Result, RunReport
from target_pardot.plan import Action, Step
from target_pardot.settings import Settings

logger = logging.getLogger(__name__)

# Pardot's limits are 10 MB per batch and 10 batches per import; stay clear of the first, as
# Pardot may count the multipart framing too.
MAX_BATCH_BYTES = 9 * 1024 * 1024
MAX_BATCHES = 10
# Polling an import: first look after FIRST_POLL seconds, then twice as long each time, at
# most MAX_POLL apart; give up (the import stays in the ledger for the next run) after MAX_WAIT.
# Pardot queues imports for minutes: doubling keeps polls few (11 for an import that takes ten
# minutes, 21 in an hour) at the price of noticing the end up to twice as late (at most 5
# minutes late), which a batch sync can afford and the daily quota prefers.
FIRST_POLL_SECONDS = 0.5
POLL_FACTOR = 2.0
MAX_POLL_SECONDS = 300.0
MAX_WAIT_SECONDS = 3600.0
# Imports of the rows that failed transiently, after the first.
IMPORT_ROUNDS = 3
DAILY_BATCH_LIMIT = 164
COMPLETE = "Complete"
OPEN = "Open"
# Error-file reasons that say the row was not applied and may succeed if sent again.
_TRANSIENT_REASONS = ("internal error", "try again", "timed out", "temporarily unavailable")

UPDATE_IMPORT = "update"  # createOnNoMatch off: rows matched by id (or Salesforce id)
UPSERT_IMPORT = "upsert"  # createOnNoMatch on: rows matched by email, and rows that create


@dataclass(slots=True)
class Row:
    """One step as a CSV row: the match column, the other cells, and our name for each."""

    step: Step
    kind: str
    cells: dict[str, str]
    names: dict[str, str] = field(default_factory=dict)  # column -> our field name

    @property
    def creates(self) -> bool:
        return self.step.action is Action.CREATE

    def digest(self) -> str:
        return row_digest(self.cells.items())


class ColumnNames:
    """Gives rows that name their columns alike one dict between them.

    A row's `names` is only read, to name the field of a row Pardot refuses, and rows of one
    shape (the same columns from the same fields) name them alike: an import holds up to
    50,000 rows, which share a few dicts rather than holding one each (a quarter of a kilobyte
    and more). Up to MAX_SHAPES shapes are kept; rows of any other keep their own.
    """

    MAX_SHAPES = 1_000

    def __init__(self) -> None:
        self._shapes: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}

    def shared(self, names: dict[str, str]) -> dict[str, str]:
        shape = tuple(names.items())
        known = self._shapes.get(shape)
        if known is not None:
            return known
        if len(self._shapes) < self.MAX_SHAPES:
            self._shapes[shape] = names
        return names


def row_digest(cells: Iterable[tuple[str, str]]) -> str:
    """The same for a row as sent and as Pardot's error file repeats it (empty cells aside)."""
    pairs = sorted((column, value) for column, value in cells if value != "")
    text = json.dumps(pairs, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


@dataclass(frozen=True)
class ImportStatus:
    status: str
    created: int = 0
    updated: int = 0
    errors: int = 0


class ImportApi(Protocol):
    """One API version's Import API calls."""

    def create(
        self,
        *,
        kind: str,
        header: list[str],
        rules: dict[str, dict[str, bool]],
        first_batch: bytes,
    ) -> int:
        """Make an import of `kind` (UPDATE_IMPORT: no row may create; UPSERT_IMPORT) holding
        `first_batch`, whose columns are `header`; `rules` are the overwrite / nullOverwrite of
        each column but the match columns. Its id."""
        ...

    def add_batch(self, import_id: int, number: int, batch: bytes) -> None: ...

    def start(self, import_id: int) -> None: ...

    def read(self, import_id: int) -> ImportStatus: ...

    def error_file(self, import_id: int) -> bytes: ...


class ImportRows(Protocol):
    """One API version's CSV columns."""

    match_columns: tuple[str, ...]
    # Written only into prospects an import creates (overwrite false); None: imports never
    # create in this version.
    campaign_column: str | None
    required_for_creates: tuple[str, ...]

    def row_for(self, step: Step) -> Row | None:
        """The step's row, or None when it must go through the API."""
        ...

    def through_api_after(self, row: Row, reason: str) -> bool:
        """Whether a row the import refused for `reason` goes through the API instead of the
        reject file, because the API would not refuse it (v4: batchUpsert creates a prospect
        for an id or Salesforce id no prospect has, where an import row only fails)."""
        ...


Applied = Callable[[Step, Result], None]


class ImportWriter:
    def __init__(
        self,
        *,
        api: ImportApi,
        rows: ImportRows,
        ledger: ImportLedger,
        settings: Settings,
        report: RunReport,
        on_applied: Applied,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._rows = rows
        self.ledger = ledger
        self._settings = settings
        self._report = report
        self._on_applied = on_applied
        self._sleep = sleep
        self._monotonic = monotonic
        # Creates that imports of an earlier run applied, by row digest (see resume()). Sinks
        # of several streams may be drained at once, hence the lock.
        self._recovered: Counter[str] = Counter()
        self._recovered_lock = threading.Lock()

    # choosing --------------------------------------------------------------------------------

    def wanted(self, steps: list[Step]) -> bool:
        method = self._settings.write_method
        if method == "auto":
            return len(steps) > self._settings.import_threshold
        return method == "import"

    # after a crash ---------------------------------------------------------------------------

    def resume(self) -> None:
        """Wait for the imports an earlier run left unprocessed; note the creates they applied."""
        if self._settings.write_method != "api":
            self.ledger.acquire()
        elif not self.ledger.exists():
            return
        for entry in self.ledger.pending():
            self.ledger.acquire()
            self._resume_one(entry)

    def _resume_one(self, entry: LedgerEntry) -> None:
        import_id = entry.import_id
        try:
            status = self._api.read(import_id)
        except PardotAPIError as error:
            if error.status != 404:
                raise
            logger.warning(
                "import %d, left unprocessed by an earlier run, no longer exists in Pardot; "
                "its records are sent again",
                import_id,
            )
            self.ledger.forget(import_id)
            return
        if status.status == OPEN:
            # Never started: nothing of it was applied, and Pardot expires it.
            logger.info(
                "import %d of an earlier run was never started, so nothing of it was applied; "
                "its records are sent again",
                import_id,
            )
            self.ledger.forget(import_id)
            return
        logger.info(
            "waiting for import %d, which an earlier run started but did not see finish",
            import_id,
        )
        status = self._wait(import_id, status)
        failed: Counter[str] = Counter()
        if status.errors:
            header, error_rows = _read_error_file(self._api.error_file(import_id))
            for cells, _reason in error_rows:
                failed[row_digest(zip(header, cells, strict=False))] += 1
        applied = entry.creates - failed
        with self._recovered_lock:
            self._recovered += applied
        logger.info(
            "import %d of an earlier run finished (%d created, %d updated, %d error rows); "
            "its records come again from the tap and its %d creates are not sent twice",
            import_id,
            status.created,
            status.updated,
            status.errors,
            sum(applied.values()),
        )
        self.ledger.forget(import_id)

    def without_recovered_creates(self, steps: list[Step]) -> list[Step]:
        """Steps minus the creates an earlier run's import already applied."""
        if not self._recovered:
            return steps
        kept: list[Step] = []
        skipped = 0
        for step in steps:
            row = self._rows.row_for(step) if step.action is Action.CREATE else None
            if row is not None and self._take_recovered(row.digest()):
                skipped += 1
                self._report.count(Result.CREATED, stream=step.group.stream)
                self._on_applied(step, Result.CREATED)
                continue
            kept.append(step)
        if skipped:
            self._report.notice(
                "records whose prospects an import of an earlier, interrupted run had already "
                "created were counted as created and not sent again"
            )
        return kept

    def _take_recovered(self, digest: str) -> bool:
        with self._recovered_lock:
            if self._recovered[digest] <= 0:
                return False
            self._recovered[digest] -= 1
            if not self._recovered[digest]:
                del self._recovered[digest]
            return True

    # writing ---------------------------------------------------------------------------------

    def write(self, steps: list[Step]) -> list[Step]:
        """Import what a CSV can express; return the steps that must go through the API: the
        ones a row cannot express, and rows the import refused that the API would not."""
        by_kind: dict[str, list[Row]] = defaultdict(list)
        # Appended to while importing; local, as several sinks may write at once.
        through_api: list[Step] = []
        for step in steps:
            row = self._rows.row_for(step)
            if row is None:
                through_api.append(step)
            elif row.kind == UPDATE_IMPORT and not _values(row, self._rows.match_columns):
                # Only fields this API cannot write.
                self._report.count(Result.UNCHANGED, stream=step.group.stream)
            else:
                by_kind[row.kind].append(row)
        for kind in (UPDATE_IMPORT, UPSERT_IMPORT):
            if by_kind[kind]:
                self._import_with_retries(kind, by_kind[kind], through_api)
        return through_api

    def _import_with_retries(self, kind: str, rows: list[Row], through_api: list[Step]) -> None:
        pending = rows
        for round_number in range(1, IMPORT_ROUNDS + 2):
            pending = self._import(kind, pending, through_api)
            if not pending:
                return
            if round_number <= IMPORT_ROUNDS:
                logger.info(
                    "%d rows failed transiently in Pardot's import; importing them again",
                    len(pending),
                )
        raise TransientError(
            f"{len(pending)} rows still failed transiently after {IMPORT_ROUNDS + 1} imports "
            '(Pardot: "An internal error occurred"); stopping so the next run sends them again'
        )

    def _import(self, kind: str, rows: list[Row], through_api: list[Step]) -> list[Row]:
        """Import the rows (in as many imports as Pardot's limits need); the rows to retry."""
        retry: list[Row] = []
        for chunk in _imports_of(rows, self._rows):
            retry.extend(self._one_import(kind, chunk, through_api))
        return retry

    def _one_import(self, kind: str, rows: list[Row], through_api: list[Step]) -> list[Row]:
        header = _header(rows, self._rows)
        batches = _batches(header, rows)
        import_id = self._send(kind, header, rows, batches)
        status = self._wait(import_id, None)
        retry = self._process(kind, import_id, header, rows, status, through_api)
        self.ledger.forget(import_id)
        return retry

    def _send(self, kind: str, header: list[str], rows: list[Row], batches: list[bytes]) -> int:
        """Create, record, fill and start one import; its id."""
        rules = {
            column: {"overwrite": column != self._rows.campaign_column, "nullOverwrite": False}
            for column in header
            if column not in self._rows.match_columns
        }
        creates = Counter(row.digest() for row in rows if row.creates)
        attempts = self._settings.max_retries + 1
        for _ in range(attempts):
            import_id = self._create(kind, header, rules, batches[0])
            if import_id is None:
                continue
            self.ledger.record(LedgerEntry(import_id, kind, now_text(), creates))
            try:
                for number, batch in enumerate(batches[1:], start=2):
                    self._api.add_batch(import_id, number, batch)
            except AmbiguousWriteError as error:
                # The batch may or may not be in the import: never start it (nothing of it is
                # applied then) and put the rows in a new one.
                logger.info(
                    "%s; leaving import %d unstarted and making a new one", error, import_id
                )
                self.ledger.forget(import_id)
                continue
            except PardotAPIError as error:
                self.ledger.forget(import_id)  # never started: nothing to wait for
                _raise_clearly(error)
            self._start(import_id)
            return import_id
        raise TransientError(
            f"creating an import lost its answer {attempts} times in a row; stopping so that "
            "the next run sends these records again"
        )

    def _create(
        self, kind: str, header: list[str], rules: dict[str, dict[str, bool]], first: bytes
    ) -> int | None:
        try:
            return self._api.create(kind=kind, header=header, rules=rules, first_batch=first)
        except AmbiguousWriteError as error:
            # Whatever it made is never started, so it changes nothing (Pardot expires it).
            logger.info("%s; an import it may have made is left unstarted; creating another", error)
            return None
        except PardotAPIError as error:
            _raise_clearly(error)

    def _start(self, import_id: int) -> None:
        for _ in range(self._settings.max_retries + 1):
            try:
                self._api.start(import_id)
                return
            except AmbiguousWriteError as error:
                logger.info("%s; reading import %d to see whether it started", error, import_id)
                if self._api.read(import_id).status != OPEN:
                    return
        raise TransientError(
            f"starting import {import_id} lost its answer {self._settings.max_retries + 1} "
            "times; it was never started, so nothing of it was applied; the next run sends "
            "these records again"
        )

    def _wait(self, import_id: int, status: ImportStatus | None) -> ImportStatus:
        delay = FIRST_POLL_SECONDS
        deadline = self._monotonic() + MAX_WAIT_SECONDS
        while status is None or status.status != COMPLETE:
            if self._monotonic() + delay > deadline:
                raise TransientError(
                    f"Pardot's import {import_id} was still "
                    f"{status.status if status else 'queued'} after {MAX_WAIT_SECONDS / 60:.0f} "
                    f"minutes; it stays recorded in {self.ledger.path}, and the next run waits "
                    "for it before sending its records again"
                )
            self._sleep(delay)
            try:
                status = self._api.read(import_id)
            except QuotaExceededError as error:
                error.running_import = import_id
                raise
            delay = min(delay * POLL_FACTOR, MAX_POLL_SECONDS)
        return status

    # results ---------------------------------------------------------------------------------

    def _process(
        self,
        kind: str,
        import_id: int,
        header: list[str],
        rows: list[Row],
        status: ImportStatus,
        through_api: list[Step],
    ) -> list[Row]:
        """Rejects and counts from a finished import; the rows that failed transiently."""
        failed: dict[int, str] = {}  # index into rows -> Pardot's reason
        if status.errors:
            failed = self._match_errors(import_id, header, rows)
        retry: list[Row] = []
        done: list[Row] = []
        for index, row in enumerate(rows):
            reason = failed.get(index)
            if reason is None:
                done.append(row)
            elif _transient(reason):
                retry.append(row)
            elif self._rows.through_api_after(row, reason):
                through_api.append(row.step)
            else:
                self._reject(row, reason)
        self._count(kind, done, status)
        return retry

    def _match_errors(self, import_id: int, header: list[str], rows: list[Row]) -> dict[int, str]:
        """Each error row traced back to the row sent, by its values."""
        waiting: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for index, row in enumerate(rows):
            waiting[_cells(header, row)].append(index)
        error_header, error_rows = _read_error_file(self._api.error_file(import_id))
        positions = {column: n for n, column in enumerate(error_header)}
        failed: dict[int, str] = {}
        for cells, reason in error_rows:
            values = tuple(
                cells[positions[column]] if column in positions else "" for column in header
            )
            indexes = waiting.get(values)
            if indexes:
                failed[indexes.pop(0)] = reason
                continue
            # Pardot changed the row on its way back: keep what it said, without a record.
            self._report.reject(
                Rejection(
                    stream=f"(import {import_id})",
                    record=dict(zip(error_header, cells, strict=False)),
                    reason=f"Pardot's import refused a row it did not echo as sent: {reason}",
                    code=code_for_message(reason),
                )
            )
        return failed

    def _reject(self, row: Row, reason: str) -> None:
        code = code_for_message(reason)
        named = field_for(code, reason)
        problem = RecordError(
            row.names.get(named or "", named), f"Pardot's import refused it: {reason}", code=code
        )
        reject_group(self._report, row.step.group, problem)

    def _count(self, kind: str, done: list[Row], status: ImportStatus) -> None:
        for row in done:
            if row.step.action is Action.CREATE:
                self._applied(row, Result.CREATED)
            elif row.step.action is Action.UPDATE:
                self._applied(row, Result.UPDATED)
        upserts = [row for row in done if row.step.action is Action.UPSERT_BY_EMAIL]
        if not upserts:
            return
        # Pardot counts creates for the whole import, not per row: whatever its creating rows
        # do not account for, the email matches created.
        creating_rows = sum(1 for row in done if row.step.action is Action.CREATE)
        created = min(len(upserts), max(0, status.created - creating_rows))
        # Which rows created is not said either: the tallies per stream take them in order.
        for position, row in enumerate(upserts):
            result = Result.CREATED if position < created else Result.UPDATED
            self._report.count(result, stream=row.step.group.stream)
            self._on_applied(row.step, Result.UPSERTED)

    def _applied(self, row: Row, result: Result) -> None:
        stream = row.step.group.stream
        self._report.count(result, stream=stream)
        if row.step.claims:
            # An update that claimed a prospect whose lookup field was empty, as api mode
            # reports it.
            self._report.claimed(stream=stream)
        self._on_applied(row.step, result)


def _values(row: Row, match_columns: tuple[str, ...]) -> bool:
    return any(column not in match_columns for column in row.cells)


def _transient(reason: str) -> bool:
    lowered = reason.lower()
    if any(text in lowered for text in _TRANSIENT_REASONS):
        return True
    return classify(code_for_message(reason)) is ErrorClass.TRANSIENT


def _raise_clearly(error: PardotAPIError) -> NoReturn:
    if error.code == DAILY_BATCH_LIMIT:
        raise TargetPardotError(
            "Pardot's daily limit of Import API batches for this business unit is used up "
            f"(error 164: {error.message}). Nothing of this batch was imported; the next run "
            "sends it again once the limit resets, or set write_method api to send it through "
            "the API now (v5: 1 call per record; v4: 50 records a call)."
        ) from error
    raise error


def _header(rows: list[Row], columns: ImportRows) -> list[str]:
    """Match columns first, then the creating columns, then the rest by name."""
    used = {column for row in rows for column in row.cells}
    first = [c for c in (*columns.match_columns, *columns.required_for_creates) if c in used]
    return first + sorted(used - set(first))


def _cells(header: list[str], row: Row) -> tuple[str, ...]:
    return tuple(row.cells.get(column, "") for column in header)


def _encode(rows: Iterable[tuple[str, ...]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def _imports_of(rows: list[Row], columns: ImportRows) -> Iterable[list[Row]]:
    """Rows in chunks that fit one import (MAX_BATCHES batches of MAX_BATCH_BYTES)."""
    header = _header(rows, columns)
    budget = MAX_BATCHES * (MAX_BATCH_BYTES - len(_encode([tuple(header)])))
    chunk: list[Row] = []
    size = 0
    for row in rows:
        # Each batch carries the header again; MAX_BATCHES full batches is an upper bound.
        line = len(_encode([_cells(header, row)]))
        if chunk and size + line > budget * 0.9:
            yield chunk
            chunk, size = [], 0
        chunk.append(row)
        size += line
    if chunk:
        yield chunk


def _batches(header: list[str], rows: list[Row]) -> list[bytes]:
    """The import's CSV batches, each with the header, each under MAX_BATCH_BYTES."""
    head = _encode([tuple(header)])
    batches: list[bytes] = []
    lines: list[bytes] = []
    size = len(head)
    for row in rows:
        line = _encode([_cells(header, row)])
        if lines and size + len(line) > MAX_BATCH_BYTES:
            batches.append(head + b"".join(lines))
            lines, size = [], len(head)
        lines.append(line)
        size += len(line)
    batches.append(head + b"".join(lines))
    if len(batches) > MAX_BATCHES:  # _imports_of keeps imports smaller than this
        raise TargetPardotError(f"an import would need {len(batches)} batches (bug)")
    return batches


def _read_error_file(data: bytes) -> tuple[list[str], list[tuple[list[str], str]]]:
    """(the rows' header, [(cells, reason)]) from Pardot's error file: the header as sent plus
    one column with the reason (the last one)."""
    table = [row for row in csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")) if row]
    if not table:
        return [], []
    header = table[0][:-1]
    return header, [(row[:-1], row[-1]) for row in table[1:]]
