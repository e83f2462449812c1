"""Singer records -> checked prospect data, ready for matching. Rejects what can never succeed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from target_pardot.errors import RecordError
from target_pardot.fields import (
    FieldCatalog,
    canonical_number,
    is_number_field,
    map_traits,
    validate_email,
)
from target_pardot.identify import Identify, json_safe, normalise_record
from target_pardot.outcomes import SKIP_SEGMENT_SWITCH, Rejection, RunReport
from target_pardot.settings import Settings
from target_pardot.text import check_unicode


@dataclass(slots=True)
class Prepared:
    identify: Identify
    fields: dict[str, Any]  # Pardot v3/v4 field names -> values formatted for the API version
    # The lookup_field value the record is matched by or, matched by a Pardot id or fid, the one
    # it writes.
    lookup_value: str | None = None

    @property
    def email(self) -> str | None:
        return self.identify.email

    def reject(
        self, reason: str, *, field: str | None = None, code: int | None = None
    ) -> Rejection:
        return Rejection(
            stream=self.identify.stream,
            record=self.identify.record,
            reason=reason,
            field=field,
            code=code,
        )


class RecordRules(Protocol):
    """The API version's part in preparing a record (a dialect provides it)."""

    # v5 takes typed JSON values; v3/v4 take text.
    json_values: ClassVar[bool]

    def require_identity(self, identify: Identify) -> None: ...


class BatchPreparer:
    """One batch's records, prepared one by one as they arrive.

    The sink hands each record over as the SDK reads it, while it is still in the CPU's
    caches: preparing a whole batch later, after 500 records were read, re-reads every one of
    them from memory (about a tenth of the preparing time). Rejects are reported at once; the
    counts and the names to note (ignored keys, unknown traits) once the batch is `finish`ed.
    """

    def __init__(
        self,
        stream: str,
        *,
        settings: Settings,
        catalog: FieldCatalog,
        rules: RecordRules,
        report: RunReport,
        pending: list[Prepared] | None = None,
        compact: bool = False,
    ) -> None:
        self.stream = stream
        # Large batches keep their records as JSON text once prepared (Identify.compact).
        self._compact = compact
        self._settings = settings
        self._catalog = catalog
        self._rules = rules
        self._report = report
        # `pending` is shared by every stream's batch of a run: records in the order they were
        # read, whatever their stream, until one of the batches is finished (see finish).
        self._prepared: list[Prepared] = [] if pending is None else pending
        # Names reported once at the end of the run: gathered per batch, not told per record.
        self._notes = _Notes()
        self.seen = 0
        self._skipped = 0

    def add(self, record: Mapping[str, Any]) -> None:
        self.seen += 1
        try:
            item = _prepare_one(
                self.stream,
                record,
                settings=self._settings,
                catalog=self._catalog,
                rules=self._rules,
                notes=self._notes,
            )
        except RecordError as error:
            self._report.reject(
                Rejection(
                    stream=self.stream,
                    record=_safe_record(record),
                    reason=error.reason,
                    field=error.field,
                )
            )
            return
        if item is None:
            self._skipped += 1
            return
        if self._compact:
            item.identify.compact()
        self._prepared.append(item)

    def finish(self) -> list[Prepared]:
        """The prepared records, once the batch's counts and notes are reported.

        With a shared `pending` list, these are every stream's records read since the last
        finished batch, in input order, and the list is emptied: a tap that sends stream a,
        then stream b, leaves a's last records waiting in a's batch while b's batch fills, and
        b's records must not be written before them.
        """
        report, stream = self._report, self.stream
        report.saw(self.seen, stream=stream)
        if self._skipped:
            report.skip(SKIP_SEGMENT_SWITCH, self._skipped, stream=stream)
        if self._notes.ignored:
            report.note_ignored(sorted(self._notes.ignored))
        if self._notes.unknown:
            report.note_unknown_traits(sorted(self._notes.unknown))
        prepared = list(self._prepared)
        self._prepared.clear()
        return prepared


class _Notes:
    def __init__(self) -> None:
        self.ignored: set[str] = set()
        self.unknown: set[str] = set()


def _prepare_one(
    stream: str,
    record: Mapping[str, Any],
    *,
    settings: Settings,
    catalog: FieldCatalog,
    rules: RecordRules,
    notes: _Notes,
) -> Prepared | None:
    """The record ready for matching, or None when its Segment event says not to send it."""
    identify = normalise_record(stream, record)
    if identify.pardot_disabled:
        return None
    if identify.ignored:
        notes.ignored.update(identify.ignored)
    mapped = map_traits(identify.traits, catalog, json_values=rules.json_values)
    if mapped.unknown:
        notes.unknown.update(mapped.unknown)
    if mapped.errors:
        first = mapped.errors[0]
        reason = "; ".join(str(error) for error in mapped.errors)
        raise RecordError(first.field, reason)
    if identify.email is not None:
        identify.email = validate_email(identify.email, identify.email_field or "email")

    fields = mapped.values  # a dict of its own, made for this record
    lookup_value: str | None = None
    has_pardot_identity = bool(identify.pardot_id or identify.pardot_fid)
    lookup_field = settings.lookup_field
    lookup_source = lookup_field  # the field a bad lookup value is reported on

    # Only v4/v5 take a lookup_field (the settings check says so).
    if lookup_field and not has_pardot_identity:
        if settings.use_user_id_as_lookup:
            if identify.user_id is None:
                raise RecordError(
                    "userId",
                    f"no userId to match against lookup field {lookup_field} "
                    "(use_user_id_as_lookup is on)",
                )
            lookup_value = check_unicode("userId", identify.user_id)
            fields[lookup_field] = lookup_value
            lookup_source = "userId"
        else:
            lookup_value = _lookup_value(fields, lookup_field)
            if lookup_value is None:
                raise RecordError(
                    lookup_field,
                    f"no value for lookup field {lookup_field}: the record needs a trait "
                    f"named {lookup_field} (or a Pardot id/fid) to find its prospect",
                )
    else:
        rules.require_identity(identify)
        if lookup_field:
            # Matched by its Pardot id or fid, it may still write a lookup value: a record
            # matched by that value finds its prospect after this one (the scan index and the
            # order of a batch's records follow it).
            lookup_value = _lookup_value(fields, lookup_field)
    if lookup_value is not None and is_number_field(catalog, lookup_field):
        lookup_value = _as_number_lookup(
            fields, lookup_field, lookup_value, lookup_source, json_values=rules.json_values
        )
    if not fields and identify.email is None and not lookup_value:
        raise RecordError(None, "nothing to write: the record has no prospect fields")
    return Prepared(identify=identify, fields=fields, lookup_value=lookup_value)


def _lookup_value(fields: dict[str, Any], lookup_field: str) -> str | None:
    """The record's lookup value, trimmed as every identifier is (a warehouse's padded CHAR
    column would otherwise match nothing and make a duplicate); the field is written so too.
    None when there is none. Pardot's side is trimmed alike (finder.Candidate)."""
    value = fields.get(lookup_field)
    if value is None or isinstance(value, list):
        return None
    text = str(value).strip()
    if isinstance(value, str) and text != value:
        fields[lookup_field] = text
    return text or None


def _as_number_lookup(
    fields: dict[str, Any], lookup_field: str, value: str, source: str | None, *, json_values: bool
) -> str:
    """A lookup value for a Number field, in the form Pardot keeps and reads back (`00123`
    is 123), written so too (v5: as a JSON number); a value that is not a number is the
    record's error: Pardot drops it without a word, and the prospect could never be found
    by it."""
    number = canonical_number(value)
    if number is None:
        raise RecordError(
            source,
            f"lookup field {lookup_field} is a Number field in Pardot, and this value is not "
            "a number: Pardot would drop it without a word, and the prospect could never be "
            "found by it",
        )
    fields[lookup_field] = (
        (float(number) if "." in number else int(number)) if json_values else number
    )
    return number


def _safe_record(record: Any) -> dict[str, Any]:
    """The record as JSON-safe data for the reject file, whatever the tap sent."""
    if isinstance(record, Mapping):
        return json_safe(record)
    return {"value": repr(record)}
