"""Prospects, custom fields and the AMPSEA rule: the emulator's state, with no HTTP in it.

Callers (the API handlers and ``PardotEmulator``) hold the emulator lock around every call.
Values are normalised on the way in so that every API version renders the same record:
text as ``str``, integer fields as ``int``, flags as ``bool``, Date custom fields as
``YYYY-MM-DD``, multi-value custom fields as ``list[str]``. An absent key means "no value".

Ids are handed out in increasing order and prospects are never deleted, so lists of ids kept in
creation order are sorted: the store keeps one for all prospects, one for active and one for
archived ones, and answers id-ordered query pages from them with ``bisect`` in O(log n + page)
(benchmarks page through business units of 100,000 prospects). Archiving state therefore
changes only through the store, never by setting ``Prospect.is_archived`` from outside.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right, insort
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .clock import Clock, parse_date, render_v34, to_epoch
from .errors import MESSAGES, PardotError, field_error
from .fields import (
    BOOLEAN_FIELDS,
    INTEGER_FIELDS,
    STANDARD,
    TIMESTAMP_FIELDS,
    V5_CUSTOM_SUFFIX,
    V5_SALESFORCE_ID,
    V5_TO_SNAKE,
    V5_WRITABLE,
    V34_ORDER,
    WRITABLE,
)

Changes = dict[str, Any]

FIRST_PROSPECT_ID = 1000
# "New prospects land in the account's oldest campaign": the emulated account has one.
DEFAULT_CAMPAIGN_ID = 1
MAX_EMAIL_LENGTH = 255

_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_INTEGER = re.compile(r"^[+-]?\d+$")
_INDEXED = re.compile(r"^(?P<base>.+)_(?P<index>\d+)$")
# Pardot's own custom-field types; anything else is accepted and treated as text.
NUMBER_TYPE = "Number"
DATE_TYPE = "Date"


class _Skip:
    """Marks a submitted value that Pardot ignores (``multi_field=`` cannot clear)."""


SKIP = _Skip()


class UnknownSeedFields(ValueError):
    """Seeding named fields that are neither standard nor declared custom fields."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(f"cannot seed fields {names}")
        self.names = names


@dataclass
class CustomField:
    id: int
    field_id: str
    name: str
    type: str
    multi: bool
    created_at: float
    updated_at: float

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "field_id": self.field_id,
            "type": self.type,
            "is_record_multiple_responses": self.multi,
            "created_at": render_v34(self.created_at),
            "updated_at": render_v34(self.updated_at),
        }


@dataclass
class Prospect:
    id: int
    created_at: float
    updated_at: float
    last_activity_at: float | None = None
    is_archived: bool = False
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def email(self) -> str | None:
        return self.values.get("email")

    def has_fid(self, fid: str) -> bool:
        return fid in (self.values.get("crm_lead_fid"), self.values.get("crm_contact_fid"))

    def recency(self) -> tuple[float, int]:
        """Sort key for "latest activity": never-active prospects lose, ties go to the higher id."""
        activity = self.last_activity_at if self.last_activity_at is not None else -math.inf
        return (activity, self.id)


def is_valid_email(value: object) -> bool:
    return isinstance(value, str) and len(value) <= MAX_EMAIL_LENGTH and bool(_EMAIL.match(value))


def same_email(a: str | None, b: str | None) -> bool:
    # Pardot matches email addresses case-insensitively.
    return a is not None and b is not None and a.lower() == b.lower()


_FID_SLOTS = frozenset({"crm_lead_fid", "crm_contact_fid"})


def fid_slot(fid: str) -> str:
    """Salesforce contact ids start with 003; everything else is stored as the lead id."""
    return "crm_contact_fid" if fid.startswith("003") else "crm_lead_fid"


class Store:
    def __init__(self, clock: Clock, *, ampsea: bool) -> None:
        self.clock = clock
        # AMPSEA on: several active prospects may share an email. Off: emails are unique.
        self.ampsea = ampsea
        self._prospects: dict[int, Prospect] = {}
        # Lower-cased email -> ids, archived ones included: keeps lookups by email O(1) for
        # benchmarks against business units of tens of thousands of prospects.
        self._ids_by_email: dict[str, set[int]] = defaultdict(set)
        # Salesforce lead or contact id -> ids, archived ones included: the same for writes by
        # fid (a Salesforce-connected unit is often large).
        self._ids_by_fid: dict[str, set[int]] = defaultdict(set)
        # Sorted ids (see the module docstring): all, active, archived.
        self._ids: list[int] = []
        self._active_ids: list[int] = []
        self._archived_ids: list[int] = []
        self._next_id = FIRST_PROSPECT_ID
        self._custom: dict[str, CustomField] = {}
        # Seconds a new prospect stays out of reads by email and queries (see `visible`).
        self.read_lag = 0.0

    # -- custom fields -------------------------------------------------------------------

    def add_custom_field(
        self, field_id: str, name: str | None = None, type: str = "Text", multi: bool = False
    ) -> CustomField:
        if not field_id or field_id in STANDARD or field_id in V5_TO_SNAKE:
            raise ValueError(f"custom field id {field_id!r} is empty or names a standard field")
        if field_id in self._custom:
            raise ValueError(f"custom field {field_id!r} already exists")
        now = self.clock.now()
        custom = CustomField(
            id=len(self._custom) + 1,
            field_id=field_id,
            name=name or field_id,
            type=type,
            multi=multi,
            created_at=now,
            updated_at=now,
        )
        self._custom[field_id] = custom
        return custom

    def custom_fields(self) -> list[CustomField]:
        return sorted(self._custom.values(), key=lambda c: c.id)

    def custom_field(self, field_id: str) -> CustomField | None:
        return self._custom.get(field_id)

    # -- lookups -------------------------------------------------------------------------

    def get(self, prospect_id: int) -> Prospect | None:
        """By id, archived ones included: callers decide what archived means for them."""
        return self._prospects.get(prospect_id)

    def all(self, *, include_archived: bool = False) -> list[Prospect]:
        """By id."""
        ids = self._ids if include_archived else self._active_ids
        return [self._prospects[i] for i in ids]

    def visible(self, prospects: Iterable[Prospect]) -> list[Prospect]:
        """Of these prospects, those reads by email and queries show.

        Pardot's reads may lag writes by up to 60 seconds (the notes); here a prospect stays
        out of them for `read_lag` seconds after it was created (writes, and reads by id, see
        it at once). Changed values show at once: only creates lag.
        """
        if self.read_lag <= 0:
            return list(prospects)
        shown_until = self.clock.now() - self.read_lag
        return [p for p in prospects if p.created_at <= shown_until]

    def by_email(self, email: str, *, archived: bool | None = False) -> list[Prospect]:
        """Active prospects with this email (archived=True: archived ones; None: both), by id."""
        ids = sorted(self._ids_by_email.get(email.lower(), ()))
        return [
            p
            for p in (self._prospects[i] for i in ids)
            if (archived is None or p.is_archived == archived) and same_email(p.email, email)
        ]

    def page_by_id(
        self,
        *,
        archived: bool | None,
        above: int | None = None,
        below: int | None = None,
        offset: int = 0,
        limit: int,
        descending: bool = False,
    ) -> tuple[list[Prospect], int]:
        """Prospects with above < id < below, in id order, from the ``offset``-th on, at most
        ``limit`` of them; and how many match in all. Active ones (archived=False), archived
        ones (True) or both (None). O(log n + page): no walk over the business unit."""
        if archived is None:
            ids = self._ids
        else:
            ids = self._archived_ids if archived else self._active_ids
        lo = 0 if above is None else bisect_right(ids, above)
        hi = len(ids) if below is None else bisect_left(ids, below)
        total = max(0, hi - lo)
        if descending:
            stop = hi - offset
            # `stop > lo` also keeps a negative stop from slicing from the end of the list.
            chosen = ids[max(lo, stop - limit) : stop][::-1] if stop > lo else []
        else:
            start = lo + offset
            chosen = ids[start : min(hi, start + limit)]
        return [self._prospects[i] for i in chosen], total

    def _reindex_email(self, prospect: Prospect, old_email: str | None) -> None:
        if old_email is not None:
            self._ids_by_email[old_email.lower()].discard(prospect.id)
        if prospect.email is not None:
            self._ids_by_email[prospect.email.lower()].add(prospect.id)

    def _reindex_fids(self, prospect: Prospect, old_fids: Iterable[str | None]) -> None:
        for old in old_fids:
            if old is not None:
                self._ids_by_fid[old].discard(prospect.id)
        for slot in _FID_SLOTS:
            fid = prospect.values.get(slot)
            if fid is not None:
                self._ids_by_fid[fid].add(prospect.id)

    def by_fid(self, fid: str) -> Prospect | None:
        """The lowest-id prospect carrying this lead or contact id, preferring active ones."""
        ids = sorted(self._ids_by_fid.get(fid, ()))
        matches = [p for p in (self._prospects[i] for i in ids) if p.has_fid(fid)]
        active = [p for p in matches if not p.is_archived]
        return (active or matches or [None])[0]

    @staticmethod
    def latest(candidates: Iterable[Prospect]) -> Prospect | None:
        return max(candidates, key=Prospect.recency, default=None)

    # -- writes --------------------------------------------------------------------------

    def create(self, changes: Changes, *, fid: str | None = None) -> Prospect:
        email = changes.get("email")
        if email is not None and not self.ampsea and self.by_email(email):
            raise PardotError(9)
        now = self.clock.now()
        prospect = Prospect(id=self._next_id, created_at=now, updated_at=now, last_activity_at=now)
        self._next_id += 1
        _apply(prospect, changes)
        prospect.values.setdefault("campaign_id", DEFAULT_CAMPAIGN_ID)
        if fid:
            prospect.values[fid_slot(fid)] = fid
        self._add(prospect)
        return prospect

    def _add(self, prospect: Prospect) -> None:
        # Ids only grow, so appending keeps the id lists sorted.
        self._prospects[prospect.id] = prospect
        self._ids.append(prospect.id)
        (self._archived_ids if prospect.is_archived else self._active_ids).append(prospect.id)
        self._reindex_email(prospect, None)
        self._reindex_fids(prospect, ())

    def _set_archived(self, prospect: Prospect, archived: bool) -> None:
        if prospect.is_archived == archived:
            return
        source, dest = (
            (self._active_ids, self._archived_ids)
            if archived
            else (self._archived_ids, self._active_ids)
        )
        del source[bisect_left(source, prospect.id)]
        insort(dest, prospect.id)
        prospect.is_archived = archived

    def update(self, prospect: Prospect, changes: Changes, *, unarchive: bool = False) -> None:
        """Apply changes atomically: every check happens before anything is written."""
        new_email = changes.get("email")
        becoming_active = prospect.is_archived and unarchive
        if not self.ampsea and (new_email is not None or becoming_active):
            email = new_email if new_email is not None else prospect.email
            if email is not None and any(p.id != prospect.id for p in self.by_email(email)):
                raise PardotError(54)
        old_email = prospect.email
        old_fids = [prospect.values.get(slot) for slot in _FID_SLOTS]
        _apply(prospect, changes)
        self._reindex_email(prospect, old_email)
        if not _FID_SLOTS.isdisjoint(changes):
            self._reindex_fids(prospect, old_fids)
        now = self.clock.now()
        prospect.updated_at = now
        prospect.last_activity_at = now
        if unarchive:
            self._set_archived(prospect, False)

    def seed(self, email: str | None, fields: Mapping[str, Any]) -> Prospect:
        """Insert a prospect as test set-up: read-only fields and timestamps may be given."""
        unknown = [
            k for k in fields if k not in STANDARD and k not in self._custom and k != "is_archived"
        ]
        if unknown:
            raise UnknownSeedFields(sorted(unknown))
        if "id" in fields or "email" in fields:
            raise ValueError("cannot seed fields ['id/email']")
        archived = bool(fields.get("is_archived", False))
        if email is not None and not self.ampsea and not archived and self.by_email(email):
            raise ValueError(f"{email} already exists and this business unit is not AMPSEA")
        stamps: dict[str, float | None] = {}
        values: Changes = {}
        for key, raw in fields.items():
            if key in TIMESTAMP_FIELDS:
                stamps[key] = None if raw is None else to_epoch(raw)
            elif key != "is_archived":
                try:
                    values[key] = self.normalize(key, raw, strict=False, label=key)
                except PardotError as exc:
                    raise ValueError(exc.message) from exc
        now = self.clock.now()
        created = stamps.get("created_at") or now
        prospect = Prospect(
            id=self._next_id,
            created_at=created,
            updated_at=stamps.get("updated_at") or created,
            last_activity_at=stamps.get("last_activity_at"),
            is_archived=archived,
        )
        self._next_id += 1
        _apply(prospect, {k: v for k, v in values.items() if v is not SKIP})
        if email is not None:
            prospect.values["email"] = email
        if "campaign_id" not in fields:
            prospect.values["campaign_id"] = DEFAULT_CAMPAIGN_ID
        self._add(prospect)
        return prospect

    # -- turning submitted values into changes ---------------------------------------------

    def changes_v34(
        self, pairs: Iterable[tuple[str, Any]], *, allow_email: bool, version: int
    ) -> Changes:
        """v3/v4 parameters or batch items -> changes. Unknown and read-only names are ignored.

        In v4, a value a Number or Date custom field cannot take is dropped without a word and
        the rest of the write applied (recorded real v4 traffic: 200, `errors:{}`; the notes);
        v3 answers 56/57 (not seen in real traffic either way).
        """
        drop_invalid = version == 4
        changes: Changes = {}
        indexed: dict[str, list[tuple[int, Any]]] = {}
        for key, raw in pairs:
            if key in WRITABLE or (key in self._custom):
                if key == "email" and not allow_email:
                    continue
                value = self.normalize(key, raw, strict=False, label=key, drop_invalid=drop_invalid)
                if value is not SKIP:
                    changes[key] = value
                continue
            match = _INDEXED.match(key)
            custom = self._custom.get(match["base"]) if match else None
            if match and custom is not None and custom.multi:
                indexed.setdefault(custom.field_id, []).append((int(match["index"]), raw))
        for field_id, parts in indexed.items():
            custom = self._custom[field_id]
            # Documented: `<field>_0=` clears every value; empty parts are otherwise dropped.
            scalars = [
                _custom_scalar(custom, raw, False, field_id, drop_invalid=drop_invalid)
                for _, raw in sorted(parts)
            ]
            changes[field_id] = [s for s in scalars if s is not None and s is not SKIP]
        return changes

    def changes_v5(self, body: Mapping[str, Any]) -> Changes:
        """A v5 JSON body -> changes; any unknown or read-only name rejects the whole write.

        A name v5 does not know at all (a bare custom fieldId among them: v5 wants
        ``<fieldId>__c``) is 154 "Invalid property in request", as real Pardot answers; a
        known but read-only name (``createdAt``, ``salesforceId``...) is 180.
        """
        unknown = [key for key in body if not self.v5_known_name(key)]
        if unknown:
            raise PardotError(154, f"{MESSAGES[154]}: {unknown[0]}")
        invalid = [key for key in body if self.v5_writable_name(key) is None]
        if invalid:
            raise PardotError(180, f"{MESSAGES[180]}: {', '.join(invalid)}")
        changes: Changes = {}
        for key, raw in body.items():
            name = self.v5_writable_name(key)
            assert name is not None
            changes[name] = self.normalize(name, raw, strict=True, label=key)
        return changes

    def v5_writable_name(self, v5_key: str) -> str | None:
        """The stored name a v5 body key writes: standard camelCase, custom ``<fieldId>__c``."""
        if v5_key in V5_WRITABLE:
            return V5_TO_SNAKE[v5_key]
        custom = self.v5_custom_field(v5_key)
        return custom.field_id if custom is not None else None

    def v5_known_name(self, v5_key: str) -> bool:
        return (
            v5_key in V5_TO_SNAKE
            or v5_key == V5_SALESFORCE_ID
            or (self.v5_custom_field(v5_key) is not None)
        )

    def v5_custom_field(self, v5_key: str) -> CustomField | None:
        """v5 names a custom field by its apiFieldId, ``fieldId + "__c"``; the bare fieldId
        is not a v5 name (real Pardot refuses it)."""
        if not v5_key.endswith(V5_CUSTOM_SUFFIX):
            return None
        return self._custom.get(v5_key[: -len(V5_CUSTOM_SUFFIX)])

    def normalize(
        self, name: str, raw: Any, *, strict: bool, label: str, drop_invalid: bool = False
    ) -> Any:
        """One submitted value -> its stored form (SKIP: leave the field as it is). ``strict``
        is v5 (typed JSON) mode; ``drop_invalid``: a value a Number or Date custom field cannot
        take is SKIP instead of error 56/57 (v4)."""
        custom = self._custom.get(name)
        if custom is not None:
            return _custom_value(custom, raw, strict, label, drop_invalid)
        if name == "email":
            if not is_valid_email(raw):
                raise PardotError(4)
            return raw
        if name in INTEGER_FIELDS:
            return _integer(name, raw, strict, label)
        if name in BOOLEAN_FIELDS:
            return _boolean(raw, strict, label)
        return _text(raw, strict, label)

    # -- snapshots -----------------------------------------------------------------------

    def snapshot(self, prospect: Prospect) -> dict[str, Any]:
        """A detached, test-friendly view: v3/v4 names and renderings, every field present."""
        out: dict[str, Any] = {"id": prospect.id}
        for name in V34_ORDER[1:]:
            if name in TIMESTAMP_FIELDS:
                out[name] = render_v34(getattr(prospect, name))
            else:
                out[name] = prospect.values.get(name)
        out["password"] = prospect.values.get("password")
        for custom in self.custom_fields():
            value = prospect.values.get(custom.field_id)
            out[custom.field_id] = list(value or []) if custom.multi else value
        out["is_archived"] = prospect.is_archived
        return out


def _apply(prospect: Prospect, changes: Changes) -> None:
    for key, value in changes.items():
        if value is None or value == []:
            prospect.values.pop(key, None)
        else:
            prospect.values[key] = list(value) if isinstance(value, list) else value


def _invalid_property(label: str) -> PardotError:
    return PardotError(154, f"{MESSAGES[154]}: {label}")


def _text(raw: Any, strict: bool, label: str) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bool):
        if strict:
            raise _invalid_property(label)
        return "true" if raw else "false"
    if isinstance(raw, (int, float)):
        return str(raw)
    if isinstance(raw, str):
        return raw if raw != "" else None
    raise _invalid_property(label)


def _integer(name: str, raw: Any, strict: bool, label: str) -> int | None:
    errors = {"campaign_id": PardotError(38), "prospect_account_id": PardotError(61)}
    error = errors.get(name, field_error(56, label))
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        if strict:
            raise error
        return int(raw)
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and _INTEGER.match(raw.strip()):
        return int(raw.strip())
    raise error


def _boolean(raw: Any, strict: bool, label: str) -> bool | None:
    if raw is None or isinstance(raw, bool):
        return raw
    if strict:
        raise _invalid_property(label)
    if isinstance(raw, (int, float)):
        return bool(raw)
    text = str(raw).strip().lower()
    if text == "":
        return None
    # v3/v4 are lenient: anything that is not a recognised "true" spelling is false.
    return text in {"true", "1", "yes", "on"}


def _custom_value(
    custom: CustomField, raw: Any, strict: bool, label: str, drop_invalid: bool = False
) -> Any:
    if not custom.multi:
        if isinstance(raw, list):
            raise _invalid_property(label)
        return _custom_scalar(custom, raw, strict, label, drop_invalid=drop_invalid)
    if raw is None:
        return []
    if isinstance(raw, list):
        scalars = [
            _custom_scalar(custom, item, strict, label, drop_invalid=drop_invalid) for item in raw
        ]
        return [s for s in scalars if s is not None and s is not SKIP]
    if raw == "":
        # Documented: a multi-value field cannot be cleared with `field=`; use `field_0=`.
        return [] if strict else SKIP
    scalar = _custom_scalar(custom, raw, strict, label, drop_invalid=drop_invalid)
    if scalar is SKIP:
        return SKIP
    return [] if scalar is None else [scalar]


# A number as Pardot's (PHP) numeric check reads it: ASCII digits, no digit separators.
_NUMERIC = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _custom_scalar(
    custom: CustomField, raw: Any, strict: bool, label: str, *, drop_invalid: bool = False
) -> Any:
    if raw is None or raw == "":
        return None
    if custom.type == NUMBER_TYPE:
        number = _number(raw)
        if number is not None:
            return number
        if drop_invalid:
            return SKIP
        raise field_error(56, label)
    if custom.type == DATE_TYPE:
        if isinstance(raw, str):
            try:
                return parse_date(raw)
            except ValueError:
                pass
        if drop_invalid:
            return SKIP
        raise field_error(57, label)
    return _text(raw, strict, label)


def _number(raw: Any) -> int | float | None:
    """A Number custom field's value as Pardot keeps it: a number, read back as a JSON number
    (`00123` -> 123, `12.50` -> 12.5: recorded real v4 traffic, the notes), or None."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        text = raw.strip()
        if not _NUMERIC.fullmatch(text):
            return None
        raw = float(text) if any(c in text for c in ".eE") else int(text)
    if isinstance(raw, float) and not math.isfinite(raw):
        return None
    if isinstance(raw, float) and raw.is_integer() and abs(raw) < 2**53:
        return int(raw)
    return raw if isinstance(raw, (int, float)) else None
