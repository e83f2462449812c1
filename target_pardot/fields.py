"""Map identify traits onto Pardot prospect fields, formatted and checked for the API version.

Names follow Pardot v3/v4 (snake_case); :func:`to_v5_name` gives the v5 (camelCase) spelling.
Nothing here talks to Pardot: the custom fields come in as a :class:`FieldCatalog` the caller
built from the custom-field endpoint.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from target_pardot.errors import RecordError
from target_pardot.text import check_unicode

STANDARD_FIELDS: frozenset[str] = frozenset(
    {
        "salutation",
        "first_name",
        "last_name",
        "email",
        "password",
        "company",
        "prospect_account_id",
        "website",
        "job_title",
        "department",
        "country",
        "address_one",
        "address_two",
        "city",
        "state",
        "territory",
        "zip",
        "phone",
        "fax",
        "source",
        "annual_revenue",
        "employees",
        "industry",
        "years_in_business",
        "comments",
        "notes",
        "score",
        "is_do_not_email",
        "is_do_not_call",
        "is_reviewed",
        "is_starred",
        "campaign_id",
        "crm_owner_fid",
    }
)

READ_ONLY_FIELDS: frozenset[str] = frozenset(
    {
        "id",
        "grade",
        "last_activity_at",
        "recent_interaction",
        "crm_lead_fid",
        "crm_contact_fid",
        "crm_account_fid",
        "crm_last_sync",
        "crm_url",
        "opted_out",
        "created_at",
        "updated_at",
    }
)

# v5 names a custom field by its fieldId plus this suffix (the endpoint's apiFieldId).
V5_CUSTOM_SUFFIX = "__c"

MAX_TEXT_LENGTH = 255
# A value that leaves its field as Pardot has it, as null does (a blank flag).
NOT_SENT: Any = object()
MAX_LONG_TEXT_LENGTH = 65535
MAX_EMAIL_LENGTH = 255

FieldValue = str | list[str] | bool | int | float
_FieldKind = Literal["text", "long_text", "integer", "number", "boolean", "date"]

_LONG_TEXT_FIELDS = frozenset({"comments", "notes"})
# Pardot stores these as integers (ids and the score) and answers anything else with
# error 56 "Invalid number"; catching it here names the trait instead of a batch index.
_INTEGER_FIELDS = frozenset({"score", "campaign_id", "prospect_account_id"})
_BOOLEAN_FIELDS = frozenset({"is_do_not_email", "is_do_not_call", "is_reviewed", "is_starred"})
# The identity is the caller's business (matching, upsert keys), never a field to write.
_IDENTITY_TRAITS = frozenset({"email", "pardot_id", "pardot_fid", "user_id"})
# Pardot's checkbox and multi-select custom fields both hold several values at once.
_MULTI_VALUE_TYPES = frozenset({"checkbox", "multi-select"})

# Segment (and warehouse-flattened Segment) trait names for standard fields, keyed by their
# snake_case form. Flattened nested traits arrive as `address_city`, `address__city` or
# `address.city`; snake_case folds all three to `address_city`.
_TRAIT_ALIASES: dict[str, str] = {
    "title": "job_title",
    "postal_code": "zip",
    "zip_code": "zip",
    "company_name": "company",
    "address_street": "address_one",
    "address_street2": "address_two",
    "address_secondary": "address_two",
    "address_city": "city",
    "address_state": "state",
    "address_postal_code": "zip",
    "address_zip": "zip",
    "address_country": "country",
}
_ADDRESS_PARTS: dict[str, str] = {
    "street": "address_one",
    "street2": "address_two",
    "secondary": "address_two",
    "city": "city",
    "state": "state",
    "postal_code": "zip",
    "zip": "zip",
    "country": "country",
}

# When several traits land on one field, an exact Pardot name beats an alias, which beats a
# value derived from `name`; equal ranks go to the trait that came first in the input.
_EXACT, _ALIAS, _DERIVED = 0, 1, 2

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[\s.\-_]+")

_EMAIL_LOCAL_PART = re.compile(r"[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*")
# A letter or digit (any script, for IDN domains), hyphens allowed inside but not at the ends.
_DOMAIN_LABEL = re.compile(r"[^\W_](?:(?:[^\W_]|-)*[^\W_])?")
# The whole address at once: the local part, then two or more domain labels.
_EMAIL = re.compile(
    f"{_EMAIL_LOCAL_PART.pattern}@{_DOMAIN_LABEL.pattern}(?:\\.{_DOMAIN_LABEL.pattern})+"
)


@dataclass(frozen=True)
class CustomField:
    """A Pardot custom field, as the custom-field endpoint describes it.

    `type` is Pardot's name for it (Text, Number, Date, Checkbox, Dropdown, Radio Button,
    Multi-Select, Textarea, Hidden, CRM User...). Checkbox and Multi-Select fields accept a list
    of values even when `multi` is False, because Pardot always stores several values for them.
    """

    field_id: str
    type: str = "Text"
    multi: bool = False
    # v5's name for the field (the endpoint's apiFieldId), when the catalog came from v5.
    api_field_id: str | None = None

    @property
    def v5_name(self) -> str:
        """How v5 bodies, `fields` lists and answers name it: Pardot appends `__c`."""
        return self.api_field_id or self.field_id + V5_CUSTOM_SUFFIX


@dataclass
class FieldCatalog:
    """The fields a business unit has: Pardot's standard ones plus its custom fields."""

    custom: dict[str, CustomField] = field(default_factory=dict)
    # How each trait name maps, worked out once per distinct name rather than once per record
    # (see _rule_for); the custom fields do not change during a run.
    rules: dict[str, _Rule] = field(default_factory=dict, compare=False, repr=False)
    # Where the traits of each record shape go (see map_traits), worked out once per shape.
    placements: dict[_Shape, _Placement] = field(default_factory=dict, compare=False, repr=False)
    # Each field name's v5 spelling, worked out once (see to_v5_name).
    v5_names: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def is_known(self, name: str) -> bool:
        """Whether `name` is a writable standard field or a custom field (case-insensitive)."""
        return snake_case(name) in STANDARD_FIELDS or _find_custom_field(name, self) is not None

    @classmethod
    def from_custom_fields(cls, fields: Iterable[CustomField]) -> FieldCatalog:
        return cls(custom={custom_field.field_id: custom_field for custom_field in fields})


@dataclass(slots=True)
class MappedFields:
    """The result of :func:`map_traits`.

    `values` maps Pardot v3/v4 field names (custom fields by their exact field_id) to values
    ready to send. `unknown` lists traits, named as in the input (dotted for nested ones such as
    "address.floor"), that were not sent: no such field, or a read-only one (check the name's
    :func:`snake_case` against READ_ONLY_FIELDS to tell which). `errors` are values Pardot
    would refuse; a record with any should be rejected whole.
    """

    values: dict[str, FieldValue] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)


@dataclass(frozen=True)
class _Target:
    """Where one trait goes and what kind of value that field takes."""

    name: str
    kind: _FieldKind
    multi: bool = False


# What a top-level trait name means, whatever its value: (action, target, rank). The target is
# where a plain value goes (None: nowhere); address and company objects are spread instead.
_FIELD, _SKIP, _FULL_NAME, _ADDRESS, _COMPANY = range(5)
_Rule = tuple[int, "_Target | None", int]
# Names are columns and trait keys: a few dozen in practice. The bound only keeps input that
# invents a new key per record from growing the cache without end.
_RULE_CACHE_LIMIT = 10_000
# Shapes: a stream has a few (which traits are set varies a little from record to record).
# Past the bound, input whose every record has a new shape is placed record by record.
_PLACEMENT_CACHE_LIMIT = 1_000


@functools.lru_cache(maxsize=4096)
def snake_case(name: str) -> str:
    """`firstName`, `FIRST_NAME`, `first name` and `address.postalCode` as Pardot spells names.

    Dots, dashes, spaces and repeated underscores all become one underscore, so traits that a
    flattener joined with "." or "__" compare equal to Segment's warehouse columns.
    """
    split_words = _CAMEL_BOUNDARY.sub("_", name.strip())
    return _SEPARATORS.sub("_", split_words).strip("_").lower()


def map_traits(
    traits: Mapping[str, Any], catalog: FieldCatalog, *, json_values: bool
) -> MappedFields:
    """Translate traits into Pardot prospect fields, formatted as the API version takes them.

    Names are matched case-insensitively after camelCase -> snake_case, with Segment's aliases
    (`title`, `name`, `company.name`, the `address` object and its flattened columns). Identity
    traits (email, user id, Pardot ids) are left to the caller and never appear in the result.

    A `None` value is skipped, not sent as a blank: an unset trait leaves the prospect's field
    as it is in Pardot, the same as v3/v4 treat an absent parameter. Blank text is sent as ""
    for every field type, which is how Pardot clears a field.

    When several traits land on one field, an exact Pardot name beats an alias, which beats a
    value derived from `name`; among equals the trait that comes first in the input wins. A bad
    value still takes its field (a lower-ranked trait does not quietly stand in) and is an error.

    Without `json_values` (v3/v4) values are strings (booleans "1"/"0", numbers without
    exponent, dates in ISO 8601); with it (v5) they stay JSON-native (booleans, numbers), with
    dates as ISO 8601 text. Lists are only
    accepted for multi-value custom fields and are returned as lists; the client spreads them
    into `<field>_0`, `<field>_1`... for v3/v4.
    """
    # Where each trait goes depends only on the record's shape (which traits are set, and the
    # parts of its address and company objects), and a stream's records nearly all share a
    # few shapes: the placement is worked out once per shape (_placement_for) and the values
    # are only read and formatted here.
    shape = _shape_of(traits)
    placement = catalog.placements.get(shape)
    if placement is None:
        placement = _placement_for(shape, catalog)
        if len(catalog.placements) < _PLACEMENT_CACHE_LIMIT:
            catalog.placements[shape] = placement
    return _apply(placement, traits, json_values)


_SCALAR_TYPES = frozenset({str, int, float, bool})
# (trait, its set parts) for an object, the trait alone for anything else; unset traits are
# left out.
_Shape = tuple["str | tuple[str, tuple[Any, ...]]", ...]


def _shape_of(traits: Mapping[str, Any]) -> _Shape:
    shape: list[str | tuple[str, tuple[Any, ...]]] = []
    for key, value in traits.items():
        if value is None:
            continue
        kind = type(value)
        if kind in _SCALAR_TYPES or (kind is not dict and not isinstance(value, Mapping)):
            shape.append(key)
        elif None in value.values():
            shape.append((key, tuple(part for part, item in value.items() if item is not None)))
        else:
            shape.append((key, tuple(value)))
    return tuple(shape)


@dataclass(frozen=True)
class _Placement:
    """Where the traits of one shape go, in the order the fields are written."""

    # (field name, target, trait, part of an object trait or None, path for messages)
    steps: tuple[tuple[str, _Target, str, Any, str], ...]
    unknown: tuple[str, ...]
    # The trait holding a full name, and which of first_name / last_name it may fill.
    full_name: tuple[str, _Target | None, _Target | None] | None = None


def _placement_for(shape: _Shape, catalog: FieldCatalog) -> _Placement:
    # Candidates: (rank, position, target, trait, part, path); sorted by (rank, position).
    candidates: list[tuple[int, int, _Target, str, Any, str]] = []
    unknown: list[str] = []
    full_name: str | None = None
    for entry in shape:
        key, parts = (entry, None) if isinstance(entry, str) else entry
        action, target, rank = catalog.rules.get(key) or _rule_for(key, catalog)
        if action == _FIELD or (action in (_ADDRESS, _COMPANY) and parts is None):
            if target is None:
                unknown.append(key)
            else:
                candidates.append((rank, len(candidates), target, key, None, key))
        elif action == _FULL_NAME:
            full_name = full_name or key
        elif action in (_ADDRESS, _COMPANY):
            for part in parts or ():
                path = f"{key}.{part}"
                part_target = _object_part_target(action, part)
                if part_target is None:
                    unknown.append(path)
                else:
                    candidates.append((_ALIAS, len(candidates), part_target, key, part, path))
    candidates.sort(key=lambda candidate: candidate[:2])
    steps: list[tuple[str, _Target, str, Any, str]] = []
    taken: set[str] = set()
    for _rank, _position, target, key, part, path in candidates:
        if target.name not in taken:
            taken.add(target.name)
            steps.append((target.name, target, key, part, path))
    name_targets = None
    if full_name is not None:
        first, last = _standard_target("first_name"), _standard_target("last_name")
        name_targets = (
            full_name,
            None if first.name in taken else first,
            None if last.name in taken else last,
        )
    return _Placement(tuple(steps), tuple(unknown), name_targets)


def _object_part_target(action: int, part: Any) -> _Target | None:
    """Where a part of Segment's address or company object goes, if anywhere."""
    snake = snake_case(str(part))
    if action == _ADDRESS:
        name = _ADDRESS_PARTS.get(snake)
        return _standard_target(name) if name else None
    # Segment's company object also has id, industry, plan...: those describe the account,
    # not the prospect, so they are reported rather than guessed at.
    return _standard_target("company") if snake == "name" else None


def _apply(placement: _Placement, traits: Mapping[str, Any], json_values: bool) -> MappedFields:
    values: dict[str, FieldValue] = {}
    errors: list[RecordError] = []
    derived: list[tuple[_Target, str, str]] = []
    if placement.full_name is not None:
        key, first, last = placement.full_name
        try:
            derived = _name_parts(key, traits[key], first, last)
        except RecordError as error:
            errors.append(error)
    for name, target, key, part, path in placement.steps:
        value = traits[key] if part is None else traits[key][part]
        if (
            type(value) is str
            and target.kind == "text"
            and not target.multi
            and len(value) <= MAX_TEXT_LENGTH
            and not value.isspace()
            and value.isascii()
        ):
            values[name] = value  # the common case, as _format_for_field would have it
            continue
        try:
            formatted = _format_for_field(target, path, value, json_values)
        except RecordError as error:
            errors.append(error)
            continue
        if formatted is not NOT_SENT:
            values[name] = formatted
    for target, path, text in derived:
        try:
            values[target.name] = _format_for_field(target, path, text, json_values)
        except RecordError as error:
            errors.append(error)
    return MappedFields(values=values, unknown=list(placement.unknown), errors=errors)


def _name_parts(
    key: str, value: Any, first: _Target | None, last: _Target | None
) -> list[tuple[_Target, str, str]]:
    """first_name/last_name from a full name: the last word is the last name.

    Each half only fills a field no other trait set, so an explicit first or last name wins.
    """
    _reject_containers(key, value)
    words = _as_text(value, key).split()
    if not words:
        return []
    if len(words) == 1:
        return [(first, key, words[0])] if first else []
    parts = [(first, key, " ".join(words[:-1])), (last, key, words[-1])]
    return [(target, path, text) for target, path, text in parts if target is not None]


def _rule_for(key: str, catalog: FieldCatalog) -> _Rule:
    """What the trait name `key` means for this catalog (cached in the catalog)."""
    snake = snake_case(key)
    rule: _Rule
    if snake in _IDENTITY_TRAITS:
        rule = (_SKIP, None, 0)
    elif snake == "name" and _find_custom_field(key, catalog) is None:
        rule = (_FULL_NAME, None, 0)
    else:
        target, rank = _resolve(key, snake, catalog) or (None, 0)
        action = {"address": _ADDRESS, "company": _COMPANY}.get(snake, _FIELD)
        rule = (action, target, rank)
    if len(catalog.rules) < _RULE_CACHE_LIMIT:
        catalog.rules[key] = rule
    return rule


def to_v5_name(name: str, catalog: FieldCatalog) -> str:
    """The v5 spelling of a v3/v4 field name: `first_name` -> `firstName`.

    Custom fields go by their apiFieldId (`org_id` -> `org_id__c`): real v5 refuses the bare
    fieldId in bodies (154) and in `fields` (51).
    """
    known = catalog.v5_names.get(name)
    if known is None:
        # Asked for every field of every v5 record: the custom fields' scan and the spelling
        # are worked out once per name.
        custom_field = _find_custom_field(name, catalog)
        if custom_field is not None:
            known = custom_field.v5_name
        else:
            first, *rest = snake_case(name).split("_")
            known = first + "".join(word.capitalize() for word in rest)
        catalog.v5_names[name] = known
    return known


def validate_email(email: str | None, field: str = "email") -> str:
    """Return `email` with surrounding whitespace removed, or raise RecordError naming `field`.

    Plausible, not RFC-complete: one @, no whitespace, a dotted domain of letters (any script,
    so IDN domains pass), digits and inner hyphens, and at most 255 characters (Pardot's limit;
    it answers longer ones with error 4 "Invalid prospect email address").
    """
    if (
        type(email) is str
        and len(email) <= MAX_EMAIL_LENGTH
        and _EMAIL.fullmatch(email)
        and not email.rpartition(".")[2].isdigit()
    ):
        # Nearly every email: one match says all the checks below would pass (it allows no
        # whitespace, so there is nothing to strip either).
        return email
    if email is None:
        raise RecordError(field, "the email address is missing")
    if not isinstance(email, str):
        raise RecordError(field, f"an email address must be text, got {type(email).__name__}")
    candidate = email.strip()
    if not candidate:
        raise RecordError(field, "the email address is missing")
    if len(candidate) > MAX_EMAIL_LENGTH:
        raise RecordError(
            field,
            f"the email address is {len(candidate)} characters long; "
            f"Pardot allows at most {MAX_EMAIL_LENGTH}",
        )
    if any(character.isspace() for character in candidate):
        raise RecordError(field, f"{candidate!r} contains whitespace")
    if candidate.count("@") != 1:
        raise RecordError(field, f"{candidate!r} must contain exactly one @")
    local_part, domain = candidate.split("@")
    if not _EMAIL_LOCAL_PART.fullmatch(local_part):
        raise RecordError(field, f"{candidate!r} has an invalid part before the @")
    labels = domain.split(".")
    if len(labels) < 2:
        raise RecordError(field, f"{candidate!r} has no dot in its domain")
    if not all(_DOMAIN_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        raise RecordError(field, f"{candidate!r} has an invalid domain")
    return candidate


def _find_custom_field(name: str, catalog: FieldCatalog) -> CustomField | None:
    """The custom field `name` refers to: same field_id ignoring case, else same snake_case."""
    lowered = name.lower()
    for field_id, custom_field in catalog.custom.items():
        if field_id.lower() == lowered:
            return custom_field
    snake = snake_case(name)
    for field_id, custom_field in catalog.custom.items():
        if snake_case(field_id) == snake:
            return custom_field
    return None


def _resolve(key: str, snake: str, catalog: FieldCatalog) -> tuple[_Target, int] | None:
    """The field a top-level trait writes and its rank, or None when it matches nothing
    writable."""
    if snake in READ_ONLY_FIELDS:
        return None
    if snake in STANDARD_FIELDS:
        return _standard_target(snake), _EXACT
    custom_field = _find_custom_field(key, catalog)
    if custom_field is not None:
        return _custom_target(custom_field), _EXACT
    if snake in _TRAIT_ALIASES:
        return _standard_target(_TRAIT_ALIASES[snake]), _ALIAS
    if snake == "address":
        # Segment documents `address` as an object; a plain string can only be the street.
        return _standard_target("address_one"), _ALIAS
    return None


@functools.cache
def _standard_target(name: str) -> _Target:
    if name in _LONG_TEXT_FIELDS:
        return _Target(name, "long_text")
    if name in _INTEGER_FIELDS:
        return _Target(name, "integer")
    if name in _BOOLEAN_FIELDS:
        return _Target(name, "boolean")
    return _Target(name, "text")


def _custom_target(custom_field: CustomField) -> _Target:
    pardot_type = custom_field.type.strip().lower()
    multi = custom_field.multi or pardot_type in _MULTI_VALUE_TYPES
    kind: _FieldKind
    if pardot_type == "number":
        kind = "number"
    elif pardot_type == "date":
        kind = "date"
    elif pardot_type == "textarea":
        kind = "long_text"
    else:
        kind = "text"
    return _Target(custom_field.field_id, kind, multi)


def _format_for_field(target: _Target, path: str, value: Any, json_values: bool) -> FieldValue:
    if type(value) is str and not target.multi and target.kind in ("text", "long_text"):
        # Text into a text field, in short (the same checks as _format_scalar's).
        if not value or value.isspace():
            return ""
        limit = MAX_LONG_TEXT_LENGTH if target.kind == "long_text" else MAX_TEXT_LENGTH
        if len(value) > limit:
            raise RecordError(
                path,
                f"the value is {len(value)} characters long; "
                f"Pardot allows at most {limit} in {target.name}",
            )
        return value if value.isascii() else check_unicode(path, value)
    if target.multi:
        # Always a list, which v3/v4 send as <field>_0, <field>_1...: Pardot ignores a blank
        # `<field>=` for a multi-value field, so blank text (or an empty list) becomes the
        # empty list, sent as the `<field>_0=` that clears it; v5 clears with [].
        if not isinstance(value, (list, tuple)):
            _reject_containers(path, value)
            value = (value,)
        items: list[Any] = []
        for index, item in enumerate(value):
            if item is None:
                continue
            if isinstance(item, (Mapping, list, tuple)):
                raise RecordError(
                    path, f"item {index} is {_container_name(item)}; expected single values"
                )
            formatted = _format_scalar(target, path, item, json_values)
            if formatted != "":
                items.append(formatted)
        return items
    _reject_containers(path, value)
    return _format_scalar(target, path, value, json_values)


def _format_scalar(target: _Target, path: str, value: Any, json_values: bool) -> Any:
    # Blank text is how Pardot clears a field, whatever its type, so it is not "not a number".
    if isinstance(value, str) and not value.strip():
        # Except a flag, which has no empty state: clearing is_do_not_email would turn an
        # opt-out off because a CSV cell was empty (and v5 refuses "" for a boolean, record
        # and all). A blank flag is left out, as null is.
        return NOT_SENT if target.kind == "boolean" else ""
    if target.kind in ("integer", "number"):
        number = _parse_number(path, value)
        if target.kind == "integer" and number != number.to_integral_value():
            raise RecordError(path, f"{target.name} must be a whole number, got {value!r}")
        if json_values:
            return int(number) if number == number.to_integral_value() else float(number)
        return _decimal_text(number)
    if target.kind == "boolean":
        flag = _parse_boolean(path, value)
        if json_values:
            return flag
        return "1" if flag else "0"
    if target.kind == "date":
        return _date_text(path, value)

    # Text fields take text in every version: v5 refuses a JSON boolean for one, record and
    # all, and the text is the same whichever version wrote it. Only v5's multi-value lists
    # keep JSON values.
    formatted = _json_native(value, path) if json_values and target.multi else _as_text(value, path)
    if isinstance(formatted, str):
        limit = MAX_LONG_TEXT_LENGTH if target.kind == "long_text" else MAX_TEXT_LENGTH
        if len(formatted) > limit:
            raise RecordError(
                path,
                f"the value is {len(formatted)} characters long; "
                f"Pardot allows at most {limit} in {target.name}",
            )
        if not formatted.isascii():
            check_unicode(path, formatted)
    return formatted


def _reject_containers(path: str, value: Any) -> None:
    if isinstance(value, (Mapping, list, tuple)):
        raise RecordError(path, f"expected a single value, got {_container_name(value)}")


def _container_name(value: Any) -> str:
    return "an object" if isinstance(value, Mapping) else "a list"


def _as_text(value: Any, path: str) -> str:
    """A scalar as v3/v4 form text."""
    if isinstance(value, str):
        return value
    # bool before int: bool is an int subclass, and Pardot reads checkboxes as 1/0.
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (float, Decimal)):
        return _decimal_text(_finite_decimal(path, value))
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    raise RecordError(path, f"unsupported value type {type(value).__name__}")


def _json_native(value: Any, path: str) -> str | bool | int | float:
    """A scalar as a v5 JSON value."""
    if isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RecordError(path, f"{value!r} is not a finite number")
        return value
    if isinstance(value, Decimal):
        number = _finite_decimal(path, value)
        return int(number) if number == number.to_integral_value() else float(number)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    raise RecordError(path, f"unsupported value type {type(value).__name__}")


def _finite_decimal(path: str, value: float | Decimal) -> Decimal:
    # str(float) is the shortest repr that round-trips, so 0.1 stays 0.1, not 0.1000000000000000055.
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if not number.is_finite():
        raise RecordError(path, f"{value!r} is not a finite number")
    return number


def _decimal_text(number: Decimal) -> str:
    """Plain notation: Pardot rejects exponents such as 1E+3 or 1e-07."""
    if number == number.to_integral_value():
        return str(int(number))
    return format(number, "f")


# A number as Pardot's own check (PHP) reads one: ASCII digits, no digit separators.
_PARDOT_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Beyond what a double holds: Pardot could not keep the value as it was written.
_NUMBER_EXPONENT_LIMIT = 300


def is_number_field(catalog: FieldCatalog, name: str | None) -> bool:
    """Whether `name` is a Number custom field: Pardot keeps its values as numbers."""
    custom = catalog.custom.get(name) if name else None
    return custom is not None and custom.type.strip().lower() == "number"


def canonical_number(value: Any) -> str | None:
    """A value as a Number field holds it, as text; None when Pardot would not take it.

    Pardot keeps a number, not the text written, and reads it back as a JSON number (recorded
    real v4 traffic): `00123` comes back 123 and `12.50` 12.5. So a lookup value in a Number
    field is compared in this form on both sides, or a record would never find its prospect.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not _PARDOT_NUMBER.fullmatch(text):
            return None
        number = Decimal(text)
    elif isinstance(value, (int, Decimal)):
        number = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            return None
        number = Decimal(str(value))
    else:
        return None
    if not number.is_finite() or (number and abs(number.adjusted()) > _NUMBER_EXPONENT_LIMIT):
        return None
    return _decimal_text(number.normalize())


def _parse_number(path: str, value: Any) -> Decimal:
    if isinstance(value, bool):
        raise RecordError(path, "expected a number, got a boolean")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, (float, Decimal)):
        return _finite_decimal(path, value)
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise RecordError(path, f"expected a number, got {value!r}") from None
        if not number.is_finite():
            raise RecordError(path, f"expected a number, got {value!r}")
        return number
    raise RecordError(path, f"expected a number, got {type(value).__name__}")


_TRUE_WORDS = frozenset({"true", "yes", "1"})
_FALSE_WORDS = frozenset({"false", "no", "0"})


def _parse_boolean(path: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise RecordError(path, f"expected true or false, got {value!r}")


def _date_text(path: str, value: Any) -> str:
    """A date field's value as YYYY-MM-DD, the one form every Pardot date parser takes.

    ISO 8601 text in any form Python reads (20240131, 2024-W05-3, a date-time) is sent as its
    calendar date as written, without time-zone conversion: v4 drops a date it cannot parse
    without a word (the notes), and a date-time would be read in the account's time zone,
    which can move it a day.
    """
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        parsed = _iso_date(value.strip())
        if parsed is not None:
            return parsed.isoformat()
    raise RecordError(path, f"expected a date (YYYY-MM-DD or ISO 8601), got {value!r}")


def _iso_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    try:
        # Python 3.10's parser does not know the "Z" suffix that most exports use.
        moment = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return None
    return moment.date()
