"""skip_unchanged: remember what Pardot confirmed for each identity, and skip what is the same.

A nightly sync of a table resends every row, most of them unchanged; each costs a share of a
call and of the daily quota. With `skip_unchanged`, the run keeps, per identity, a fingerprint
of what Pardot last confirmed writing for it, and a record group whose fingerprint matches is
counted `unchanged` and costs no call (not even finding its prospect).

    groups --fingerprinted()--> [Fingerprinted] --split_unchanged(stored)--> unchanged, to send

- The key is the identity the group is matched by (Pardot id with its fid, Salesforce fid,
  lookup value or email) plus the business unit and the API version, so that a store shared by
  several units or versions never mixes them up. Groups that always create ("new": nothing
  identifies them) are never skipped.
- The fingerprint covers what the group writes: its fields, its email and its lookup value.
- Keys and fingerprints are stored as 16-byte hashes: the file holds no email or field value.

What the store claims must always be true of Pardot, whatever happens to the run:

- a fingerprint is written only after Pardot confirmed the write (`remember`, called per
  applied group by the dialects' execution; batched and committed by `flush`);
- before a changed group is sent, its old fingerprint is deleted and committed (`forget`): if
  the run dies while the write is in flight, Pardot may hold the new values or the old ones,
  and the store claims neither;
- a failed or rejected write never reaches `remember`.

A fingerprint is what its identity last wrote, while a prospect may be written through several
identities (its Pardot id, its fid, its email, its lookup value). So within a run, once a group
is sent, a later group naming any of the same things (id, fid, email or lookup value) through
another identity is sent too, whatever its fingerprint: the prospect may no longer hold what
that identity last wrote. Take a user's events by Pardot id, then by the email alone, in
different batches: a second run sends the id events again (the first of them differs from the
id's last), and the email event, unchanged, would otherwise be left out and the prospect keep
the id's values. The names sent are kept for the run in a temporary table (`touch`), not in
memory: a run may send millions.

A run killed between a confirmation and the next flush loses those fingerprints only: the next
run sends those records again, which is safe.

Two runs writing one business unit through one store at the same time would break the promise:
each remembers what it wrote, in whichever order their confirmations arrive, while Pardot keeps
whichever write came last; a later run would then skip records Pardot no longer holds, for good.
So a run holds the store's lock for its business unit (a `.lock` file beside it) from start to
end, and a second run stops before reading a record. Runs of other business units may share
the file (its keys name the unit; SQLite serialises their writes): the default store is shared
by every loader of a Meltano project.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

from target_pardot.errors import SettingsError, TargetPardotError
from target_pardot.matching import Group, Identity

try:  # POSIX; elsewhere two runs sharing a store are not detected
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

# Remembered fingerprints are committed at the latest when this many are waiting, so that a
# long batch (v5: one call per record) does not hold many confirmed writes unrecorded.
FLUSH_EVERY = 1000
# SQLite's default limit on parameters per statement is 999 in older builds.
_QUERY_CHUNK = 500
_SCHEMA = "CREATE TABLE IF NOT EXISTS applied (key BLOB PRIMARY KEY, fingerprint BLOB NOT NULL)"
# The run's own: name -> the identity (its hash) that last sent a group naming it.
_TOUCHED = "CREATE TEMP TABLE touched (name INTEGER PRIMARY KEY, owner INTEGER NOT NULL)"


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def identity_key(business_unit_id: str, version: int, identity: Identity) -> bytes | None:
    """The store key of an identity, or None when nothing identifies the prospect."""
    if identity.kind == "new":
        return None
    return _digest(
        "\x1f".join(
            (business_unit_id, str(version), identity.kind, identity.value, identity.fid or "")
        )
    )


def names_of(group: Group, prospect_id: int | None = None) -> list[int]:
    """What the group may write through, beside its own identity: its Pardot id (the one it
    names, or the one finding gave it), fid, email and lookup value.

    As the run's own string hashes (64 bits, salted per process): the temporary table holds no
    email or value, and they cost a fraction of a digest, which matters for a run that sends
    every record. Two names sharing a hash only make a group be sent.
    """
    identity = group.identity
    names = [] if identity.kind == "new" else [f"{identity.kind} {identity.value}"]
    if identity.fid:
        names.append(f"fid {identity.fid}")
    if prospect_id is not None:
        names.append(f"id {prospect_id}")
    if group.email:
        names.append("email " + group.email.lower())
    if group.lookup_value is not None:
        names.append("lookup " + group.lookup_value)
    return [hash(name) for name in dict.fromkeys(names)]


def fingerprint(group: Group) -> bytes:
    """What the group writes: its fields (as formatted for the API), email and lookup value."""
    # A group matched by id or fid writes its lookup value among its fields already: left out
    # here, so fingerprints stay what they were before groups carried it.
    lookup_value = None if group.identity.kind in ("id", "fid") else group.lookup_value
    content = json.dumps(
        [group.email, lookup_value, group.fields],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return _digest(content)


@dataclass(frozen=True)
class Fingerprinted:
    group: Group
    key: bytes | None
    fingerprint: bytes


def fingerprinted(
    groups: Iterable[Group], business_unit_id: str, version: int
) -> list[Fingerprinted]:
    return [
        Fingerprinted(
            group, identity_key(business_unit_id, version, group.identity), fingerprint(group)
        )
        for group in groups
    ]


def split_unchanged(
    items: list[Fingerprinted],
    stored: Mapping[bytes, bytes],
    *,
    skip: bool = True,
    distrusted: Iterable[bytes] = (),
) -> tuple[list[Group], list[Fingerprinted]]:
    """(groups Pardot already holds as they are, groups to send). Pure.

    With `skip` false (full_resync) every group is sent; so is a group whose key is
    `distrusted` (another identity of the run wrote what it names).
    """
    unchanged: list[Group] = []
    to_send: list[Fingerprinted] = []
    distrusted = set(distrusted)
    for item in items:
        if (
            skip
            and item.key is not None
            and item.key not in distrusted
            and stored.get(item.key) == item.fingerprint
        ):
            unchanged.append(item.group)
        else:
            to_send.append(item)
    return unchanged, to_send


class FingerprintStore:
    """The fingerprints in a SQLite file (WAL mode), shared by every thread of the run."""

    def __init__(self, path: str, *, business_unit_id: str) -> None:
        self.path = os.path.abspath(path)
        self.business_unit_id = business_unit_id
        self._lock = threading.Lock()
        self._pending: dict[bytes, bytes] = {}
        self._claim: IO[bytes] | None = None
        # Before any record is read: a run that cannot keep its promise stops at once.
        try:
            self._claim = self._take_claim()
            self._db = self._open()
        except (OSError, sqlite3.Error) as error:
            self._release_claim()
            raise SettingsError(
                f"skip_unchanged_store {self.path} cannot be used: {error}. Point "
                "skip_unchanged_store at a writable file, or turn skip_unchanged off."
            ) from None

    @property
    def claim_path(self) -> str:
        """The lock file a run holds while it uses the store for its business unit."""
        return f"{self.path}.{self.business_unit_id}.lock"

    def _take_claim(self) -> IO[bytes] | None:
        if fcntl is None:  # pragma: no cover
            return None
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        descriptor = os.open(self.claim_path, os.O_RDWR | os.O_CREAT, 0o600)
        # Held open for the rest of the run: closing it (or the process ending, however it
        # ends) releases the lock, so a killed run never leaves the store locked.
        handle = os.fdopen(descriptor, "rb+", buffering=0)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise SettingsError(
                f"another target-pardot run is using skip_unchanged_store {self.path} for "
                f"business unit {self.business_unit_id} (it holds {self.claim_path}). Two runs "
                "writing one business unit at once would each remember what it wrote while "
                "Pardot keeps the last write, and later runs would skip records Pardot no "
                "longer holds. Run them one after the other (a job's tasks run in sequence); "
                "loaders that write different prospects may instead each have their own "
                "skip_unchanged_store."
            ) from None
        except OSError:
            handle.close()
            raise
        return handle

    def _release_claim(self) -> None:
        if self._claim is not None:
            with contextlib.suppress(OSError):
                self._claim.close()
            self._claim = None

    def _open(self) -> sqlite3.Connection:
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        if not os.path.exists(self.path):
            # Owner-only, like the reject files: the file names no one, but it is nobody
            # else's business which records a pipeline carries.
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        # One connection behind a lock: worker threads remember, the main thread looks up.
        db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed `forget` must survive a power cut too, or the store could claim
        # values that a write in flight at that moment had replaced.
        db.execute("PRAGMA synchronous=FULL")
        db.execute(_SCHEMA)
        db.execute(_TOUCHED)
        db.commit()
        return db

    def lookup(self, keys: Iterable[bytes]) -> dict[bytes, bytes]:
        """The stored fingerprint of each key that has one (remembered ones included)."""
        wanted = list(dict.fromkeys(keys))
        with self._using():
            found: dict[bytes, bytes] = self._select_in(
                "SELECT key, fingerprint FROM applied", "key", wanted
            )
            for key in wanted:
                if key in self._pending:
                    found[key] = self._pending[key]
        return found

    def owners(self, names: Iterable[int]) -> dict[int, int]:
        """Of these names, those touched in this run: name -> owner (see `touch`)."""
        with self._using():
            return self._select_in(
                "SELECT name, owner FROM touched", "name", list(dict.fromkeys(names))
            )

    def _select_in(self, query: str, column: str, values: list[Any]) -> dict[Any, Any]:
        """The (first column -> second) rows of `query` whose `column` is one of `values`, a
        chunk at a time. The caller holds the lock."""
        found: dict[Any, Any] = {}
        for start in range(0, len(values), _QUERY_CHUNK):
            chunk = values[start : start + _QUERY_CHUNK]
            marks = ",".join("?" * len(chunk))
            found.update(self._db.execute(f"{query} WHERE {column} IN ({marks})", chunk))
        return found

    def touch(self, owned: Iterable[tuple[int, int]]) -> None:
        """(name, owner): this run sends a group of that owner naming that name."""
        rows = list(owned)
        if not rows:
            return
        with self._using():
            self._db.executemany("INSERT OR REPLACE INTO touched (name, owner) VALUES (?, ?)", rows)
            # Only the temporary table changed: nothing waits on the main file's disk.
            self._db.commit()

    def forget(self, keys: Iterable[bytes]) -> None:
        """Delete these fingerprints now, before their groups are sent again."""
        doomed = list(dict.fromkeys(keys))
        if not doomed:
            return
        with self._using():
            for key in doomed:
                self._pending.pop(key, None)
            self._db.executemany("DELETE FROM applied WHERE key = ?", [(key,) for key in doomed])
            self._db.commit()

    def remember(self, key: bytes, value: bytes) -> None:
        """Pardot confirmed this write; it is committed by the next flush."""
        with self._lock:  # no SQLite here: once per applied record
            self._pending[key] = value
            full = len(self._pending) >= FLUSH_EVERY
        if full:
            self.flush()

    def flush(self) -> None:
        with self._using():
            if not self._pending:
                return
            rows = list(self._pending.items())
            self._db.executemany(
                "INSERT OR REPLACE INTO applied (key, fingerprint) VALUES (?, ?)", rows
            )
            self._db.commit()
            self._pending.clear()

    def close(self) -> None:
        try:
            self.flush()
        except TargetPardotError as error:
            # The run has ended (a failure of the store during it stopped it, and was
            # reported): what could not be written is only sent again by the next run.
            logger.warning("%s", error)
        finally:
            with self._lock:
                self._db.close()
            # Only once everything the run confirmed is written: the next run reads it.
            self._release_claim()

    @contextlib.contextmanager
    def _using(self) -> Iterator[None]:
        """The lock, and what SQLite or the disk refuses during the run (a read-only or full
        disk, a damaged file) as a stop naming the store, not a traceback."""
        with self._lock:
            try:
                yield
            except (OSError, sqlite3.Error) as error:
                raise SettingsError(
                    f"skip_unchanged_store {self.path} failed during the run: {error}. "
                    "Fingerprints not yet written are not kept, so the next run sends their "
                    "records again. Point skip_unchanged_store at a writable file with room, "
                    "or delete a damaged one (the next run then sends every record once)."
                ) from None


class SkipUnchanged:
    """The run's use of the store: which groups to send, and what Pardot confirmed."""

    def __init__(
        self, store: FingerprintStore, *, business_unit_id: str, version: int, full_resync: bool
    ) -> None:
        self.store = store
        self._business_unit_id = business_unit_id
        self._version = version
        self._skip = not full_resync

    def select(
        self, groups: list[Group], *, trusted: bool = True
    ) -> tuple[list[Group], list[Group]]:
        """(unchanged groups, groups to send); the old fingerprints of the latter are gone.

        Not `trusted`: every group is sent. For records written after another identity of the
        same batch wrote their prospect: what their identity last wrote says nothing of what
        the prospect holds now. For the same reason a group is sent when, earlier in the run,
        another identity sent a group naming its Pardot id, fid, email or lookup value (see
        `sending`).
        """
        items = fingerprinted(groups, self._business_unit_id, self._version)
        stored = self.store.lookup(item.key for item in items if item.key is not None)
        distrusted: set[bytes] = set()
        if self._skip and trusted:
            # Only a group that would be left out needs its names looked at.
            candidates = [
                (item.key, hash(item.group.identity), names_of(item.group))
                for item in items
                if item.key is not None and stored.get(item.key) == item.fingerprint
            ]
            if candidates:
                owners = self.store.owners(name for _, _, names in candidates for name in names)
                distrusted = {
                    key
                    for key, owner, names in candidates
                    if any(owners.get(name, owner) != owner for name in names)
                }
        unchanged, to_send = split_unchanged(
            items, stored, skip=self._skip and trusted, distrusted=distrusted
        )
        self.store.forget(item.key for item in to_send if item.key in stored)
        return unchanged, [item.group for item in to_send]

    def sending(self, steps: Iterable[tuple[Group, int | None]]) -> None:
        """These groups are sent (each with the prospect id its plan writes, when known): a
        later group of another identity naming any of the same things is sent too."""
        rows: list[tuple[int, int]] = []
        for group, prospect_id in steps:
            owner = hash(group.identity)
            rows.extend((name, owner) for name in names_of(group, prospect_id))
        self.store.touch(rows)

    def applied(self, group: Group) -> None:
        key = identity_key(self._business_unit_id, self._version, group.identity)
        if key is not None:
            self.store.remember(key, fingerprint(group))

    def flush(self) -> None:
        self.store.flush()

    def close(self) -> None:
        self.store.close()
