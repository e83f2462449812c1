"""The Import API's jobs: CSV batches checked on arrival, processed later, error rows kept.

No HTTP here (``v5_imports`` and ``v4_imports`` serve it), and nothing that differs between the
two APIs: each says what its columns mean through a ``Flavour`` (its match columns, how a header
name maps to a stored field, how a row finds its prospect). Callers hold the emulator lock. An
import goes

    Open --(status Ready, >= 1 batch)--> Waiting --> Processing --> Complete

and is processed as a whole, in batch and row order, once ``delay`` seconds have passed since
it was made Ready (``settle`` is called on every API request and inspection, which stands in
for Pardot's background workers; half way through the delay it reads ``Processing``). An import
may be given a lifetime while Open (24 hours, both APIs); once it is over, it is expired and
takes no batch and no start (error 161).

Rules checked when a batch arrives (the whole batch is refused, nothing is kept):

- at most ``max_batch_bytes`` (10 MB, HTTP 413) and ``max_batches`` per import (10, HTTP 429);
  the business unit's ``daily_batch_limit`` (error 164, HTTP 429) when one is set;
- UTF-8 CSV with a header and at least one row, every row as long as the header (166);
- header names: the flavour's writable field names and match columns (and columns it accepts
  and ignores); never ``id`` and the subscription / bounce / scoring columns (180);
- when the flavour's rows may create and the import may create (``createOnNoMatch``, or no
  match column), the header needs the flavour's columns for creates (153);
- when the import declared its columns (v4 ``columns``), they are the header's, each once (168);
- later batches repeat the first batch's header exactly (167).

Row by row when processing (a failing row goes to the error file with its reason, the others
are applied): the flavour finds the row's prospect (or raises the row's error, or says the row
creates); values are parsed as text, like v3/v4 form values. An empty cell leaves the field
alone unless the column's ``nullOverwrite`` is set (then it clears it; the flavour says what a
column without a rule does); ``overwrite: false`` writes a column only into prospects that have
no value for it (so a campaign can be given to new prospects only).
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

OPEN, WAITING, PROCESSING, COMPLETE = "Open", "Waiting", "Processing", "Complete"


@dataclass(frozen=True)
class FieldRule:
    overwrite: bool = True
    null_overwrite: bool = False


# Turns one header name into the stored field it writes, or None when the name is unknown or
# not writable (v5: camelCase and `<fieldId>__c`; v4: snake_case and the bare fieldId).
ColumnNames = Callable[[Store, str], str | None]
# The prospect one row (header name -> cell) updates, or None when the row creates one; raises
# the row's PardotError when it can do neither.
RowMatcher = Callable[["ImportJob", Store, dict[str, str]], Prospect | None]


@dataclass(frozen=True)
class Flavour:
    """What one API's Import API means by its columns and rows."""

    name: str  # "v5", "v4": shown in snapshots
    match_columns: tuple[str, ...]  # columns that say which prospect a row is
    names: ColumnNames
    find: RowMatcher
    # Columns accepted and ignored (v5's addToList / removeFromList: lists are not emulated).
    ignored_columns: tuple[str, ...] = ()
    # What a header needs when its rows may create prospects; empty: rows never create.
    required_for_creates: tuple[str, ...] = ()
    # nullOverwrite of a column the import gave no rule for.
    null_overwrite_default: bool = False
    # Whether a cell of only spaces counts as empty (v4 documents it; v5 does not say).
    whitespace_is_blank: bool = False

    def is_special(self, column: str) -> bool:
        """A column that is not a field: a match column or an ignored one."""
        return column in self.match_columns or column in self.ignored_columns


@dataclass
class ImportJob:
    id: int
    flavour: Flavour
    create_on_no_match: bool
    restore_deleted: bool
    rules: dict[str, FieldRule]
    created_at: float
    status: str = OPEN
    updated_at: float = 0.0
    ready_at: float | None = None
    # When an Open import expires (24 hours after it was made); None: never.
    expires_at: float | None = None
    # The columns the import declared it would have (v4 `columns`), checked against the header.
    declared_columns: list[str] | None = None
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

    def is_expired(self, now: float) -> bool:
        return self.status == OPEN and self.expires_at is not None and now >= self.expires_at

    def rule(self, column: str) -> FieldRule:
        return self.rules.get(column) or FieldRule(
            null_overwrite=self.flavour.null_overwrite_default
        )

    def snapshot(self) -> dict[str, Any]:
        """What tests and ``/_emulator/imports`` see."""
        return {
            "id": self.id,
            "api": self.flavour.name,
            "status": self.status,
            "createOnNoMatch": self.create_on_no_match,
            "restoreDeleted": self.restore_deleted,
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


class ImportBook:
    """Every import of the business unit (through either API), and the daily batch count."""

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
            # UNCONFIRMED: "not found" as v5 answers it for prospects.
            raise PardotError(3, "Object not found", status=404)
        return job

    def create(
        self,
        *,
        flavour: Flavour,
        create_on_no_match: bool,
        restore_deleted: bool,
        rules: dict[str, FieldRule],
        now: float,
        open_lifetime: float | None = None,
        declared_columns: list[str] | None = None,
    ) -> ImportJob:
        job = ImportJob(
            id=self._next_id,
            flavour=flavour,
            create_on_no_match=create_on_no_match,
            restore_deleted=restore_deleted,
            rules=rules,
            created_at=now,
            updated_at=now,
            expires_at=None if open_lifetime is None else now + open_lifetime,
            declared_columns=declared_columns,
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
        max_batch_bytes: int,
        max_batches: int,
        daily_batch_limit: int | None,
        now: float,
    ) -> None:
        """Check one CSV batch against every rule before keeping any of it."""
        _require_open(job, now)
        if len(data) > max_batch_bytes:
            raise PardotError(165, f"{MESSAGES[165]} ({max_batch_bytes} bytes)")
        if job.batches >= max_batches:
            raise PardotError(163, f"{MESSAGES[163]} ({max_batches})")
        if daily_batch_limit is not None and self.daily_batches >= daily_batch_limit:
            raise PardotError(164)
        header, rows = _read_csv(data)
        if job.header is None:
            _check_header(header, job, store)
        elif header != job.header:
            raise PardotError(167)
        job.header = header
        job.rows.extend(rows)
        job.batches += 1
        job.updated_at = now
        self.daily_batches += 1

    def start(self, job: ImportJob, now: float) -> None:
        _require_open(job, now)
        if not job.batches:
            raise PardotError(161, "Import has no batches to process")
        job.status = WAITING
        job.ready_at = now
        job.updated_at = now

    # -- background processing ----------------------------------------------------------------

    def settle(self, store: Store, now: float, delay: float) -> None:
        """Move every queued import along, as Pardot's workers would have by `now`."""
        for job in self._jobs.values():
            if job.status not in (WAITING, PROCESSING) or job.ready_at is None:
                continue
            waited = now - job.ready_at
            if waited >= delay:
                if self._failures:
                    job.fail_after_rows = self._failures.pop(0)
                _process(job, store)
                job.status = COMPLETE
                job.updated_at = now
            elif waited >= delay / 2 and job.status == WAITING:
                job.status = PROCESSING
                job.updated_at = now


def _require_open(job: ImportJob, now: float) -> None:
    if job.is_expired(now):
        raise PardotError(161, f"{MESSAGES[161]}: it expired")
    if job.status != OPEN:
        raise PardotError(161, f"{MESSAGES[161]}: it is {job.status}")


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


def _check_header(header: list[str], job: ImportJob, store: Store) -> None:
    flavour = job.flavour
    if len(set(header)) != len(header):
        raise PardotError(166, f"{MESSAGES[166]}: a column name is repeated")
    for name in header:
        if name in FORBIDDEN_COLUMNS:
            raise PardotError(180, f"{MESSAGES[180]}: {name} (not allowed in an import)")
        if flavour.is_special(name):
            continue
        if flavour.names(store, name) is None:
            raise PardotError(180, f"{MESSAGES[180]}: {name}")
    may_create = job.create_on_no_match or not any(n in flavour.match_columns for n in header)
    if flavour.required_for_creates and may_create:
        missing = [name for name in flavour.required_for_creates if name not in header]
        if missing:
            raise PardotError(
                153,
                f"{MESSAGES[153]}: {', '.join(missing)} (an import that may create prospects "
                "needs these columns)",
            )
    declared = job.declared_columns
    if declared is not None and (len(declared) != len(header) or set(declared) != set(header)):
        raise PardotError(
            168,
            f"{MESSAGES[168]}: the import declared {len(declared)} columns "
            f"({', '.join(declared)}), the CSV has {len(header)} ({', '.join(header)})",
        )


def _process(job: ImportJob, store: Store) -> None:
    header = job.header or []
    for number, cells in enumerate(job.rows):
        if job.fail_after_rows is not None and number >= job.fail_after_rows:
            # The import stopped part way (the fault knob): the rest is not applied.
            job.errors.append((cells, MESSAGES[183]))
            continue
        try:
            created = _apply_row(job, store, dict(zip(header, cells, strict=True)))
        except PardotError as error:
            job.errors.append((cells, error.message))
            continue
        if created:
            job.created_count += 1
        else:
            job.updated_count += 1


def _apply_row(job: ImportJob, store: Store, row: dict[str, str]) -> bool:
    """Apply one row; True when it created a prospect."""
    flavour = job.flavour
    prospect = flavour.find(job, store, row)
    changes: dict[str, Any] = {}
    for column, raw in row.items():
        if flavour.is_special(column):
            continue
        stored = flavour.names(store, column)
        assert stored is not None  # the header was checked
        rule = job.rule(column)
        if raw == "" or (flavour.whitespace_is_blank and raw.isspace()):
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


def check_spec(
    data: dict[str, Any], allowed: frozenset[str], *, status_key: str, has_batch: bool
) -> bool:
    """Check an import's create body (both versions: Upsert of Prospect only, a status of
    Ready or none); whether it asks to be queued at once."""
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise PardotError(154, f"{MESSAGES[154]}: {unknown[0]}")
    if data.get("operation") != "Upsert":
        raise PardotError(154, f"{MESSAGES[154]}: operation (only Upsert is supported)")
    if data.get("object") != "Prospect":
        raise PardotError(154, f"{MESSAGES[154]}: object (only Prospect is supported)")
    status = data.get(status_key)
    if status not in (None, "Ready"):
        raise PardotError(154, f"{MESSAGES[154]}: {status_key}")
    if status == "Ready" and not has_batch:
        raise PardotError(161, "Import has no batches to process")
    return status == "Ready"


def not_found(kind: str, value: str) -> PardotError:
    """A match value no prospect has, in Pardot's own wording for each kind of identifier, so a
    reader (or a client mapping messages to codes) recognises it."""
    if kind == "id":
        return PardotError(3, f"{MESSAGES[3]}: no prospect has id {value}")
    if kind == "fid":
        return PardotError(77, f"{MESSAGES[77]}: no prospect has Salesforce id {value}")
    return PardotError(4, f"{MESSAGES[4]}: no prospect has email {value}")
