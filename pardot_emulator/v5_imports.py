"""Pardot API v5 Import API: ``/api/v5/imports``.

    POST  /api/v5/imports                          create (multipart: ``input`` JSON, optional
                                                   ``file`` CSV; or a plain JSON body)
    POST  /api/v5/imports/{id}/batches             add a CSV batch (multipart part ``file``)
    PATCH /api/v5/imports/{id}                     {"status": "Ready"}: queue it for processing
    GET   /api/v5/imports/{id}?fields=...          read it (``fields`` required, as v5 reads)
    GET   /api/v5/imports/{id}/do/downloadErrors   once Complete: a redirect to the error CSV

The checks and the processing are in ``imports``; this module is the v5 request and answer
shapes, and what v5 columns mean (``V5``: camelCase names, custom fields ``<fieldId>__c``, the
match columns ``matchId`` / ``matchEmail`` / ``matchSalesforceId``, rows that match nothing
created with ``createOnNoMatch``). Handlers run with the emulator lock held.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .clock import render_iso
from .context import ApiContext, ApiResult, json_object, strict_json
from .errors import MESSAGES, PardotError
from .imports import COMPLETE, FieldRule, Flavour, ImportJob, check_spec, not_found
from .multipart import is_multipart, parts
from .store import Prospect, Store

if TYPE_CHECKING:
    from .v5 import V5Request

IMPORTS = "/api/v5/imports"
_ONE = re.compile(r"^/api/v5/imports/(?P<id>[^/]+)$")
_BATCHES = re.compile(r"^/api/v5/imports/(?P<id>[^/]+)/batches$")
_ERRORS = re.compile(r"^/api/v5/imports/(?P<id>[^/]+)/do/downloadErrors$")
# Where the error file is served: outside /api/, like the pre-signed storage link Pardot's
# redirect points to (it needs no token and is not an API call).
ERROR_FILES = "/files/import-errors/"

_INPUT_KEYS = frozenset(
    {"operation", "object", "createOnNoMatch", "restoreDeleted", "fields", "status"}
)
_RULE_KEYS = {"overwrite": "overwrite", "nullOverwrite": "null_overwrite"}


def route(method: str, path: str) -> str | None:
    """The endpoint name of an import request, "" for a known path with a wrong method, or
    None when the path is not the Import API's."""
    shapes: list[tuple[bool, dict[str, str]]] = [
        (path == IMPORTS, {"POST": "v5.imports.create"}),
        (_ONE.match(path) is not None, {"GET": "v5.imports.read", "PATCH": "v5.imports.update"}),
        (_BATCHES.match(path) is not None, {"POST": "v5.imports.addBatch"}),
        (_ERRORS.match(path) is not None, {"GET": "v5.imports.downloadErrors"}),
    ]
    for matched, methods in shapes:
        if matched:
            return methods.get(method, "")
    return None


MATCH_COLUMNS = ("matchId", "matchEmail", "matchSalesforceId")
LIST_COLUMNS = ("addToList", "removeFromList")
# What a header needs when its rows may create prospects.
REQUIRED_FOR_CREATES = ("email", "campaignId")


def v5_column(store: Store, name: str) -> str | None:
    """The stored field a v5 import column writes: camelCase names and ``<fieldId>__c``."""
    return store.v5_writable_name(name)


def find_v5(job: ImportJob, store: Store, row: dict[str, str]) -> Prospect | None:
    """At most one match value; a row without one, or (with createOnNoMatch) matching nothing,
    creates."""
    matches = [(name, row[name].strip()) for name in MATCH_COLUMNS if row.get(name, "").strip()]
    if len(matches) > 1:
        raise PardotError(
            180, "Only one of matchId, matchEmail and matchSalesforceId may have a value in a row"
        )
    if not matches:
        return None
    prospect = _match(store, matches[0], job.restore_deleted)
    if prospect is None and not job.create_on_no_match:
        name, value = matches[0]
        raise not_found(_KINDS[name], value)
    return prospect


_KINDS = {"matchId": "id", "matchSalesforceId": "fid", "matchEmail": "email"}


def _match(store: Store, match: tuple[str, str], restore_deleted: bool) -> Prospect | None:
    name, value = match
    if name == "matchId":
        prospect = store.get(int(value)) if value.isdigit() else None
        if prospect is not None and prospect.is_archived and not restore_deleted:
            return None
        return prospect
    if name == "matchEmail":
        found = store.latest(store.by_email(value))
        if found is None and restore_deleted:
            found = store.latest(store.by_email(value, archived=True))
        return found
    prospect = store.by_fid(value)
    if prospect is not None and prospect.is_archived and not restore_deleted:
        return None
    return prospect


V5 = Flavour(
    name="v5",
    match_columns=MATCH_COLUMNS,
    names=v5_column,
    find=find_v5,
    ignored_columns=LIST_COLUMNS,  # lists are not emulated: accepted and ignored
    required_for_creates=REQUIRED_FOR_CREATES,
    null_overwrite_default=False,
)


def _import_id(req: V5Request) -> str:
    for pattern in (_ONE, _BATCHES, _ERRORS):
        match = pattern.match(req.path)
        if match:
            return match["id"]
    return ""


def _input(req: V5Request) -> tuple[dict[str, Any], bytes | None]:
    """The import's JSON description and the CSV sent along with it, if any."""
    if is_multipart(req.content_type):
        form = parts(req.content_type, req.body)
        if "input" not in form:
            raise PardotError(153, f"{MESSAGES[153]}: input")
        raw, csv_data = form["input"], form.get("file")
    else:
        raw, csv_data = req.body, None
    if not raw.strip():
        raise PardotError(152)
    try:
        data = strict_json(raw)
    except ValueError as exc:
        raise PardotError(150) from exc
    if not isinstance(data, dict):
        raise PardotError(150)
    return data, csv_data


def _rules(store: Store, raw: Any) -> dict[str, FieldRule]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise PardotError(154, f"{MESSAGES[154]}: fields")
    rules: dict[str, FieldRule] = {}
    for column, spec in raw.items():
        if v5_column(store, column) is None:
            raise PardotError(180, f"{MESSAGES[180]}: {column}")
        if not isinstance(spec, dict) or not set(spec) <= set(_RULE_KEYS):
            raise PardotError(154, f"{MESSAGES[154]}: fields.{column}")
        if not all(isinstance(value, bool) for value in spec.values()):
            raise PardotError(154, f"{MESSAGES[154]}: fields.{column}")
        rules[column] = FieldRule(**{_RULE_KEYS[key]: value for key, value in spec.items()})
    return rules


def _flag(data: dict[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise PardotError(154, f"{MESSAGES[154]}: {name}")
    return value


def render(ctx: ApiContext, job: ImportJob, fields: list[str] | None = None) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": job.id,
        "operation": "Upsert",
        "object": "Prospect",
        "status": job.status,
        "isExpired": job.is_expired(ctx.store.clock.now()),
        "createOnNoMatch": job.create_on_no_match,
        "restoreDeleted": job.restore_deleted,
        "batchesRef": f"{ctx.base_url}{IMPORTS}/{job.id}/batches",
        "createdAt": render_iso(job.created_at),
        "updatedAt": render_iso(job.updated_at),
        "createdCount": job.created_count,
        "updatedCount": job.updated_count,
        "errorCount": job.error_count,
        "errorsRef": (
            f"{ctx.base_url}{IMPORTS}/{job.id}/do/downloadErrors"
            if job.status == COMPLETE
            else None
        ),
    }
    if fields is None:
        return values
    return {"id": job.id, **{name: values[name] for name in fields}}


READABLE = frozenset(
    {
        "id",
        "operation",
        "object",
        "status",
        "isExpired",
        "createOnNoMatch",
        "restoreDeleted",
        "batchesRef",
        "createdAt",
        "updatedAt",
        "createdCount",
        "updatedCount",
        "errorCount",
        "errorsRef",
    }
)


def _create(ctx: ApiContext, req: V5Request) -> ApiResult:
    store = ctx.store
    data, csv_data = _input(req)
    ready = check_spec(data, _INPUT_KEYS, status_key="status", has_batch=csv_data is not None)
    rules = _rules(store, data.get("fields"))
    now = store.clock.now()
    create_on_no_match = _flag(data, "createOnNoMatch")
    restore_deleted = _flag(data, "restoreDeleted")
    job = ctx.imports.create(
        flavour=V5,
        create_on_no_match=create_on_no_match,
        restore_deleted=restore_deleted,
        rules=rules,
        now=now,
        # The notes let PATCH Ready start only an import "Open and not expired"; how long a v5
        # import stays Open is not given, so it is the v4 guide's 24 hours (the same knob).
        open_lifetime=ctx.import_limits.open_lifetime,
    )
    ctx.fill_new_import(job, csv_data, ready=ready, now=now)
    return ApiResult(201, render(ctx, job))


def _add_batch(ctx: ApiContext, req: V5Request) -> ApiResult:
    job = ctx.imports.get(_import_id(req))
    if not is_multipart(req.content_type):
        raise PardotError(153, f"{MESSAGES[153]}: file")
    form = parts(req.content_type, req.body)
    if "file" not in form:
        raise PardotError(153, f"{MESSAGES[153]}: file")
    ctx.add_import_batch(job, form["file"])
    # UNCONFIRMED answer shape: the batch's import and number.
    return ApiResult(201, {"id": job.batches, "importId": job.id})


def _update(ctx: ApiContext, req: V5Request) -> ApiResult:
    job = ctx.imports.get(_import_id(req))
    data = json_object(req.body)
    # Only the status may be set, and only to Ready (documented).
    others = sorted(set(data) - {"status"})
    if others:
        raise PardotError(154, f"{MESSAGES[154]}: {others[0]}")
    if data.get("status") != "Ready":
        raise PardotError(154, f"{MESSAGES[154]}: status (only Ready may be set)")
    ctx.imports.start(job, ctx.store.clock.now())
    return ApiResult(200, render(ctx, job))


def _read(ctx: ApiContext, req: V5Request) -> ApiResult:
    job = ctx.imports.get(_import_id(req))
    text = req.param("fields")
    if not text:
        raise PardotError(31, "Missing required parameter: fields")
    fields = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in fields if name not in READABLE]
    if unknown:
        raise PardotError(
            51,
            f"Invalid parameter: fields. It contains an invalid or unknown field: {unknown[0]}.",
        )
    return ApiResult(200, render(ctx, job, fields))


def _download_errors(ctx: ApiContext, req: V5Request) -> ApiResult:
    job = ctx.imports.get(_import_id(req))
    if job.status != COMPLETE:
        raise PardotError(162)
    location = f"{ctx.base_url}{ERROR_FILES}{job.errors_token}.csv"
    return ApiResult(302, {}, headers=(("Location", location),))


OPS: dict[str, Callable[[ApiContext, V5Request], ApiResult]] = {
    "v5.imports.create": _create,
    "v5.imports.addBatch": _add_batch,
    "v5.imports.update": _update,
    "v5.imports.read": _read,
    "v5.imports.downloadErrors": _download_errors,
}

__all__ = ["ERROR_FILES", "MATCH_COLUMNS", "OPS", "V5", "route", "v5_column"]
