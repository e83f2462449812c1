"""The import ledger: a small local file naming the imports whose results were not processed yet.

An import's id is written here BEFORE the import is started and removed only once its results
(counts, error rows) have been processed. So when a run dies or loses an answer between the two,
the next run finds the import again and waits for it instead of sending its records blind:

- STATE never passed those records (the SDK writes STATE only after a batch's import is
  processed), so the tap sends them again;
- rows matched by id, Salesforce id or email are idempotent and are simply applied again;
- rows that create a prospect are not: for each, the ledger keeps a digest of the row as sent,
  and the next run skips a create whose digest the finished import applied (see importing.py).

One JSON file per business unit, entries scoped by Pardot host and API, written atomically and
owner-only (the digests are of personal data). A lock file keeps two runs of the same business
unit and file from taking each other's imports for their own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from target_pardot.errors import SettingsError
from target_pardot.settings import Settings

try:  # POSIX; elsewhere two runs sharing a file are not detected
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

FORMAT = 1


def default_path(business_unit_id: str) -> Path:
    """In the Meltano project's .meltano/ when run by Meltano, else the working directory."""
    root = os.environ.get("MELTANO_PROJECT_ROOT")
    if root:
        return Path(root) / ".meltano" / "target-pardot" / f"imports-{business_unit_id}.json"
    return Path.cwd() / f"target-pardot-imports-{business_unit_id}.json"


@dataclass
class LedgerEntry:
    import_id: int
    kind: str  # "update" or "upsert" (createOnNoMatch)
    created_at: str
    # Digest of each creating row -> how many such rows the import holds.
    creates: Counter[str] = field(default_factory=Counter)

    def as_json(self, scope: dict[str, str]) -> dict[str, Any]:
        return {
            "id": self.import_id,
            **scope,
            "kind": self.kind,
            "created_at": self.created_at,
            "creates": dict(self.creates),
        }


class ImportLedger:
    def __init__(self, path: Path, *, scope: dict[str, str]) -> None:
        self.path = path.absolute()
        self._scope = scope
        self._lock = threading.Lock()
        self._lock_file: IO[str] | None = None

    @classmethod
    def for_settings(cls, settings: Settings, *, api: str) -> ImportLedger:
        path = (
            Path(settings.import_state_path)
            if settings.import_state_path
            else default_path(settings.business_unit_id)
        )
        scope = {
            "business_unit_id": settings.business_unit_id,
            "pardot_url": settings.pardot_url,
            "api": api,
        }
        return cls(path, scope=scope)

    # reading ---------------------------------------------------------------------------------

    def pending(self) -> list[LedgerEntry]:
        """This business unit's imports (on this host, through this API) not yet processed."""
        with self._lock:
            return [
                LedgerEntry(
                    import_id=entry["id"],
                    kind=str(entry.get("kind") or "upsert"),
                    created_at=str(entry.get("created_at") or ""),
                    creates=Counter(entry["creates"]),
                )
                for entry in self._read()
                if self._ours(entry)
            ]

    def exists(self) -> bool:
        return self.path.exists()

    # writing ---------------------------------------------------------------------------------

    def record(self, entry: LedgerEntry) -> None:
        """Written (and flushed to disk) before the import is started."""
        with self._lock:
            self.acquire()
            entries = [e for e in self._read() if not self._same(e, entry.import_id)]
            entries.append(entry.as_json(self._scope))
            self._write(entries)

    def forget(self, import_id: int) -> None:
        with self._lock:
            entries = self._read()
            kept = [e for e in entries if not self._same(e, import_id)]
            if len(kept) != len(entries):
                self._write(kept)

    def acquire(self) -> None:
        """Hold the ledger's lock for the rest of the run (idempotent)."""
        if self._lock_file is not None or fcntl is None:
            return
        with self._refusals("used"):
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Held open for the rest of the run: closing it releases the lock.
            handle = open(  # noqa: SIM115
                self.path.with_name(self.path.name + ".lock"), "a", encoding="utf-8"
            )
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            handle.close()
            raise SettingsError(
                f"another target-pardot run is using the import state file {self.path} (it "
                "holds its .lock): two runs importing into one business unit must not take "
                "each other's imports for their own. Run them one after the other, or give "
                "each its own import_state_path."
            ) from error
        self._lock_file = handle

    def close(self) -> None:
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                self._lock_file.close()
            self._lock_file = None

    # the file --------------------------------------------------------------------------------

    def _ours(self, entry: dict[str, Any]) -> bool:
        return all(entry.get(key) == value for key, value in self._scope.items())

    def _same(self, entry: dict[str, Any], import_id: int) -> bool:
        return self._ours(entry) and entry["id"] == import_id

    def _read(self) -> list[dict[str, Any]]:
        """Every entry of the file (of every scope), each checked whole.

        Never guess: an entry that cannot be read whole may name an import whose records must
        not be created twice, so it stops the run instead of being passed over.
        """
        try:
            with self._refusals("read"):
                text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or not isinstance(data.get("imports"), list):
                raise ValueError('it holds no "imports" list')
            return [_checked(number, e) for number, e in enumerate(data["imports"], start=1)]
        except ValueError as error:
            raise SettingsError(
                f"the import state file {self.path} is not readable ({error}); move it aside "
                "only after checking in Pardot that the imports it names have finished"
            ) from None

    def _write(self, entries: list[dict[str, Any]]) -> None:
        with self._refusals("written"):
            self._replace(entries)

    def _replace(self, entries: list[dict[str, Any]]) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not entries:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        payload = json.dumps({"format": FORMAT, "imports": entries}, indent=1)
        descriptor, temporary = tempfile.mkstemp(
            dir=self.path.parent, prefix=".imports-", suffix=".tmp"
        )
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(payload)
                handle.flush()
                # On disk before the import it names is started, or a crash could lose it.
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    @contextlib.contextmanager
    def _refusals(self, doing: str) -> Iterator[None]:
        """What the disk refuses (a read-only or full disk, a file of another owner) as a stop
        naming the file and the setting, not a traceback."""
        try:
            yield
        except FileNotFoundError:
            raise
        except OSError as error:
            reason = error.strerror or str(error)
            if error.filename and os.path.abspath(error.filename) != str(self.path):
                reason += f": {error.filename}"  # a directory on the way, or the lock file
            raise SettingsError(
                f"the import state file {self.path} cannot be {doing} ({reason}). It names the "
                "imports a run started and did not yet process, so imports cannot be used "
                "without it: point import_state_path at a writable place, or use write_method "
                "api. Nothing of a batch whose import was not started is applied, and STATE "
                "stays before it."
            ) from None


def _checked(number: int, entry: Any) -> dict[str, Any]:
    """The entry as written by `LedgerEntry.as_json`, or ValueError naming what is wrong."""
    if not isinstance(entry, dict):
        raise ValueError(f"entry {number} is not an object")
    import_id = entry.get("id")
    if type(import_id) is not int or import_id <= 0:
        raise ValueError(f"entry {number} has no import id (a positive whole number)")
    creates = entry.get("creates")
    if not isinstance(creates, dict) or not all(
        isinstance(digest, str) and type(n) is int and n > 0 for digest, n in creates.items()
    ):
        raise ValueError(
            f"entry {number} (import {import_id}) has no creates (digest -> count of rows)"
        )
    return entry


def now_text() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
