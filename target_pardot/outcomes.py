"""What happened to each record: the run's tallies, the reject file and the closing summary."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from target_pardot.errors import TargetPardotError
from target_pardot.identify import json_safe
from target_pardot.settings import in_project

if TYPE_CHECKING:
    from target_pardot.settings import Settings

logger = logging.getLogger(__name__)

# The reject ratio is judged only once this many records were seen, so that two bad records at
# the start of a run do not stop it.
REJECT_RATIO_MIN_RECORDS = 20
NO_CODE = "none"  # rejected before anything was sent to Pardot


class Result(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    # Pardot's v3 batchUpsert answer does not say which of its items it created.
    UPSERTED = "created or updated"
    UNCHANGED = "unchanged"  # nothing to write for a known prospect: no call made
    SKIPPED = "skipped"  # not sent on purpose; the reason is counted beside it
    REJECTED = "rejected"


# Always shown in the summary; the others only when they happened.
_ALWAYS_SHOWN = (Result.CREATED, Result.UPDATED, Result.REJECTED)

# Why records are skipped (the summary counts each reason).
SKIP_SEGMENT_SWITCH = "Segment's integrations switch Pardot off"

# Records received that a stopped run gave no outcome: STATE did not pass them, so the tap
# sends them again.
UNSETTLED = "not applied (the next run sends them)"
UNSETTLED_DRY = "not looked at (the dry run stopped before them)"


def counted(n: int, noun: str) -> str:
    """`n` and the noun, plural unless n is 1: "1 token call", "2 token calls"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


@dataclass
class StreamTally:
    """What happened to one stream's records in this run."""

    received: int = 0
    results: Counter[Result] = dataclasses.field(default_factory=Counter)
    skip_reasons: Counter[str] = dataclasses.field(default_factory=Counter)
    # (field or "-", Pardot code or "none"): the reject reasons themselves quote the values,
    # emails among them, so the summary groups by what they are about.
    reject_reasons: Counter[tuple[str, str]] = dataclasses.field(default_factory=Counter)
    merged: int = 0
    # Updates that claimed a prospect whose lookup field was empty (on_empty_lookup).
    claimed: int = 0
    # Dry run: the write steps planned, by action ("create", "update", ...).
    planned: Counter[str] = dataclasses.field(default_factory=Counter)
    # Records written after the rest of their batch, behind an earlier record that named their
    # prospect through another identity (matching.first_layer).
    ordered: int = 0

    def copy(self) -> StreamTally:
        return StreamTally(
            self.received,
            Counter(self.results),
            Counter(self.skip_reasons),
            Counter(self.reject_reasons),
            self.merged,
            self.claimed,
            Counter(self.planned),
            self.ordered,
        )


@dataclass(frozen=True)
class Rejection:
    stream: str
    record: dict[str, Any]
    reason: str
    field: str | None = None
    code: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "rejected_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "stream": self.stream,
            "field": self.field,
            "code": self.code,
            "reason": self.reason,
            "record": self.record,
        }


class RejectFile:
    """Writes one run's rejections as JSON Lines to a file only its owner can read.

    Rejected records hold personal data, so the file is created 0600 and opened lazily: a run
    that rejects nothing leaves no file behind.

    A scheduled job resends a bad row on every run until someone fixes it, so appending to one
    file would list that row once per run. Instead each run writes a file of its own:

    - `per_run(directory)` (the default, setting reject_dir): a new file
      `rejects-<run start, UTC>.jsonl` per run, so every run's rejects are kept apart and old
      ones can be deleted by age;
    - `RejectFile(path)` (setting reject_file): one fixed file, replaced by each run that
      rejects something, so it holds exactly the latest such run's rejects.
    """

    def __init__(self, path: str, *, per_run: bool = False) -> None:
        # Absolute, so that the summary names a file the operator can find whatever the
        # working directory Meltano or cron gave the target.
        self.path = os.path.abspath(path)
        self._per_run = per_run
        self._lock = threading.Lock()
        self._handle: Any = None

    @classmethod
    def per_run(cls, directory: str, started: datetime.datetime | None = None) -> RejectFile:
        """A file named after the run's start time (UTC, to the second) in `directory`."""
        started = started or datetime.datetime.now(datetime.timezone.utc)
        stamp = started.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        return cls(os.path.join(directory, f"rejects-{stamp}.jsonl"), per_run=True)

    @classmethod
    def for_settings(
        cls, settings: Settings, environ: Mapping[str, str] | None = None
    ) -> RejectFile:
        """The run's reject file, relative paths taken from the Meltano project if any."""
        if settings.reject_file:
            return cls(in_project(settings.reject_file, environ))
        return cls.per_run(in_project(settings.reject_dir, environ))

    def write(self, rejection: Rejection) -> None:
        entry = rejection.as_json()
        try:
            # Strict JSON, which every reader takes: no NaN or Infinity.
            line = json.dumps(entry, default=str, ensure_ascii=False, allow_nan=False)
        except ValueError:
            line = json.dumps(json_safe(entry), default=str, ensure_ascii=False)
        with self._lock:
            try:
                if self._handle is None:
                    self._handle = self._open()
                self._handle.write(line + "\n")
                self._handle.flush()
            except OSError as error:
                # A stop naming the file and the setting, not a traceback: the exception being
                # handled may be a RecordError quoting the record's email.
                raise TargetPardotError(
                    f"the reject file {self.path} cannot be written ({error.strerror or error}); "
                    "point reject_dir (or reject_file) at a writable place with room. What it "
                    "was to record is not passed by STATE: the next run sends it again."
                ) from None

    def _open(self) -> Any:
        directory = os.path.dirname(self.path)
        if directory:
            # Only a directory created here gets 0700; an existing one is the operator's choice.
            os.makedirs(directory, mode=0o700, exist_ok=True)
        if not self._per_run:
            descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        else:
            descriptor = self._create_new()
        # os.open's mode only applies to a new file (and the umask may narrow it): make sure
        # a replaced file is owner-only too.
        os.chmod(self.path, 0o600)
        # A lone surrogate (a byte of the input that was not UTF-8, see reader.py) is written
        # as its \udcxx escape: valid JSON in a file that stays UTF-8.
        return os.fdopen(descriptor, "w", encoding="utf-8", errors="backslashreplace")

    def _create_new(self) -> int:
        # Two runs that start in the same second into the same directory (two business units
        # scheduled together) must not share a file: the second one gets a numbered name.
        stem, suffix = os.path.splitext(self.path)
        candidate, number = self.path, 1
        while True:
            try:
                descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                number += 1
                candidate = f"{stem}-{number}{suffix}"
                continue
            self.path = candidate
            return descriptor

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None


class RunReport:
    """Thread-safe tallies for one run of the target, per stream and for the whole run."""

    def __init__(
        self, rejects: RejectFile, max_reject_ratio: float, *, dry_run: bool = False
    ) -> None:
        self.rejects = rejects
        self.max_reject_ratio = max_reject_ratio
        self.dry_run = dry_run
        self._lock = threading.Lock()
        self.results: Counter[Result] = Counter()
        self.reject_codes: Counter[str] = Counter()
        self._unlogged_rejects: Counter[tuple[str, str, str]] = Counter()
        self._streams: dict[str, StreamTally] = {}
        self.records_seen = 0
        self.merged_duplicates = 0
        self.unknown_traits: Counter[str] = Counter()
        self.ignored_columns: Counter[str] = Counter()
        self.notices: Counter[str] = Counter()
        # Calls spent finding out what writes whose answer was lost had applied.
        self.recovery_call_count = 0

    def _stream(self, name: str) -> StreamTally:
        # Called with the lock held.
        tally = self._streams.get(name)
        if tally is None:
            tally = self._streams[name] = StreamTally()
        return tally

    def streams(self) -> dict[str, StreamTally]:
        """A copy of every stream's tally, in the order the streams first appeared."""
        with self._lock:
            return {name: tally.copy() for name, tally in self._streams.items()}

    def saw(self, count: int, *, stream: str) -> None:
        with self._lock:
            self.records_seen += count
            self._stream(stream).received += count

    def count(self, result: Result, n: int = 1, *, stream: str) -> None:
        with self._lock:
            self.results[result] += n
            self._stream(stream).results[result] += n

    def skip(self, reason: str, n: int = 1, *, stream: str) -> None:
        """Records not sent on purpose (`reason` holds no record values: it is shown as is)."""
        with self._lock:
            self.results[Result.SKIPPED] += n
            tally = self._stream(stream)
            tally.results[Result.SKIPPED] += n
            tally.skip_reasons[reason] += n

    def claimed(self, n: int = 1, *, stream: str) -> None:
        with self._lock:
            self._stream(stream).claimed += n

    def ordered(self, n: int, *, stream: str) -> None:
        with self._lock:
            self._stream(stream).ordered += n

    def planned(self, actions: Counter[str], *, stream: str) -> None:
        """Dry run: the writes a batch would have made."""
        with self._lock:
            self._stream(stream).planned.update(actions)

    def records_settled(self) -> int:
        """Records whose outcome is known: written, unchanged, skipped, rejected, or merged
        into another record's write (in a dry run, planned). Records handed over and still in
        flight (or in an import Pardot has not finished) are not."""
        with self._lock:
            return self._settled()

    def _settled(self) -> int:
        # Called with the lock held. A dry run counts its planned writes instead of results.
        planned = sum(sum(tally.planned.values()) for tally in self._streams.values())
        return sum(self.results.values()) + self.merged_duplicates + planned

    def applied(self) -> int:
        """Prospects written so far (created, updated or upserted)."""
        with self._lock:
            return sum(
                n
                for result, n in self.results.items()
                if result not in (Result.REJECTED, Result.SKIPPED)
            )

    def recovery_calls(self, n: int) -> None:
        with self._lock:
            self.recovery_call_count += n

    def merged(self, n: int, *, stream: str) -> None:
        with self._lock:
            self.merged_duplicates += n
            self._stream(stream).merged += n

    def reject(self, rejection: Rejection) -> None:
        self.rejects.write(rejection)
        code = str(rejection.code) if rejection.code is not None else NO_CODE
        with self._lock:
            self.results[Result.REJECTED] += 1
            self.reject_codes[code] += 1
            self._unlogged_rejects[(rejection.stream, rejection.field or "-", code)] += 1
            tally = self._stream(rejection.stream)
            tally.results[Result.REJECTED] += 1
            tally.reject_reasons[(rejection.field or "-", code)] += 1
        # Reasons quote the offending values (emails among them): full detail only at debug
        # level and in the owner-only reject file; log_rejects() groups them for warnings.
        logger.debug(
            "Rejected a record of stream '%s' (field %s): %s",
            rejection.stream,
            rejection.field or "-",
            rejection.reason,
        )

    def log_rejects(self) -> None:
        """One warning per batch for its rejects, grouped by stream, field and Pardot code."""
        with self._lock:
            groups = dict(self._unlogged_rejects)
            self._unlogged_rejects.clear()
        for (stream, field, code), n in sorted(groups.items()):
            # Records rejected before any call have no Pardot code: "code none" said nothing.
            pardot_code = "" if code == NO_CODE else f" (Pardot code {code})"
            logger.warning(
                "Rejected %d record%s of stream '%s' on field %s%s; reasons in %s",
                n,
                "" if n == 1 else "s",
                stream,
                field,
                pardot_code,
                self.rejects.path,
            )

    def note_unknown_traits(self, names: list[str]) -> None:
        with self._lock:
            self.unknown_traits.update(names)

    def note_ignored(self, names: list[str]) -> None:
        with self._lock:
            self.ignored_columns.update(names)

    def notice(self, message: str, n: int = 1) -> None:
        """A condition worth one line at the end of the run (not per record)."""
        with self._lock:
            self.notices[message] += n

    def check_reject_ratio(self) -> None:
        with self._lock:
            seen, rejected = self.records_seen, self.results[Result.REJECTED]
        if self.max_reject_ratio >= 1 or seen < REJECT_RATIO_MIN_RECORDS:
            return
        if rejected / seen > self.max_reject_ratio:
            raise TargetPardotError(
                f"{rejected} of the {seen} records seen so far were rejected, more than "
                f"max_reject_ratio {self.max_reject_ratio:g} allows: stopping so that a broken "
                f"mapping does not reject a whole table. Reasons are in {self.rejects.path}."
            )

    def summary(self, call_counts: dict[str, int]) -> str:
        """The run in one line: what happened to the records, and the calls it cost."""
        with self._lock:
            results = dict(self.results)
            seen = self.records_seen
            merged = self.merged_duplicates
            # Received but given no outcome: a run that stopped before writing them.
            unsettled = seen - self._settled()
            recovery = self.recovery_call_count
            skip_reasons: Counter[str] = Counter()
            planned: Counter[str] = Counter()
            for tally in self._streams.values():
                skip_reasons.update(tally.skip_reasons)
                planned.update(tally.planned)
        parts = planned_phrases(planned) if self.dry_run else []
        if self.dry_run:
            # Nothing was written: the "would ..." counts stand in for created and updated.
            always: tuple[Result, ...] = (Result.REJECTED,)
        elif results.get(Result.UPSERTED):
            # Where v3 could not say which writes created, "0 created, 0 updated" beside them
            # would read as a contradiction: then only the counts that happened are shown.
            always = ()
        else:
            always = _ALWAYS_SHOWN
        for result in Result:
            n = results.get(result, 0)
            if result not in always and not n:
                continue
            text = f"{n} {result.value}"
            if result is Result.UPSERTED:
                text += " (Pardot's v3 batch answers do not say which)"
            elif result is Result.SKIPPED:
                text += f" ({reasons_text(skip_reasons)})"
            parts.append(text)
        if not parts:
            parts = ["nothing written"]
        if merged:
            parts.append(f"{merged} merged as duplicates")
        if unsettled > 0:
            parts.append(f"{unsettled} {UNSETTLED_DRY if self.dry_run else UNSETTLED}")
        api_calls = {name: n for name, n in sorted(call_counts.items()) if name != "oauth.token"}
        calls_text = ", ".join(f"{name} {n}" for name, n in api_calls.items()) or "none"
        mode = "dry run, nothing written: " if self.dry_run else ""
        text = (
            f"target-pardot summary: {mode}{seen} records: {', '.join(parts)}; "
            f"{sum(api_calls.values())} API calls ({calls_text}"
            f"{f', of which {recovery} to check what lost answers had applied' if recovery else ''}"
            "); "
            f"{counted(call_counts.get('oauth.token', 0), 'token call')}"
        )
        if results.get(Result.REJECTED):
            text += f"; {self._rejects_text()}; reasons in {self.rejects.path}"
        return text

    def _rejects_text(self) -> str:
        """The rejects by Pardot code, and those refused before any call (which have none)."""
        with self._lock:
            codes = Counter(self.reject_codes)
        before_any_call = codes.pop(NO_CODE, 0)
        parts = []
        if codes:
            by_code = ", ".join(f"{code}: {n}" for code, n in sorted(codes.items()))
            parts.append(f"rejects by Pardot code ({by_code})")
        if before_any_call:
            parts.append(f"{before_any_call} refused before any call")
        return ", ".join(parts)

    def closing_lines(self) -> list[str]:
        """Once-per-run warnings: the things users must act on but that are not failures."""
        lines = []
        if self.unknown_traits:
            names = ", ".join(sorted(self.unknown_traits))
            lines.append(
                f"Traits not sent because no Pardot prospect field has their name: {names}. "
                "Create custom fields for the ones you need (Pardot: Admin > Configure Fields > "
                "Prospect Fields) or rename them with stream maps."
            )
        if self.ignored_columns:
            names = ", ".join(sorted(self.ignored_columns))
            lines.append(f"System columns not treated as prospect fields: {names}.")
        lines.extend(
            f"{message} ({n} time{'s' if n != 1 else ''})"
            for message, n in sorted(self.notices.items())
        )
        return lines


# What a dry run says for each kind of planned write (plan.Action's values).
_PLANNED = {
    "create": "would create {n}",
    "update": "would update {n}",
    "upsert by email": "would upsert {n} by email (Pardot creates or updates)",
    "update if it exists": "would update {n} if they exist (skipped if not)",
    "create if new": "would create {n} if new (skipped if they exist)",
}


def planned_phrases(planned: Counter[str]) -> list[str]:
    """A dry run's planned writes, always naming creates and updates."""
    phrases = []
    for action, template in _PLANNED.items():
        n = planned.get(action, 0)
        if n or action in ("create", "update"):
            phrases.append(template.format(n=n))
    phrases.extend(f"would {action} {n}" for action, n in planned.items() if action not in _PLANNED)
    return phrases


def reasons_text(reasons: Counter[str]) -> str:
    return ", ".join(f"{reason}: {n}" for reason, n in sorted(reasons.items()))
