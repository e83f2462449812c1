"""The scan index: every prospect of the business unit, by email and by lookup value, compactly.

A scan keeps one entry per prospect for the whole run, and a business unit may hold millions.
One object per prospect (a Candidate, its strings, a dict per email and per lookup value) cost
about 1 KB each; this table costs under 300 bytes:

- rows in parallel arrays, appended in scan order: prospect id, a 64-bit hash of the email
  (lowercased) and the update time as a sortable integer (8 bytes each), plus a reference to
  the lookup value (the one string kept per prospect: values must compare exactly);
- a prospect's row is found by bisecting the ids, which the scan and its catch-ups deliver in
  ascending order (the rare id that arrives out of order goes to a small dict instead);
- one dict from email hash to row, one from lookup value to row; a key shared by several
  prospects holds a list of rows.

Two emails whose 64-bit hashes collide would be taken for one: at a million prospects the
chance of any collision at all is about 3 in 100 million.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterator

# A dict value: one row, or the rows of every prospect sharing the key.
_Rows = int | list[int]
NO_EMAIL = 0
# Written by this run (see ProspectFinder.remember_updated): newer than any time Pardot
# answered; the run's writes count up from here.
NEWEST = 99_999_999_999_999
_SEPARATORS = str.maketrans("", "", "-: T")


def email_key(email: str | None) -> int:
    if not email:
        return NO_EMAIL
    return hash(email.lower()) or 1


def recency_key(updated: str) -> int:
    """`updated_at` / `updatedAt` as an integer that sorts as the text does.

    Pardot answers `YYYY-MM-DD HH:MM:SS` (v4) or ISO 8601 (v5); the date and time digits, to the
    second, are kept. Anything else (or nothing) sorts first.
    """
    digits = updated[:19].translate(_SEPARATORS)
    if not digits.isdigit() or len(digits) > 14:
        return 0
    return int(digits.ljust(14, "0"))


class ScanIndex:
    def __init__(self) -> None:
        self._ids = array("q")
        self._emails = array("q")
        self._updated = array("q")
        self._lookups: list[str | None] = []
        self._in_order = 0  # rows below this one have ascending ids: bisect finds them
        self._out_of_order: dict[int, int] = {}  # id -> row, for the others
        self._by_email: dict[int, _Rows] = {}
        self._by_lookup: dict[str, _Rows] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def put(
        self,
        prospect_id: int,
        email: str | None,
        lookup: str | None,
        updated: int,
        *,
        keep_missing: bool = False,
        keep_written: bool = False,
    ) -> None:
        """Add a prospect, or replace what the index held for it (O(1) but the bisect).

        With `keep_missing`, an email or lookup value of None keeps the one the index had.
        With `keep_written`, a row this run wrote (updated at NEWEST or later) is kept as it
        is: what a query page answers is never fresher than the run's own write (the page may
        even have been read while the write was in flight), and the row keeps its place in
        the order of the run's writes.
        """
        key = email_key(email)
        if lookup == "":
            lookup = None
        row = self._row_of(prospect_id)
        if row is None:
            self._append(prospect_id, key, lookup, updated)
            return
        if keep_written and self._updated[row] >= NEWEST:
            return
        old_key, old_lookup = self._emails[row], self._lookups[row]
        if keep_missing:
            key = key if email else old_key
            lookup = lookup if lookup is not None else old_lookup
        if key != old_key:
            _discard(self._by_email, old_key, row)
            _add(self._by_email, key, row)
            self._emails[row] = key
        if lookup != old_lookup:
            _discard(self._by_lookup, old_lookup, row)
            _add(self._by_lookup, lookup, row)
            self._lookups[row] = lookup
        self._updated[row] = updated

    def rows_for_email(self, email: str) -> list[int]:
        return _rows(self._by_email, email_key(email))

    def rows_for_lookup(self, value: str) -> list[int]:
        return _rows(self._by_lookup, value)

    def prospect_id(self, row: int) -> int:
        return self._ids[row]

    def recency(self, row: int) -> tuple[int, int]:
        """How recently the row's prospect was updated, ties broken by id: larger is later."""
        return (self._updated[row], self._ids[row])

    def has_lookup(self, row: int) -> bool:
        return self._lookups[row] is not None

    def latest(self, rows: list[int], *, above: int | None = None) -> int | None:
        """The id of the most recently updated prospect among `rows` (with an id above
        `above`, when given)."""
        best: tuple[int, int] | None = None
        for row in rows:
            prospect_id = self._ids[row]
            if above is None or prospect_id > above:
                recency = (self._updated[row], prospect_id)
                if best is None or recency > best:
                    best = recency
        return best[1] if best is not None else None

    def ids(self) -> Iterator[int]:
        return iter(self._ids)

    def _row_of(self, prospect_id: int) -> int | None:
        row = bisect_left(self._ids, prospect_id, 0, self._in_order)
        if row < self._in_order and self._ids[row] == prospect_id:
            return row
        return self._out_of_order.get(prospect_id)

    def _append(self, prospect_id: int, key: int, lookup: str | None, updated: int) -> None:
        row = len(self._ids)  # one int object, shared by every map that refers to the row
        in_order = self._in_order == row and (not row or self._ids[row - 1] < prospect_id)
        self._ids.append(prospect_id)
        self._emails.append(key)
        self._updated.append(updated)
        self._lookups.append(lookup)
        if in_order:
            self._in_order += 1
        else:
            self._out_of_order[prospect_id] = row
        _add(self._by_email, key, row)
        _add(self._by_lookup, lookup, row)


def _add(rows_by_key: dict, key: object, row: int) -> None:  # type: ignore[type-arg]
    if key is None or key == NO_EMAIL:
        return
    held = rows_by_key.get(key)
    if held is None:
        rows_by_key[key] = row
    elif isinstance(held, list):
        held.append(row)
    else:
        rows_by_key[key] = [held, row]


def _discard(rows_by_key: dict, key: object, row: int) -> None:  # type: ignore[type-arg]
    held = rows_by_key.get(key)
    if held is None:
        return
    if isinstance(held, list):
        if row in held:
            held.remove(row)
        if len(held) == 1:
            rows_by_key[key] = held[0]
    elif held == row:
        del rows_by_key[key]


def _rows(rows_by_key: dict, key: object) -> list[int]:  # type: ignore[type-arg]
    held = rows_by_key.get(key)
    if held is None:
        return []
    return list(held) if isinstance(held, list) else [held]
