"""Turn one Singer record into a normalised identify: who the prospect is, and its traits.

Three input shapes are accepted, detected per record:

1. A Segment identify event (``{"type": "identify", "userId": ..., "traits": {...}, ...}``).
2. A Segment warehouse row: the event flattened into snake_case columns, traits as columns.
3. A flat row of Pardot field names plus ``pardot_id`` / ``pardot_fid`` / ``user_id``.

Shapes 2 and 3 share one path: both are flat rows whose system columns are dropped.
This module only reshapes; whether the result can become a prospect (valid email, known
fields, values Pardot accepts) is decided by :mod:`target_pardot.fields` and the caller.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from target_pardot.errors import RecordError
from target_pardot.text import check_unicode

_NOTHING: Mapping[str, Any] = MappingProxyType({})
# A column a flattener made of an event's traits or context: `traits__email`, `context.ip`.
_FLATTENED = re.compile(r"(?:traits|context)[\W_]")

# Keys that only a Segment event (not a warehouse row) carries. Warehouse rows spell them in
# snake_case, so their presence is what tells the two flat-looking shapes apart.
_SEGMENT_EVENT_KEYS = frozenset({"traits", "context", "integrations", "userId", "anonymousId"})

# Segment message types that are not identify. A record carrying one of these is a Segment
# event of the wrong kind even when nothing else marks it as an event.
_OTHER_SEGMENT_TYPES = frozenset({"track", "page", "screen", "group", "alias"})

_WAREHOUSE_SYSTEM_COLUMNS = frozenset(
    {
        "id",
        "received_at",
        "sent_at",
        "timestamp",
        "original_timestamp",
        "uuid_ts",
        "loaded_at",
        "anonymous_id",
        "event",
        "event_text",
        "message_id",
        "channel",
        "type",
        "version",
    }
)
_WAREHOUSE_SYSTEM_PREFIXES = ("context_", "_sdc_")

# Identity keys found among traits: the email becomes `Identify.email`; the others are not
# trusted as Pardot identifiers inside an event's traits (ids come from `integrations.Pardot`),
# so they are reported as ignored rather than silently passed on as prospect data.
_TRAIT_IDENTITY_KEYS = frozenset({"email", "userid", "user_id", "pardot_id", "pardot_fid"})


@dataclass(slots=True)
class Identify:
    """One record reduced to the prospect's identity and its data.

    `traits` keeps the input's naming and Python values (datetime, Decimal...) for
    :func:`target_pardot.fields.map_traits`, which only reads them (nested objects are the
    record's own, not copies); `source` is the record as it came, and `record`
    the JSON-safe copy of it for reject files.
    """

    stream: str
    source: Mapping[str, Any]
    email: str | None
    email_field: str | None
    user_id: str | None
    pardot_id: str | None
    pardot_fid: str | None
    traits: Mapping[str, Any]
    ignored: Sequence[str]
    # Segment's per-event destination switch: `integrations: {"Pardot": false}`, or
    # `{"All": false}` without `"Pardot": true/{...}`, means "do not send this to Pardot".
    pardot_disabled: bool = False
    # The record as JSON text, once `compact` freed `source`.
    source_text: str | None = None

    @property
    def record(self) -> dict[str, Any]:
        # Made when a record is rejected, not for every record: most never are.
        if self.source_text is not None:
            return json.loads(self.source_text)  # type: ignore[no-any-return]
        return json_safe(self.source)

    def compact(self) -> None:
        """Keep the record as JSON text and free its Python objects, once it is prepared.

        For large batches (an import's holds up to 50,000 records until Pardot has imported
        them): decoded, a Segment identify event takes about 3.8 KB, as text about 600
        bytes. What matching and writing need (the identity, the stream) stays; `traits` and
        `ignored` were used up by preparing, and `record` still gives the reject file the
        record as it came.
        """
        if self.source_text is None:
            self.source_text = json_text(self.source)
        # Shared empties: a new dict and list per record would cost 180 bytes of the saving.
        self.source = self.traits = _NOTHING
        self.ignored = ()


def normalise_record(stream: str, record: Mapping[str, Any]) -> Identify:
    """Detect the record's shape and pull out identity, ids and traits.

    Raises RecordError for input that is structurally wrong (not an object, traits that are
    not an object, an email that is not text, a Segment event that is not an identify).
    A record without an email or without traits is not an error here: the caller decides
    whether an id alone is enough.
    """
    if type(record) is not dict and not isinstance(record, Mapping):
        raise RecordError(None, f"a record must be a JSON object, got {_describe_type(record)}")
    if _is_segment_event(record):
        return _from_segment_event(stream, record)
    return _from_flat_row(stream, record)


def _is_segment_event(record: Mapping[str, Any]) -> bool:
    if not _SEGMENT_EVENT_KEYS.isdisjoint(record):
        return True
    # `type` alone is ambiguous: warehouse exports may carry a `type` column too, and a flat
    # row with `type: "identify"` is read the same by both paths (email and columns), except
    # the flat path keeps its other columns as traits instead of dropping them. So only a
    # non-identify Segment type routes a bare record here, to be rejected.
    message_type = record.get("type")
    return isinstance(message_type, str) and message_type.strip().lower() in _OTHER_SEGMENT_TYPES


# The event keys that become the identify itself; the others are reported as not sent.
_EVENT_KEYS_USED = frozenset({"traits", "email", "userId"})
_EVENT_KEYS_USED_SNAKE = _EVENT_KEYS_USED | {"user_id"}


@dataclass(frozen=True)
class _EventLayout:
    identity_traits: tuple[str, ...]  # trait keys that are identities, not prospect data
    ignored: tuple[str, ...]  # what is reported as not sent: event keys, identity traits


_LAYOUTS: dict[tuple[tuple[Any, ...], tuple[Any, ...]], _EventLayout] = {}
# Layouts: a stream has a few. Past the bound, each record's is worked out anew.
_LAYOUT_CACHE_LIMIT = 1_000

# How the json module spells the floats JSON has no number for.
_NON_FINITE_TEXT = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _event_layout(record_keys: tuple[Any, ...], trait_keys: tuple[Any, ...]) -> _EventLayout:
    layout = _LAYOUTS.get((record_keys, trait_keys))
    if layout is not None:
        return layout
    identity = tuple(key for key in trait_keys if str(key).lower() in _TRAIT_IDENTITY_KEYS)
    used = _EVENT_KEYS_USED if "userId" in record_keys else _EVENT_KEYS_USED_SNAKE
    ignored = [key for key in record_keys if key not in used]
    ignored += [f"traits.{key}" for key in identity if str(key).lower() != "email"]
    layout = _EventLayout(identity, tuple(ignored))
    if len(_LAYOUTS) < _LAYOUT_CACHE_LIMIT:
        _LAYOUTS[(record_keys, trait_keys)] = layout
    return layout


def _from_segment_event(stream: str, record: Mapping[str, Any]) -> Identify:
    _require_identify_type(record)

    traits = _optional_object(record, "traits", "traits")
    context = _optional_object(record, "context", "context")
    context_traits = _optional_object(context, "traits", "context.traits") if context else None

    email = traits.get("email") if traits else None
    if type(email) is str and email and not (email[0].isspace() or email[-1].isspace()):
        # Nearly every event: the email is in its traits, as it is to be sent.
        email_field: str | None = "traits.email"
    else:
        email, email_field = _first_email(
            [
                (traits, "traits."),
                (context_traits, "context.traits."),
                (record, ""),
            ]
        )

    if email is None and traits is None:
        _refuse_flattened_traits(record)

    pardot_id, pardot_fid = _pardot_ids_from_integrations(record)
    user_id = _identifier_from(record, ("userId", "user_id"))

    # Shallow merge: Segment's context.traits is the client's cached copy of the user's traits,
    # so an object sent in this call's traits (address...) replaces the cached one whole.
    if context_traits:
        merged: Mapping[str, Any] = {**context_traits, **(traits or {})}
    else:
        merged = traits or {}
    # The traits are the merged ones minus the identity keys; nested objects are shared with
    # the record (nothing edits them). Which keys to drop and report depends only on the
    # record's and the traits' keys, the same for nearly every record of a stream.
    layout = _event_layout(tuple(record), tuple(merged))
    prospect_traits = dict(merged)
    for key in layout.identity_traits:
        del prospect_traits[key]
    disabled = _pardot_disabled(record)
    ignored = list(layout.ignored)

    return Identify(
        stream=stream,
        source=record,
        email=email,
        email_field=email_field,
        user_id=user_id,
        pardot_id=pardot_id,
        pardot_fid=pardot_fid,
        traits=prospect_traits,
        ignored=ignored,
        pardot_disabled=disabled,
    )


def _refuse_flattened_traits(record: Mapping[str, Any]) -> None:
    """An event whose traits came as columns (`traits__email`: singer-sdk's flattening_enabled,
    or a tap that flattens) has no email to be found, and would be rejected for that, while
    its email is right there: say what happened instead."""
    flattened = [key for key in record if isinstance(key, str) and _FLATTENED.match(key)]
    if flattened:
        flattened.sort(key=lambda key: (not key.startswith("traits"), key))
        shown = ", ".join(flattened[:3]) + (", ..." if len(flattened) > 3 else "")
        raise RecordError(
            "traits",
            f"the event's traits arrived flattened into columns ({shown}), which target-pardot "
            "does not read: send traits (and context) as objects, e.g. by turning the "
            "target's flattening_enabled off",
        )


def _from_flat_row(stream: str, record: Mapping[str, Any]) -> Identify:
    # Non-identify Segment types never get here (see _is_segment_event), so a `type` column
    # left on a flat row is only a system column.
    email, email_field = _first_email([(record, "")])
    traits_keys, ignored = _row_layout(tuple(record))
    # Nested objects are shared with the record (nothing edits them).
    traits = {key: record[key] for key in traits_keys}

    return Identify(
        stream=stream,
        source=record,
        email=email,
        email_field=email_field,
        user_id=_identifier_from(record, ("user_id",)),
        pardot_id=_identifier_from(record, ("pardot_id",), sent=True),
        pardot_fid=_identifier_from(record, ("pardot_fid",), sent=True),
        traits=traits,
        ignored=list(ignored),
    )


_ROW_LAYOUTS: dict[tuple[Any, ...], tuple[tuple[Any, ...], tuple[Any, ...]]] = {}


def _row_layout(keys: tuple[Any, ...]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """(the columns that are traits, the system columns reported as not sent) of a flat row;
    identity columns are neither."""
    layout = _ROW_LAYOUTS.get(keys)
    if layout is not None:
        return layout
    traits: list[Any] = []
    ignored: list[Any] = []
    for key in keys:
        lowered = str(key).lower()
        if lowered in _TRAIT_IDENTITY_KEYS:
            continue
        if lowered in _WAREHOUSE_SYSTEM_COLUMNS or lowered.startswith(_WAREHOUSE_SYSTEM_PREFIXES):
            ignored.append(key)
        else:
            traits.append(key)
    layout = (tuple(traits), tuple(ignored))
    if len(_ROW_LAYOUTS) < _LAYOUT_CACHE_LIMIT:
        _ROW_LAYOUTS[keys] = layout
    return layout


def _require_identify_type(record: Mapping[str, Any]) -> None:
    message_type = record.get("type")
    if message_type is None or message_type == "identify":
        return
    if not isinstance(message_type, str) or message_type.strip().lower() != "identify":
        raise RecordError(
            "type",
            f"this is a {message_type!r} event; only identify events can become prospects",
        )


def _optional_object(container: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any] | None:
    """The object at `key`, or None when absent or null; anything else is a RecordError."""
    value = container.get(key)
    if value is None or type(value) is dict:
        return value
    if not isinstance(value, Mapping):
        raise RecordError(path, f"must be an object, got {_describe_type(value)}")
    return value


def _first_email(
    sources: list[tuple[Mapping[str, Any] | None, str]],
) -> tuple[str | None, str | None]:
    """The first non-blank email among `sources` (mapping, path prefix), trimmed, and its path.

    A blank email falls through to the next source, but a non-text one is an error even if a
    later source has a good one: the record contradicts itself and someone should look.
    """
    for mapping, prefix in sources:
        if mapping is None:
            continue
        found = _lookup(mapping, "email")
        if found is None:
            continue
        key, value = found
        if value is None:
            continue
        path = f"{prefix}{key}"
        if not isinstance(value, str):
            raise RecordError(path, f"an email address must be text, got {_describe_type(value)}")
        trimmed = value.strip()
        if trimmed:
            return trimmed, path
    return None, None


def _pardot_disabled(record: Mapping[str, Any]) -> bool:
    integrations = record.get("integrations")
    if integrations is None or not isinstance(integrations, Mapping):
        return False
    found = _lookup(integrations, "pardot")
    if found is not None and found[1] is not None:
        options = found[1]
        return options is False
    every = _lookup(integrations, "all")
    return every is not None and every[1] is False


def _pardot_ids_from_integrations(record: Mapping[str, Any]) -> tuple[str | None, str | None]:
    integrations = _optional_object(record, "integrations", "integrations")
    if integrations is None:
        return None, None
    found = _lookup(integrations, "pardot")
    if found is None:
        return None, None
    key, options = found
    # Segment also allows `"Pardot": true/false` to switch the destination on or off; that
    # carries no ids, and acting on it is the caller's choice, not a malformed record.
    if options is None or isinstance(options, bool):
        return None, None
    path = f"integrations.{key}"
    if not isinstance(options, Mapping):
        raise RecordError(path, f"must be an object, got {_describe_type(options)}")
    return (
        _identifier_from(options, ("id",), path_prefix=f"{path}.", sent=True),
        _identifier_from(options, ("fid",), path_prefix=f"{path}.", sent=True),
    )


def _identifier_from(
    mapping: Mapping[str, Any], keys: tuple[str, ...], *, path_prefix: str = "", sent: bool = False
) -> str | None:
    """The first present identifier among `keys`, as trimmed text; None when absent or blank.

    `sent`: it always goes to Pardot (a Pardot id or fid), so it must be Unicode text. The
    userId is checked only where it does (as a lookup value: prepare.py).
    """
    for wanted in keys:
        value = mapping.get(wanted)
        if type(value) is str:
            # The usual id: text, found under the exact key.
            text = value.strip()
            if text:
                return check_unicode(f"{path_prefix}{wanted}", text) if sent else text
            continue
        found = _lookup(mapping, wanted)
        if found is None or found[1] is None:
            continue
        key, value = found
        text = _identifier_text(value, f"{path_prefix}{key}")
        if text is not None:
            return check_unicode(f"{path_prefix}{key}", text) if sent else text
    return None


def _identifier_text(value: Any, path: str) -> str | None:
    # bool is an int subclass; an id of `true` is a bug upstream, not the id 1.
    if isinstance(value, bool):
        raise RecordError(path, "an identifier must be text or a whole number, got a boolean")
    if isinstance(value, int):
        return str(value)
    # Warehouses and JSON parsers sometimes hand whole numbers back as floats or Decimals.
    if isinstance(value, (float, Decimal)) and _is_whole_number(value):
        return str(int(value))
    if isinstance(value, str):
        return value.strip() or None
    raise RecordError(
        path, f"an identifier must be text or a whole number, got {_describe_type(value)}"
    )


def _is_whole_number(value: float | Decimal) -> bool:
    if isinstance(value, Decimal):
        return value.is_finite() and value == value.to_integral_value()
    return value.is_integer()


def _lookup(mapping: Mapping[str, Any], key: str) -> tuple[str, Any] | None:
    """`(actual_key, value)` for `key`, matched exactly first, then ignoring case.

    Case-insensitive matching lets uppercase warehouses (Snowflake: EMAIL, USER_ID) work.
    """
    if key in mapping:
        return key, mapping[key]
    lowered = key.lower()
    for candidate, value in mapping.items():
        if isinstance(candidate, str) and candidate.lower() == lowered:
            return candidate, value
    return None


def json_safe(value: Any) -> Any:
    """A copy of `value` that json.dumps accepts, for writing rejected records to disk."""
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(item) for item in value]
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        # Taps send JSON numbers, parsed as Decimal: keep them numbers in the reject file,
        # unless no JSON number a reader can take says the same (beyond a float's range).
        if not value.is_finite():
            return str(value)
        if value == value.to_integral_value():
            return int(value)
        number = float(value)
        return number if number and math.isfinite(number) else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        # JSON has no NaN or Infinity (jq and most JSON readers refuse the whole line): the
        # value is kept as the text Python's json module would have written.
        return _NON_FINITE_TEXT[repr(value)]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    # A reject file must never fail to write; text keeps whatever the value was readable.
    return str(value)


def json_text(value: Any) -> str:
    """json_safe(value) as compact JSON text, the common values encoded by the json module's C
    encoder rather than copied first (a third of the time for a Segment event).

    Keys are text in anything decoded from JSON; of other keys, numbers are spelt alike and
    None and booleans as JSON spells them (null, true), where json_safe says None and True.
    """
    try:
        # json_safe is asked only about what the encoder cannot take itself.
        return json.dumps(
            value, default=json_safe, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
    except (TypeError, ValueError):  # a key json cannot take, or NaN (json_safe spells both)
        return json.dumps(json_safe(value), ensure_ascii=False, separators=(",", ":"))


def _describe_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (int, float, Decimal)):
        return "a number"
    return type(value).__name__
