"""What happened to each record: the run's tallies, the reject file and the closing summary."""

from __future__ import annotations

import datetime
import enum
import json
import logging
import os
import threading
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from target_pardot.errors import TargetPardotError

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
    SKIPPED = "skipped (Segment integrations switch Pardot off)"
    REJECTED = "rejected"


# Always shown in the summary; the others only when they happened.
_ALWAYS_SHOWN = (Result.CREATED, Result.UPDATED, Result.REJECTED)


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
    def for_settings(cls, settings: Settings) -> RejectFile:
        if settings.reject_file:
            return cls(settings.reject_file)
        return cls.per_run(settings.reject_dir)

    def write(self, rejection: Rejection) -> None:
        line = json.dumps(rejection.as_json(), default=str, ensure_ascii=False)
        with self._lock:
            if self._handle is None:
                self._handle = self._open()
            self._handle.write(line + "\n")
            self._handle.flush()

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
        return os.fdopen(descriptor, "w", encoding="utf-8")

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
    """Thread-safe tallies for one run of the target."""

    def __init__(self, rejects: RejectFile, max_reject_ratio: float) -> None:
        self.rejects = rejects
        self.max_reject_ratio = max_reject_ratio
        self._lock = threading.Lock()
        self.results: Counter[Result] = Counter()
        self.reject_codes: Counter[str] = Counter()
        self._unlogged_rejects: Counter[tuple[str, str, str]] = Counter()
        self.records_seen = 0
        self.merged_duplicates = 0
        self.unknown_traits: Counter[str] = Counter()
        self.ignored_columns: Counter[str] = Counter()
        self.notices: Counter[str] = Counter()
        # Calls spent finding out what writes whose answer was lost had applied.
        self.recovery_call_count = 0

    def saw(self, count: int) -> None:
        with self._lock:
            self.records_seen += count

    def count(self, result: Result, n: int = 1) -> None:
        with self._lock:
            self.results[result] += n

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

    def merged(self, n: int) -> None:
        with self._lock:
            self.merged_duplicates += n

    def reject(self, rejection: Rejection) -> None:
        self.rejects.write(rejection)
        code = str(rejection.code) if rejection.code is not None else NO_CODE
        with self._lock:
            self.results[Result.REJECTED] += 1
            self.reject_codes[code] += 1
            self._unlogged_rejects[(rejection.stream, rejection.field or "-", code)] += 1
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

    def notice(self, message: str) -> None:
        """A condition worth one line at the end of the run (not per record)."""
        with self._lock:
            self.notices[message] += 1

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
        with self._lock:
            results = dict(self.results)
            seen = self.records_seen
            merged = self.merged_duplicates
            recovery = self.recovery_call_count
        # Where v3 could not say which writes created, "0 created, 0 updated" beside them
        # would read as a contradiction: then only the counts that happened are shown.
        always = () if results.get(Result.UPSERTED) else _ALWAYS_SHOWN
        parts = [
            f"{results.get(result, 0)} {result.value}"
            + (" (Pardot's v3 batch answers do not say which)" if result is Result.UPSERTED else "")
            for result in Result
            if result in always or results.get(result)
        ]
        if not parts:
            parts = ["nothing written"]
        api_calls = {name: n for name, n in sorted(call_counts.items()) if name != "oauth.token"}
        calls_text = ", ".join(f"{name} {n}" for name, n in api_calls.items()) or "none"
        text = (
            f"target-pardot summary: {seen} records: {', '.join(parts)}"
            f"{f', {merged} merged as duplicates' if merged else ''}; "
            f"{sum(api_calls.values())} API calls ({calls_text}"
            f"{f', of which {recovery} to check what lost answers had applied' if recovery else ''}"
            "); "
            f"{call_counts.get('oauth.token', 0)} token calls"
        )
        if results.get(Result.REJECTED):
            codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.reject_codes.items()))
            text += f"; rejects by code ({codes}) in {self.rejects.path}"
        return text

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
