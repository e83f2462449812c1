"""The Import API's jobs: CSV batches checked on arrival, processed later, error rows kept.

No HTTP here (``v5_imports`` serves it). Callers hold the emulator lock. An import goes

    Open --(status Ready, >= 1 batch)--> Waiting --> Processing --> Complete

and is processed as a whole, in batch and row order, once ``delay`` seconds have passed since
it was made Ready (``settle`` is called on every API request and inspection, which stands in
for Pardot's background workers; half way through the delay it reads ``Processing``).

Rules checked when a batch arrives (the whole batch is refused, nothing is kept):

- at most ``max_batch_bytes`` (10 MB, HTTP 413) and ``max_batches`` per import (10, HTTP 429);
  the business unit's ``daily_batch_limit`` (error 164, HTTP 429) when one is set;
- UTF-8 CSV with a header and at least one row, every row as long as the header (166);
- header names: writable field names of the API version (v5: camelCase, custom fields
  ``<fieldId>__c``), plus ``matchId``, ``matchEmail``, ``matchSalesforceId``, ``addToList``,
  ``removeFromList``; never ``id`` and the subscription / bounce / scoring columns (180);
- with ``createOnNoMatch``, or without any match column, the header needs ``email`` and
  ``campaignId`` (153);
- later batches repeat the first batch's header exactly (167).

Row by row when processing (a failing row goes to the error file with its reason, the others
are applied): at most one match column holds a value; ``matchId`` / ``matchEmail`` /
``matchSalesforceId`` find the prospect (by email: the active one with the latest activity);
a row that matches nothing is created when ``createOnNoMatch`` is set, else it fails; values
are parsed as text, like v3/v4 form values. An empty cell leaves the field alone unless the
column's ``nullOverwrite`` is set (then it clears it); ``overwrite: false`` writes a column only
into prospects that have no value for it (so ``campaignId`` can be given to new prospects only).
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .clock import render_iso
from .errors import MESSAGES, PardotError
from .store import Prospect, Store, is_valid_email

MAX_BATCH_BYTES = 10 * 1024 * 1024
MAX_BATCHES = 10
MATCH_COLUMNS = ("matchId", "matchEmail", "matchSalesforceId")
LIST_COLUMNS = ("addToList", "removeFromList")
# Never allowed in an import file, in either spelling.
FORBIDDEN_COLUMNS = frozenset(
    {
        "id",
        "unsubscribe",
        "subscribe",
        "opted_out",
        "optedOut",
        "pardot_hard_bounced",
        "pardotHardBounced",
        "email_bounced_reason",
        "emailBouncedReason",
        "email_bounced_date",
        "emailBouncedDate",
        "last_scored_at",
        "lastScoredAt",
    }
)
ERROR_COLUMN = "error"
# What a header needs when its rows may create prospects.
REQUIRED_FOR_CREATES = ("email", "campaignId")

OPEN, WAITING, PROCESSING, COMPLETE = "Open", "Waiting", "Processing", "Complete"


@dataclass(frozen=True)
class FieldRule:
    overwrite: bool = True
    null_overwrite: bool = False


@dataclass
class ImportJob:
    id: int
    create_on_no_match: bool
    restore_deleted: bool
    rules: dict[str, FieldRule]
    created_at: float
    # Which API made it, so that its header names apply ("v5": the only Import API emulated;
    # Pardot's v4 one takes v3/v4 names).
    flavour: str
    status: str = OPEN
    updated_at: float = 0.0
    ready_at: float | None = None
    header: list[str] | None = None
    rows: list[list[str]] = field(default_factory=list)
    batches: int = 0
    created_count: int = 0
    updated_count: int = 0
    errors: list[tuple[list[str], str]] = field(default_factory=list)
    # The unguessable part of the error file's URL (a pre-signed link, as Pardot's redirect is).
    errors_token: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    fail_after_rows: int | None = None

    @property
    def error_count(self) -> int:
        return len(self.errors)

    def snapshot(self) -> dict[str, Any]:
        """What tests and ``/_emulator/imports`` see."""
        return {
            "id": self.id,
            "api": self.flavour,
            "status": self.status,
            "createOnNoMatch": self.create_on_no_match,
            "batches": self.batches,
            "rows": len(self.rows),
            "header": list(self.header or []),
            "createdCount": self.created_count,
            "updatedCount": self.updated_count,
            "errorCount": self.error_count,
            "createdAt": render_iso(self.created_at),
        }

    def errors_csv(self) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([*(self.header or []), ERROR_COLUMN])
        for cells, reason in self.errors:
            writer.writerow([*cells, reason])
        return out.getvalue().encode("utf-8")


# Turns one header name into the stored field it writes, or None when the name is unknown or
# not writable (v5: camelCase and `<fieldId>__c`).
ColumnNames = Callable[[Store, str], str | None]


class ImportBook:
    """Every import of the business unit, and the daily batch count."""

    def __init__(self) -> None:
        self._jobs: dict[int, ImportJob] = {}
        self._next_id = 1
        self.daily_batches = 0
        self._failures: list[int] = []  # fail_next_import_after(): one-shot, in order

    # -- knobs and inspection ---------------------------------------------------------------

    def fail_next_import_after(self, rows: int) -> None:
        self._failures.append(rows)

    def reset_daily(self) -> None:
        self.daily_batches = 0

    def snapshots(self) -> list[dict[str, Any]]:
        return [job.snapshot() for job in self._jobs.values()]

    def by_token(self, token: str) -> ImportJob | None:
        return next((j for j in self._jobs.values() if j.errors_token == token), None)

    # -- requests -----------------------------------------------------------------------------

    def get(self, import_id: str) -> ImportJob:
        job = self._jobs.get(int(import_id)) if import_id.isdigit() else None
        if job is None:
            # UNCONFIRMED: v5 "not found" as for prospects.
            raise PardotError(3, "Object not found", status=404)
        return job

    def create(
        self,
        *,
        flavour: str,
        create_on_no_match: bool,
        restore_deleted: bool,
        rules: dict[str, FieldRule],
        now: float,
    ) -> ImportJob:
        job = ImportJob(
            id=self._next_id,
            create_on_no_match=create_on_no_match,
            restore_deleted=restore_deleted,
            rules=rules,
            created_at=now,
            updated_at=now,
            flavour=flavour,
        )
        self._next_id += 1
        self._jobs[job.id] = job
        return job

    def discard(self, job: ImportJob) -> None:
        self._jobs.pop(job.id, None)

    def add_batch(
        self,
        job: ImportJob,
        data: bytes,
        *,
        store: Store,
        names: ColumnNames,
        max_batch_bytes: int,
        max_batches: int,
        daily_batch_limit: int | None,
        now: float,
    ) -> None:
        """Check one CSV batch against every rule before keeping any of it."""
        if job.status != OPEN:
            raise PardotError(161, f"{MESSAGES[161]}: it is {job.status}")
        if len(data) > max_batch_bytes:
            raise PardotError(165, f"{MESSAGES[165]} ({max_batch_bytes} bytes)")
        if job.batches >= max_batches:
            raise PardotError(163, f"{MESSAGES[163]} ({max_batches})")
        if daily_batch_limit is not None and self.daily_batches >= daily_batch_limit:
            raise PardotError(164)
        header, rows = _read_csv(data)
        if job.header is None:
            _check_header(header, job, store, names)
        elif header != job.header:
            raise PardotError(167)
        job.header = header
        job.rows.extend(rows)
        job.batches += 1
        job.updated_at = now
        self.daily_batches += 1

    def start(self, job: ImportJob, now: float) -> None:
        if job.status != OPEN:
            raise PardotError(161, f"{MESSAGES[161]}: it is {job.status}")
        if not job.batches:
            raise PardotError(161, "Import has no batches to process")
        job.status = WAITING
        job.ready_at = now
        job.updated_at = now

    # -- background processing ----------------------------------------------------------------

    def settle(self, store: Store, names: dict[str, ColumnNames], now: float, delay: float) -> None:
        """Move every queued import along, as Pardot's workers would have by `now`."""
        for job in self._jobs.values():
            if job.status not in (WAITING, PROCESSING) or job.ready_at is None:
                continue
            waited = now - job.ready_at
            if waited >= delay:
                if self._failures:
                    job.fail_after_rows = self._failures.pop(0)
                _process(job, store, names[job.flavour])
                job.status = COMPLETE
                job.updated_at = now
            elif waited >= delay / 2 and job.status == WAITING:
                job.status = PROCESSING
                job.updated_at = now


def _read_csv(data: bytes) -> tuple[list[str], list[list[str]]]:
    try:
        text = data.decode("utf-8-sig")
        table = list(csv.reader(io.StringIO(text, newline="")))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise PardotError(166, f"{MESSAGES[166]}: {exc}") from exc
    table = [row for row in table if row]  # a trailing newline is not a row
    if len(table) < 2:
        raise PardotError(166, f"{MESSAGES[166]}: it needs a header and at least one row")
    header = [name.strip() for name in table[0]]
    for number, row in enumerate(table[1:], start=2):
        if len(row) != len(header):
            raise PardotError(
                166,
                f"{MESSAGES[166]}: line {number} has {len(row)} values, the header {len(header)}",
            )
    return header, table[1:]


def _check_header(header: list[str], job: ImportJob, store: Store, names: ColumnNames) -> None:
    if len(set(header)) != len(header):
        raise PardotError(166, f"{MESSAGES[166]}: a column name is repeated")
    for name in header:
        if name in FORBIDDEN_COLUMNS:
            raise PardotError(180, f"{MESSAGES[180]}: {name} (not allowed in an import)")
        if name in MATCH_COLUMNS or name in LIST_COLUMNS:
            continue
        if names(store, name) is None:
            raise PardotError(180, f"{MESSAGES[180]}: {name}")
    if job.create_on_no_match or not any(name in MATCH_COLUMNS for name in header):
        missing = [name for name in REQUIRED_FOR_CREATES if name not in header]
        if missing:
            raise PardotError(
                153,
                f"{MESSAGES[153]}: {', '.join(missing)} (an import that may create prospects "
                "needs these columns)",
            )


def _process(job: ImportJob, store: Store, names: ColumnNames) -> None:
    header = job.header or []
    for number, cells in enumerate(job.rows):
        if job.fail_after_rows is not None and number >= job.fail_after_rows:
            # The import stopped part way (the fault knob): the rest is not applied.
            job.errors.append((cells, MESSAGES[183]))
            continue
        try:
            created = _apply_row(job, store, names, dict(zip(header, cells, strict=True)))
        except PardotError as error:
            job.errors.append((cells, error.message))
            continue
        if created:
            job.created_count += 1
        else:
            job.updated_count += 1


def _apply_row(job: ImportJob, store: Store, names: ColumnNames, row: dict[str, str]) -> bool:
    """Apply one row; True when it created a prospect."""
    matches = [(name, row[name].strip()) for name in MATCH_COLUMNS if row.get(name, "").strip()]
    if len(matches) > 1:
        raise PardotError(
            180, "Only one of matchId, matchEmail and matchSalesforceId may have a value in a row"
        )
    prospect = _match(store, matches[0], job.restore_deleted) if matches else None
    if prospect is None and matches and not job.create_on_no_match:
        name, value = matches[0]
        raise _no_match(name, value)
    changes: dict[str, Any] = {}
    for column, raw in row.items():
        if column in MATCH_COLUMNS or column in LIST_COLUMNS:
            continue  # lists are not emulated: their columns are accepted and ignored
        stored = names(store, column)
        assert stored is not None  # the header was checked
        rule = job.rules.get(column, FieldRule())
        if raw == "":
            if rule.null_overwrite and prospect is not None:
                changes[stored] = None
            continue
        if not rule.overwrite and prospect is not None and prospect.values.get(stored) is not None:
            continue
        changes[stored] = store.normalize(stored, raw, strict=False, label=column)
    if prospect is None:
        email = changes.get("email")
        if not email or not is_valid_email(email):
            raise PardotError(4, f"{MESSAGES[4]}: a new prospect needs a valid email")
        store.create(changes)
        return True
    store.update(prospect, changes, unarchive=job.restore_deleted)
    return False


def _match(store: Store, match: tuple[str, str], restore_deleted: bool) -> Prospect | None:
    name, value = match
    if name == "matchId":
        prospect = store.get(int(value)) if value.isdigit() else None
        if prospect is not None and prospect.is_archived and not restore_deleted:
            return None
        return prospect
    if name == "matchEmail":
        found = store.latest(store.by_email(value))
        if found is None and restore_deleted:
            found = store.latest(store.by_email(value, archived=True))
        return found
    prospect = store.by_fid(value)
    if prospect is not None and prospect.is_archived and not restore_deleted:
        return None
    return prospect


def _no_match(name: str, value: str) -> PardotError:
    # Pardot's own wording for each kind of identifier, so a reader (or a client mapping
    # messages to codes) recognises them.
    if name == "matchId":
        return PardotError(3, f"{MESSAGES[3]}: no prospect has id {value}")
    if name == "matchSalesforceId":
        return PardotError(77, f"{MESSAGES[77]}: no prospect has Salesforce id {value}")
    return PardotError(4, f"{MESSAGES[4]}: no prospect has email {value}")
