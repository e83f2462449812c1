"""Pardot API v5: JSON in and out, camelCase names, ``/api/v5/objects/...``.

Handlers run with the emulator lock held, raise ``PardotError`` (rendered as
``{"code": N, "message": "..."}``) and return an ``ApiResult`` with a JSON-ready payload.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from . import v5_imports
from .clock import parse_timestamp, render_iso, whole_seconds
from .context import ApiContext, ApiResult, json_object
from .errors import MESSAGES, PardotError
from .fields import (
    BOOLEAN_FIELDS,
    TIMESTAMP_FIELDS,
    V5_CUSTOM_SUFFIX,
    V5_SALESFORCE_ID,
    V5_TO_SNAKE,
    WRITE_ONLY,
)
from .store import CustomField, Prospect, Store, is_valid_email

PROSPECTS = "/api/v5/objects/prospects"
UPSERT_LATEST = PROSPECTS + "/do/upsertLatestByEmail"
CUSTOM_FIELDS = "/api/v5/objects/custom-fields"
MAX_LIMIT = 1000
DEFAULT_LIMIT = 200
_ONE_PROSPECT = re.compile(r"^/api/v5/objects/prospects/(?P<id>[^/]+)$")

_ROUTES: dict[tuple[str, str], str] = {
    ("GET", PROSPECTS): "v5.prospects.query",
    ("POST", PROSPECTS): "v5.prospects.create",
    ("POST", UPSERT_LATEST): "v5.prospects.upsertLatestByEmail",
    ("GET", "one"): "v5.prospects.read",
    ("PATCH", "one"): "v5.prospects.update",
    ("GET", CUSTOM_FIELDS): "v5.customFields.query",
}
UNKNOWN = "v5.unknown"


@dataclass(frozen=True)
class V5Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes
    content_type: str = ""

    @property
    def key(self) -> str:
        return route(self.method, self.path)

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    @property
    def prospect_id(self) -> str:
        match = _ONE_PROSPECT.match(self.path)
        return match["id"] if match else ""


def route(method: str, path: str) -> str:
    imports = v5_imports.route(method, path)
    if imports is not None:
        return imports or UNKNOWN
    shape = "one" if path != UPSERT_LATEST and _ONE_PROSPECT.match(path) else path
    return _ROUTES.get((method, shape), UNKNOWN)


def handle(ctx: ApiContext, req: V5Request) -> ApiResult:
    op = _OPS.get(req.key) or v5_imports.OPS.get(req.key)
    if op is None:
        known = req.path in (PROSPECTS, UPSERT_LATEST, CUSTOM_FIELDS)
        import_path = v5_imports.route(req.method, req.path) is not None
        if known or import_path or _ONE_PROSPECT.match(req.path):
            raise PardotError(60)
        raise PardotError(2, "Not found", status=404)
    return op(ctx, req)


# -- shared pieces ----------------------------------------------------------------------


def _not_found() -> PardotError:
    # UNCONFIRMED code: v5 "not found" reuses the v3/v4 "Invalid prospect ID" code.
    return PardotError(3, "Object not found", status=404)


def _readable(store: Store, name: str) -> bool:
    snake = V5_TO_SNAKE.get(name)
    if snake is not None:
        return snake not in WRITE_ONLY
    return name == V5_SALESFORCE_ID or store.v5_custom_field(name) is not None


def _check_fields(names: list[str], readable: Callable[[str], bool]) -> list[str]:
    invalid = [name for name in names if not readable(name)]
    if invalid:
        # Real Pardot's wording, naming the first name it does not know.
        raise PardotError(
            51,
            f"Invalid parameter: fields. It contains an invalid or unknown field: {invalid[0]}.",
        )
    return names


def _fields(req: V5Request, readable: Callable[[str], bool], *, required: bool) -> list[str] | None:
    text = req.param("fields")
    if not text:
        if required:
            # Code per the project brief; the message follows Pardot's v5 wording style.
            raise PardotError(31, "Missing required parameter: fields")
        return None
    return _check_fields([n.strip() for n in text.split(",") if n.strip()], readable)


def render_prospect(store: Store, prospect: Prospect, fields: list[str]) -> dict[str, Any]:
    """Only the requested fields, plus id (which every v5 answer carries)."""
    out: dict[str, Any] = {"id": prospect.id}
    for name in fields:
        out[name] = _value(store, prospect, name)
    return out


def _value(store: Store, prospect: Prospect, name: str) -> Any:
    if name == V5_SALESFORCE_ID:
        return prospect.values.get("crm_contact_fid") or prospect.values.get("crm_lead_fid")
    snake = V5_TO_SNAKE.get(name)
    if snake is None:
        custom = store.v5_custom_field(name)
        if custom is None:
            return None
        value = prospect.values.get(custom.field_id)
        # A custom field with no value reads back as null, multi-value ones included.
        if custom.multi:
            return list(value) if value else None
        return value
    if snake == "id":
        return prospect.id
    if snake in TIMESTAMP_FIELDS:
        return render_iso(getattr(prospect, snake))
    value = prospect.values.get(snake)
    return bool(value) if snake in BOOLEAN_FIELDS else value


def _default_fields(body: dict[str, Any]) -> list[str]:
    # UNCONFIRMED: without ?fields=, a write answers with email plus the fields it wrote.
    return list(dict.fromkeys(["email", *body]))


def _find(store: Store, req: V5Request) -> Prospect:
    text = req.prospect_id
    prospect = store.get(int(text)) if text.isdigit() else None
    if prospect is None or prospect.is_archived:
        raise _not_found()
    return prospect


# -- prospects --------------------------------------------------------------------------


def _create(ctx: ApiContext, req: V5Request) -> ApiResult:
    store = ctx.store
    body = json_object(req.body)
    fields = _fields(req, lambda n: _readable(store, n), required=False)
    changes = store.changes_v5(body)
    if "email" not in changes:
        raise PardotError(153, f"{MESSAGES[153]}: email")
    prospect = store.create(changes)
    return ApiResult(201, render_prospect(store, prospect, fields or _default_fields(body)))


def _read(ctx: ApiContext, req: V5Request) -> ApiResult:
    store = ctx.store
    fields = _fields(req, lambda n: _readable(store, n), required=True)
    assert fields is not None
    return ApiResult(200, render_prospect(store, _find(store, req), fields))


def _update(ctx: ApiContext, req: V5Request) -> ApiResult:
    store = ctx.store
    body = json_object(req.body)
    fields = _fields(req, lambda n: _readable(store, n), required=False)
    prospect = _find(store, req)
    store.update(prospect, store.changes_v5(body))
    return ApiResult(200, render_prospect(store, prospect, fields or _default_fields(body)))


# The documented body of upsertLatestByEmail; the notes' v5 validation errors: any other
# property is refused with 154 "Invalid property in request: X".
_UPSERT_LATEST_PROPERTIES = frozenset(
    {"matchEmail", "prospect", "fields", "secondaryDeletedSearch"}
)


def _refuse_unknown_properties(body: dict[str, Any], known: frozenset[str]) -> None:
    unknown = sorted(name for name in body if name not in known)
    if unknown:
        # Sorted so that the property named does not depend on the client's key order.
        raise PardotError(154, f"{MESSAGES[154]}: {unknown[0]}")


def _upsert_latest(ctx: ApiContext, req: V5Request) -> ApiResult:
    """Update the active prospect with this email that was active last (ties: highest id),
    else, with secondaryDeletedSearch, restore the latest archived one, else create."""
    store = ctx.store
    body = json_object(req.body)
    _refuse_unknown_properties(body, _UPSERT_LATEST_PROPERTIES)
    match_email = body.get("matchEmail")
    if match_email is None:
        raise PardotError(153, f"{MESSAGES[153]}: matchEmail")
    if not is_valid_email(match_email):
        raise PardotError(4, f"{MESSAGES[4]}: matchEmail")
    submitted = body.get("prospect")
    if not isinstance(submitted, dict):
        raise PardotError(153, f"{MESSAGES[153]}: prospect")
    secondary = body.get("secondaryDeletedSearch", False)
    if not isinstance(secondary, bool):
        raise PardotError(154, f"{MESSAGES[154]}: secondaryDeletedSearch")
    requested = body.get("fields")
    if requested is None:
        fields = _fields(req, lambda n: _readable(store, n), required=False) or []
    elif isinstance(requested, list) and all(isinstance(n, str) for n in requested):
        fields = _check_fields(requested, lambda n: _readable(store, n))
    else:
        raise PardotError(154, f"{MESSAGES[154]}: fields")
    changes = store.changes_v5(submitted)

    target = store.latest(store.by_email(match_email))
    if target is None and secondary:
        target = store.latest(store.by_email(match_email, archived=True))
    if target is not None:
        store.update(target, changes, unarchive=True)
        status = 200
    else:
        changes.setdefault("email", match_email)
        target = store.create(changes)
        # Production clients see 200 for creates too; 201 is an emulator option so that
        # clients are tested against both.
        status = ctx.upsert_created_status
    # UNCONFIRMED response shape: {id, email}, plus any requested fields.
    payload = {"id": target.id, "email": target.email, **render_prospect(store, target, fields)}
    return ApiResult(status, payload)


# -- query ------------------------------------------------------------------------------

_ORDERABLE: dict[str, Callable[[Prospect], tuple[float, int]]] = {
    "id": lambda p: (0.0, p.id),
    "createdAt": lambda p: (p.created_at, p.id),
    "updatedAt": lambda p: (p.updated_at, p.id),
    "lastActivityAt": Prospect.recency,
}
_TIME_FILTERS: dict[str, tuple[str, bool]] = {
    "createdAtAfter": ("created_at", True),
    "createdAtBefore": ("created_at", False),
    "updatedAtAfter": ("updated_at", True),
    "updatedAtBefore": ("updated_at", False),
}
_ID_FILTERS = ("idGreaterThan", "idLessThan")


def _query_state(req: V5Request) -> dict[str, Any]:
    """The full query, validated; it is what a nextPageToken carries to the next page."""
    state: dict[str, Any] = {"offset": 0}
    limit_text = req.param("limit")
    limit = _integer(limit_text, 23) if limit_text else DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise PardotError(23)
    state["limit"] = limit
    for name in _ID_FILTERS:
        text = req.param(name)
        if text:
            state[name] = _integer(text, 16)
    for name in _TIME_FILTERS:
        text = req.param(name)
        if text:
            try:
                state[name] = parse_timestamp(text)
            except ValueError as exc:
                raise PardotError(7) from exc
    email = req.param("email")
    if email:
        state["email"] = email
    deleted = (req.param("deleted") or "false").lower()
    if deleted not in ("true", "false", "all"):
        raise PardotError(27)
    state["deleted"] = deleted
    order = (req.param("orderBy") or "id asc").split()
    if (
        len(order) not in (1, 2)
        or order[0] not in _ORDERABLE
        or (len(order) == 2 and order[1].lower() not in ("asc", "desc"))
    ):
        raise PardotError(19, "Invalid value specified for orderBy")
    state["orderBy"] = [order[0], order[1].lower() if len(order) == 2 else "asc"]
    return state


def _integer(text: str, code: int) -> int:
    if not text.strip().isdigit():
        raise PardotError(code)
    return int(text.strip())


def _encode_token(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")


def _decode_token(token: str) -> dict[str, Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error) as exc:
        raise PardotError(5, "Invalid value specified for nextPageToken") from exc
    if not isinstance(state, dict) or not isinstance(state.get("offset"), int):
        raise PardotError(5, "Invalid value specified for nextPageToken")
    return state


def _archived(state: dict[str, Any]) -> bool | None:
    """``deleted``: false -> active only, true -> archived only, all -> None (both)."""
    deleted = state.get("deleted", "false")
    return None if deleted == "all" else deleted == "true"


def _matches(store: Store, state: dict[str, Any]) -> list[Prospect]:
    archived = _archived(state)
    if "email" in state:
        # The store's email index: the few prospects with that email, not the whole unit.
        matches = store.by_email(state["email"], archived=archived)
    else:
        matches = [
            p
            for p in store.all(include_archived=True)
            if archived is None or p.is_archived == archived
        ]
    matches = store.visible(matches)
    if "idGreaterThan" in state:
        matches = [p for p in matches if p.id > state["idGreaterThan"]]
    if "idLessThan" in state:
        matches = [p for p in matches if p.id < state["idLessThan"]]
    for name, (attribute, after) in _TIME_FILTERS.items():
        if name in state:
            matches = _time_filter(matches, attribute, whole_seconds(state[name]), after)
    field, direction = state.get("orderBy", ["id", "asc"])
    matches.sort(key=_ORDERABLE[field], reverse=direction == "desc")
    return matches


def _time_filter(
    matches: list[Prospect], attribute: str, bound: int, after: bool
) -> list[Prospect]:
    # Second precision, as Pardot stores timestamps: "after 12:00:00" excludes 12:00:00.4.
    kept = []
    for prospect in matches:
        value = whole_seconds(getattr(prospect, attribute))
        if (value > bound) if after else (value < bound):
            kept.append(prospect)
    return kept


def _query(ctx: ApiContext, req: V5Request) -> ApiResult:
    store = ctx.store
    fields = _fields(req, lambda n: _readable(store, n), required=True)
    assert fields is not None
    token = req.param("nextPageToken")
    # A token carries the whole query; filters sent alongside it are ignored.
    state = _decode_token(token) if token else _query_state(req)
    offset, limit = state["offset"], state.get("limit", DEFAULT_LIMIT)
    field, direction = state.get("orderBy", ["id", "asc"])
    if field == "id" and "email" not in state and not any(n in state for n in _TIME_FILTERS):
        # The default order, and how the target scans: straight from the store's ordered
        # ids, so each nextPageToken page costs O(page) however large the unit is.
        page, total = store.page_by_id(
            archived=_archived(state),
            above=state.get("idGreaterThan"),
            below=state.get("idLessThan"),
            offset=offset,
            limit=limit,
            descending=direction == "desc",
        )
    else:
        matches = _matches(store, state)
        page, total = matches[offset : offset + limit], len(matches)
    next_token = next_url = None
    if offset + limit < total:
        next_token = _encode_token({**state, "offset": offset + limit})
        query = urlencode({"fields": ",".join(fields), "nextPageToken": next_token})
        next_url = f"{ctx.base_url}{PROSPECTS}?{query}"
    values = [render_prospect(store, p, fields) for p in page]
    return ApiResult(200, {"values": values, "nextPageToken": next_token, "nextPageUrl": next_url})


# -- custom fields ----------------------------------------------------------------------

_CUSTOM_FIELD_VALUES: dict[str, Callable[[CustomField], Any]] = {
    "id": lambda c: c.id,
    "name": lambda c: c.name,
    "fieldId": lambda c: c.field_id,
    "apiFieldId": lambda c: c.field_id + V5_CUSTOM_SUFFIX,
    "type": lambda c: c.type,
    "isRecordMultipleResponses": lambda c: c.multi,
    "createdAt": lambda c: render_iso(c.created_at),
    "updatedAt": lambda c: render_iso(c.updated_at),
}


def _custom_fields(ctx: ApiContext, req: V5Request) -> ApiResult:
    fields = _fields(req, lambda n: n in _CUSTOM_FIELD_VALUES, required=True)
    assert fields is not None
    values = [
        {"id": custom.id, **{name: _CUSTOM_FIELD_VALUES[name](custom) for name in fields}}
        for custom in ctx.store.custom_fields()
    ]
    return ApiResult(200, {"values": values, "nextPageToken": None, "nextPageUrl": None})


_OPS: dict[str, Callable[[ApiContext, V5Request], ApiResult]] = {
    "v5.prospects.create": _create,
    "v5.prospects.read": _read,
    "v5.prospects.update": _update,
    "v5.prospects.query": _query,
    "v5.prospects.upsertLatestByEmail": _upsert_latest,
    "v5.customFields.query": _custom_fields,
}
