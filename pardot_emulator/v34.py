"""Pardot API v3 and v4: ``/api/{object}/version/{3|4}/do/{op}[/{email|id|fid}/{value}...]``.

Handlers run with the emulator lock held, raise ``PardotError`` for whole-request failures
and return an ``ApiResult`` whose payload the server encodes as JSON (``format=json``) or XML.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from .clock import parse_timestamp, render_v34, whole_seconds
from .context import ApiContext, ApiResult, strict_json
from .errors import PardotError
from .fields import TIMESTAMP_FIELDS, V34_ORDER
from .render import batch_result, ok, one_or_many
from .store import CustomField, Prospect, Store, is_valid_email

MAX_BATCH = 50
MAX_QUERY_LIMIT = 200

_PATH = re.compile(
    r"^/api/(?P<object>[A-Za-z]+)/version/(?P<version>[34])/do/(?P<op>[A-Za-z]+)"
    r"(?P<tail>(?:/[^/]*)*?)/?$"
)

Pairs = list[tuple[str, Any]]


@dataclass(frozen=True)
class V34Request:
    version: int
    object: str
    op: str
    # Identifiers from the path, e.g. {"email": "a+b@x.com"} for .../email/a%2Bb%40x.com
    idents: dict[str, str]
    # Query string and form body merged; the body comes last so it wins, as in PHP.
    params: dict[str, list[str]]

    @property
    def key(self) -> str:
        return f"v{self.version}.{self.object}.{self.op}"

    @property
    def as_json(self) -> bool:
        return (self.param("format") or "").lower() == "json"

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[-1] if values else None

    def pairs(self) -> Pairs:
        return [(name, values[-1]) for name, values in self.params.items() if values]


def parse(path: str, params: dict[str, list[str]]) -> V34Request | None:
    match = _PATH.match(path)
    if match is None:
        return None
    # Split before decoding so an encoded "/" inside an email stays part of the value.
    segments = [unquote(s) for s in match["tail"].strip("/").split("/")] if match["tail"] else []
    idents = {
        segments[i]: (segments[i + 1] if i + 1 < len(segments) else "")
        for i in range(0, len(segments), 2)
    }
    return V34Request(int(match["version"]), match["object"], match["op"], idents, params)


def handle(ctx: ApiContext, req: V34Request) -> ApiResult:
    if req.version == 3 and ctx.store.ampsea:
        raise PardotError(88)
    if req.version == 4 and not ctx.store.ampsea:
        raise PardotError(89)
    if req.object == "customField" and req.op == "query":
        return _custom_field_query(ctx.store)
    handler = _PROSPECT_OPS.get(req.op) if req.object == "prospect" else None
    if handler is None:
        raise PardotError(2)
    return handler(ctx.store, req)


# -- rendering --------------------------------------------------------------------------


def render_prospect(store: Store, prospect: Prospect, fields: list[str] | None = None) -> dict:
    """Pardot returns every standard field, and only the custom fields that hold a value,
    unless ``fields`` names what to return (``id`` is always included)."""
    if fields is None:
        out = {name: _standard(prospect, name) for name in V34_ORDER}
        for custom in store.custom_fields():
            value = prospect.values.get(custom.field_id)
            if value not in (None, []):
                out[custom.field_id] = _custom(custom, value)
        return out
    out = {"id": prospect.id}
    for name in fields:
        custom = store.custom_field(name)
        if name in V34_ORDER:
            out[name] = _standard(prospect, name)
        elif custom is not None:
            value = prospect.values.get(name)
            out[name] = _custom(custom, value) if value not in (None, []) else None
    return out


def _standard(prospect: Prospect, name: str) -> Any:
    if name == "id":
        return prospect.id
    if name in TIMESTAMP_FIELDS:
        return render_v34(getattr(prospect, name))
    return prospect.values.get(name)


def _custom(custom: CustomField, value: Any) -> Any:
    # Multi-value fields are <field><value>..</value>...</field> in XML, hence this shape.
    return {"value": one_or_many(list(value))} if custom.multi else value


def _ok_prospect(store: Store, prospect: Prospect, *, created: bool = False) -> ApiResult:
    return ApiResult(201 if created else 200, ok(prospect=render_prospect(store, prospect)))


# -- identifiers ------------------------------------------------------------------------


def _identifiers(req: V34Request, allowed: set[str]) -> dict[str, str]:
    if any(kind not in allowed for kind in req.idents):
        raise PardotError(2)
    idents = dict(req.idents)
    # id and fid are not writable fields, so as parameters they can only be identifiers.
    for name in ("id", "fid"):
        value = req.param(name)
        if name in allowed and name not in idents and value:
            idents[name] = value
    # With nothing in the path, an email parameter identifies (e.g. upsert?email=...).
    email = req.param("email")
    if not idents and "email" in allowed and email:
        idents["email"] = email
    if not idents:
        raise PardotError(13)
    return idents


def _parse_id(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def _by_id_or_fid(store: Store, idents: dict[str, str]) -> Prospect:
    """The prospect an id and/or fid names; both given must name the same one (else 81)."""
    by_id = by_fid = None
    if "id" in idents:
        pid = _parse_id(idents["id"])
        by_id = store.get(pid) if pid is not None else None
        if by_id is None:
            raise PardotError(3)
    if "fid" in idents:
        by_fid = store.by_fid(idents["fid"]) if idents["fid"] else None
        if by_fid is None:
            raise PardotError(77)
    if by_id is not None and by_fid is not None and by_id is not by_fid:
        raise PardotError(81)
    found = by_id or by_fid
    if found is None:
        raise PardotError(3)
    if found.is_archived:
        raise PardotError(132)
    return found


def _by_email(store: Store, email: str) -> list[Prospect]:
    matches = store.by_email(email) if email else []
    if not matches:
        raise PardotError(4)
    return matches


# -- operations shared by single and batch requests -------------------------------------


def _op_create(store: Store, version: int, email: Any, pairs: Pairs, fid: str | None) -> Prospect:
    if not is_valid_email(email):
        raise PardotError(4)
    changes = store.changes_v34(pairs, allow_email=False, version=version)
    changes["email"] = email
    return store.create(changes, fid=fid if version == 4 else None)


def _op_update(store: Store, version: int, idents: dict[str, str], pairs: Pairs) -> Prospect:
    if "email" in idents:
        prospect = _by_email(store, idents["email"])[0]
    else:
        prospect = _by_id_or_fid(store, idents)
    # v3 documents that update cannot change the email address; v4 can.
    store.update(prospect, store.changes_v34(pairs, allow_email=version == 4, version=version))
    return prospect


def _op_upsert_v3(store: Store, idents: dict[str, str], pairs: Pairs) -> tuple[Prospect, bool]:
    if "id" in idents:
        pid = _parse_id(idents["id"])
        found = store.get(pid) if pid is not None else None
        if found is not None:
            # Documented: upsert/id with an email parameter changes that prospect's email.
            store.update(
                found, store.changes_v34(pairs, allow_email=True, version=3), unarchive=True
            )
            return found, False
        # Documented: an unknown id falls back to the email parameter, else error 14.
        email = dict(pairs).get("email")
        if not email:
            raise PardotError(14)
        return _upsert_v3_by_email(store, email, pairs)
    return _upsert_v3_by_email(store, idents["email"], pairs)


def _upsert_v3_by_email(store: Store, email: Any, pairs: Pairs) -> tuple[Prospect, bool]:
    if not is_valid_email(email):
        raise PardotError(4)
    changes = store.changes_v34(pairs, allow_email=False, version=3)
    active = store.by_email(email)
    archived = store.latest(store.by_email(email, archived=True))
    target = active[0] if active else archived
    if target is not None:
        store.update(target, changes, unarchive=True)
        return target, False
    changes["email"] = email
    return store.create(changes), True


def _op_upsert_v4(store: Store, idents: dict[str, str], pairs: Pairs) -> tuple[Prospect, bool]:
    """Documented v4 rules: an id/fid match is updated (and unarchived); otherwise an email
    creates a new prospect (carrying the fid, if one was given); email alone always creates."""
    by_id = by_fid = None
    if "id" in idents:
        pid = _parse_id(idents["id"])
        by_id = store.get(pid) if pid is not None else None
    if idents.get("fid"):
        by_fid = store.by_fid(idents["fid"])
    if by_id is not None and by_fid is not None and by_id is not by_fid:
        raise PardotError(81)
    found = by_id or by_fid
    if found is not None:
        store.update(found, store.changes_v34(pairs, allow_email=True, version=4), unarchive=True)
        return found, False
    email = idents.get("email") or dict(pairs).get("email")
    if email:
        return _op_create(store, 4, email, pairs, idents.get("fid") or None), True
    if "id" in idents:
        raise PardotError(14)
    raise PardotError(77 if "fid" in idents else 13)


# -- single-prospect endpoints ----------------------------------------------------------


def _read(store: Store, req: V34Request) -> ApiResult:
    allowed = {"id", "email"} if req.version == 3 else {"id", "fid", "email"}
    idents = _identifiers(req, allowed)
    if "id" in idents or "fid" in idents:
        return _ok_prospect(store, _by_id_or_fid(store, idents))
    matches = store.visible(store.by_email(idents["email"]) if idents["email"] else [])
    if not matches:
        raise PardotError(4)
    if req.version == 3:
        return _ok_prospect(store, matches[0])
    rendered = [render_prospect(store, p) for p in matches]
    return ApiResult(200, ok(prospect=one_or_many(rendered)))


def _create(store: Store, req: V34Request) -> ApiResult:
    if set(req.idents) - {"email"}:
        raise PardotError(2)
    email = req.idents["email"] if "email" in req.idents else req.param("email")
    if email is None:
        raise PardotError(13)
    prospect = _op_create(store, req.version, email, req.pairs(), req.param("fid") or None)
    return _ok_prospect(store, prospect, created=True)


def _update(store: Store, req: V34Request) -> ApiResult:
    allowed = {"id", "email"} if req.version == 3 else {"id", "fid"}
    idents = _identifiers(req, allowed)
    return _ok_prospect(store, _op_update(store, req.version, idents, req.pairs()))


def _upsert(store: Store, req: V34Request) -> ApiResult:
    if req.version == 3:
        prospect, created = _op_upsert_v3(store, _identifiers(req, {"id", "email"}), req.pairs())
    else:
        idents = _identifiers(req, {"id", "fid", "email"})
        prospect, created = _op_upsert_v4(store, idents, req.pairs())
    return _ok_prospect(store, prospect, created=created)


# -- batches ----------------------------------------------------------------------------


def _batch_items(req: V34Request) -> list[tuple[str, Any]]:
    raw = req.param("prospects")
    try:
        data = strict_json(raw) if raw else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        # XML batch input is not emulated: it is reported as unparseable too.
        raise PardotError(71)
    container = data.get("prospects")
    if req.version == 3:
        if not isinstance(container, dict):
            raise PardotError(91)
        items = [(str(key), item) for key, item in container.items()]
    else:
        if not isinstance(container, list):
            raise PardotError(90)
        items = [(str(index), item) for index, item in enumerate(container)]
    if len(items) > MAX_BATCH:
        raise PardotError(70)
    return items


def _batch_item_v3(store: Store, mode: str, key: str, item: Any) -> bool:
    if not isinstance(item, dict):
        raise PardotError(91)
    pairs = list(item.items())
    idents = {"id": key} if key.isdigit() else {"email": key}
    if mode == "create":
        return _op_create(store, 3, idents.get("email"), pairs, None) is not None
    if mode == "update":
        _op_update(store, 3, idents, pairs)
        return False
    return _op_upsert_v3(store, idents, pairs)[1]


def _batch_item_v4(store: Store, mode: str, item: Any) -> bool:
    if not isinstance(item, dict):
        raise PardotError(90)
    pairs = list(item.items())
    idents = {k: str(item[k]) for k in ("id", "fid") if item.get(k) not in (None, "")}
    if mode == "create":
        return _op_create(store, 4, item.get("email"), pairs, idents.get("fid")) is not None
    if mode == "update":
        _op_update(store, 4, idents, pairs)
        return False
    return _op_upsert_v4(store, idents, pairs)[1]


def _batch(mode: str) -> Callable[[Store, V34Request], ApiResult]:
    def run(store: Store, req: V34Request) -> ApiResult:
        errors: dict[str, str] = {}
        created = False
        for key, item in _batch_items(req):
            # Each item is applied or rejected on its own; one bad item never stops the rest.
            try:
                if req.version == 3:
                    created = _batch_item_v3(store, mode, key, item) or created
                else:
                    created = _batch_item_v4(store, mode, item) or created
            except PardotError as exc:
                errors[key] = exc.message
        status = 201 if created and not errors else 200
        return ApiResult(status, batch_result(errors))

    return run


# -- query ------------------------------------------------------------------------------

_SORTS: dict[str, Callable[[Prospect], tuple[float, int]]] = {
    "id": lambda p: (0.0, p.id),
    "created_at": lambda p: (p.created_at, p.id),
    "updated_at": lambda p: (p.updated_at, p.id),
    "last_activity_at": Prospect.recency,
}
# Per the v3/v4 docs: id sorts ascending by default, the timestamps descending.
_DEFAULT_ORDER = {"id": "ascending"}

_TIME_FILTERS: dict[str, tuple[str, bool]] = {
    "created_after": ("created_at", True),
    "created_before": ("created_at", False),
    "updated_after": ("updated_at", True),
    "updated_before": ("updated_at", False),
    "last_activity_after": ("last_activity_at", True),
    "last_activity_before": ("last_activity_at", False),
}


def _int_param(
    req: V34Request,
    name: str,
    default: int | None,
    code: int,
    minimum: int = 0,
    maximum: int | None = None,
) -> int | None:
    text = req.param(name)
    if text is None or text == "":
        return default
    value = _parse_id(text.strip())
    if value is None or value < minimum or (maximum is not None and value > maximum):
        raise PardotError(code)
    return value


def _query(store: Store, req: V34Request) -> ApiResult:
    limit = _int_param(req, "limit", MAX_QUERY_LIMIT, 23, minimum=1, maximum=MAX_QUERY_LIMIT)
    offset = _int_param(req, "offset", 0, 21) or 0
    id_above = _int_param(req, "id_greater_than", None, 16)
    id_below = _int_param(req, "id_less_than", None, 16)
    deleted = (req.param("deleted") or "false").lower()
    if deleted not in ("true", "false"):
        raise PardotError(27)
    sort_by = req.param("sort_by") or "id"
    if sort_by not in _SORTS:
        raise PardotError(19)
    sort_order = req.param("sort_order") or _DEFAULT_ORDER.get(sort_by, "descending")
    if sort_order not in ("ascending", "descending"):
        raise PardotError(20)

    limit = limit or MAX_QUERY_LIMIT
    time_filters = {name: text for name in _TIME_FILTERS if (text := req.param(name))}
    if sort_by == "id" and not time_filters and store.read_lag <= 0:
        # How the target scans (sort_by=id, id_greater_than): straight from the store's
        # ordered ids, so a page costs O(page) however many prospects the unit holds.
        page, total = store.page_by_id(
            archived=deleted == "true",
            above=id_above,
            below=id_below,
            offset=offset,
            limit=limit,
            descending=sort_order == "descending",
        )
    else:
        everyone = store.visible(store.all(include_archived=True))
        matches = [p for p in everyone if p.is_archived == (deleted == "true")]
        if id_above is not None:
            matches = [p for p in matches if p.id > id_above]
        if id_below is not None:
            matches = [p for p in matches if p.id < id_below]
        for name, text in time_filters.items():
            attribute, after = _TIME_FILTERS[name]
            matches = _time_filter(matches, text, attribute, after=after)
        matches.sort(key=_SORTS[sort_by], reverse=sort_order == "descending")
        page, total = matches[offset : offset + limit], len(matches)

    fields_param = req.param("fields")
    fields = [f.strip() for f in fields_param.split(",") if f.strip()] if fields_param else None
    result: dict[str, Any] = {}
    if req.param("output") != "bulk":
        # Bulk output skips the count; that is what makes it cheap on real accounts.
        result["total_results"] = total
    if page:
        result["prospect"] = one_or_many([render_prospect(store, p, fields) for p in page])
    return ApiResult(200, ok(result=result))


def _time_filter(
    matches: list[Prospect], text: str, attribute: str, *, after: bool
) -> list[Prospect]:
    try:
        bound = whole_seconds(parse_timestamp(text))
    except ValueError as exc:
        raise PardotError(7) from exc
    kept = []
    for prospect in matches:
        stamp = getattr(prospect, attribute)
        if stamp is None:
            continue
        # Compared to the second, as Pardot stores them: "after 12:00:00" excludes 12:00:00.4.
        value = whole_seconds(stamp)
        if (value > bound) if after else (value < bound):
            kept.append(prospect)
    return kept


def _custom_field_query(store: Store) -> ApiResult:
    fields = store.custom_fields()
    result: dict[str, Any] = {"total_results": len(fields)}
    if fields:
        result["customField"] = one_or_many([custom.snapshot() for custom in fields])
    return ApiResult(200, ok(result=result))


_PROSPECT_OPS: dict[str, Callable[[Store, V34Request], ApiResult]] = {
    "read": _read,
    "create": _create,
    "update": _update,
    "upsert": _upsert,
    "batchCreate": _batch("create"),
    "batchUpdate": _batch("update"),
    "batchUpsert": _batch("upsert"),
    "query": _query,
}
