"""Pardot API v4 Import API: ``/api/import/version/4/do/...``.

    POST  .../do/create                  create (multipart: ``importInput`` JSON, optional
                                         ``importFile`` CSV; or a plain JSON body)  -> 200
    POST  .../do/batch/id/{id}           add a CSV batch (multipart part ``importFile``) -> 204
    PATCH .../do/update/id/{id}          {"state": "Ready"}: queue it for processing -> 200
    GET   .../do/read/id/{id}            its state, and when Complete its counts
    GET   .../do/downloadErrors/id/{id}  once Complete: the CSV of the rows that failed

The checks and the processing are in ``imports``; this module is the v4 request and answer
shapes and what v4 columns mean (``V4``). Calls are authenticated, business-unit checked,
counted and limited like every other API call (endpoint names ``v4.import.<op>``). Handlers run
with the emulator lock held.

Documented and followed: create with operation Upsert / object Prospect / restoreDeleted
(default false) / optional ``state: "Ready"`` (the CSV sent along is all there is; answers
``Waiting``) / optional ``columns`` [{field, overwrite (default true), nullOverwrite (default
true in v4)}], which must name the CSV's columns, as many as it has (else 400); answers 200
``{id, state, isExpired, batchesRef}`` (batchesRef only while Open); a batch answers 204 with an
empty body, only while Open; the update sets only the state, only to Ready, and answers
``{id, state: "Waiting", isExpired}``; read gives batchesRef while Open and, when Complete,
createdCount and updatedCount, plus errorCount and errorsRef when rows failed; states Open ->
Waiting -> Processing -> Complete; column names are v4 field names (snake_case, custom fields
by their bare field_id) and a name that is not a writable field refuses the whole batch; later
batches repeat the first header in the same order; 10 MB per batch, 10 batches per import, the
daily batch limit; imports left Open expire after 24 hours (``import_open_lifetime``); an empty
or whitespace-only cell clears the field unless the column's nullOverwrite is false.

Matching, read strictly (the v4 guide: "you must specify either the prospect_id or
salesforce_fid identifier. If you don't specify an identifier, or the prospect that is matched
is in the recycle bin, that record isn't upserted unless restoreDeleted is specified"): a row
with neither ``prospect_id`` nor ``salesforce_fid`` fails; an identifier no prospect has fails
(Invalid prospect ID / Invalid prospect fid); a prospect in the recycle bin fails (Prospect is
archived) unless restoreDeleted, which restores and updates it; a v4 import never creates. The
guide's overview also says "A new prospect is created when a matching prospect isn't found";
the emulator takes the strict reading so that a client relying on an import to create is
caught here rather than in production (UNCONFIRMED).

Chosen where UNCONFIRMED, as the v5 Import API emulator chooses: errors are
``{"code": N, "message": "..."}`` with v5's HTTP statuses (400; 413 for 165; 429 for 163, 164,
66 and 122; 401 for 184; 403 for 201; 404 for an unknown import id, code 3 "Object not found";
405 code 60 for a wrong method on a known path); codes 161 (not Open, expired, no batch), 162
(errors asked before Complete), 163, 164, 165, 166 (empty, unreadable, ragged or
repeated-column CSV), 167 (header differs), 168 (``columns`` do not name the CSV's columns),
180 (unknown, read-only or forbidden column, e.g. ``id``), 154 (an unknown or ill-typed
property of the import, ``createOnNoMatch`` included: v4 has none), 153 (a part is missing);
the error file is the header as sent plus a last column ``error``, rows as sent, served
directly (200 text/csv; the guide says the endpoint returns the CSV); the row errors say
"One or more required parameters are missing: ..." for a row without an identifier, Pardot's
"Invalid prospect ID" / "Invalid prospect fid" followed by the value for no match, "Prospect
ID and FID do not match" when both name different prospects, and "Prospect is archived" for
the recycle bin; a create whose file is refused keeps no import; an expired import still reads
(isExpired true) though the guide says reads of expired imports fail; imports are never
expired after completion (the guide: 7 days); the v4 version check applies as to other v4
calls (error 89 on a business unit without AMPSEA); ``do/query`` is not emulated (error 2).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .context import ApiContext, ApiResult, Reply, json_object
from .errors import MESSAGES, PardotError
from .fields import WRITABLE
from .imports import COMPLETE, OPEN, FieldRule, Flavour, ImportJob, check_spec, not_found
from .multipart import is_multipart, parts
from .render import JSON_TYPE
from .store import Prospect, Store

PREFIX = "/api/import/version/4/do/"
_PATH = re.compile(r"^/api/import/version/4/do/(?P<op>[A-Za-z]+)(?:/id/(?P<id>[^/]*))?/?$")
# op -> (HTTP method, whether the path carries /id/{id})
_OPS: dict[str, tuple[str, bool]] = {
    "create": ("POST", False),
    "batch": ("POST", True),
    "update": ("PATCH", True),
    "read": ("GET", True),
    "downloadErrors": ("GET", True),
}
UNKNOWN = "v4.import.unknown"
CSV_TYPE = "text/csv; charset=utf-8"

_INPUT_KEYS = frozenset({"operation", "object", "restoreDeleted", "state", "columns"})
_COLUMN_KEYS = frozenset({"field", "overwrite", "nullOverwrite"})

PROSPECT_ID = "prospect_id"
SALESFORCE_FID = "salesforce_fid"
MATCH_COLUMNS = (PROSPECT_ID, SALESFORCE_FID)
_WRITABLE = frozenset(WRITABLE)


# -- what v4 columns mean --------------------------------------------------------------------


def v4_column(store: Store, name: str) -> str | None:
    """The stored field a v4 import column writes: v4 names and bare custom field ids."""
    if name in _WRITABLE or store.custom_field(name) is not None:
        return name
    return None


def find_v4(job: ImportJob, store: Store, row: dict[str, str]) -> Prospect:
    """The prospect a row's prospect_id and/or salesforce_fid name; a v4 row never creates."""
    prospect_id = row.get(PROSPECT_ID, "").strip()
    fid = row.get(SALESFORCE_FID, "").strip()
    if not prospect_id and not fid:
        raise PardotError(
            13, f"{MESSAGES[13]}: a v4 import row needs a {PROSPECT_ID} or a {SALESFORCE_FID}"
        )
    by_id = by_fid = None
    if prospect_id:
        by_id = store.get(int(prospect_id)) if prospect_id.isdigit() else None
        if by_id is None:
            raise not_found("id", prospect_id)
    if fid:
        by_fid = store.by_fid(fid)
        if by_fid is None:
            raise not_found("fid", fid)
    if by_id is not None and by_fid is not None and by_id is not by_fid:
        raise PardotError(81)
    prospect = by_id or by_fid
    assert prospect is not None
    if prospect.is_archived and not job.restore_deleted:
        raise PardotError(132, f"{MESSAGES[132]}: the import does not restore deleted prospects")
    return prospect


V4 = Flavour(
    name="v4",
    match_columns=MATCH_COLUMNS,
    names=v4_column,
    find=find_v4,
    null_overwrite_default=True,  # v4's documented default
    whitespace_is_blank=True,
)


# -- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class V4ImportRequest:
    method: str
    path: str
    body: bytes
    content_type: str = ""

    @property
    def key(self) -> str:
        return route(self.method, self.path) or UNKNOWN

    @property
    def op(self) -> str:
        match = _PATH.match(self.path)
        return match["op"] if match else ""

    @property
    def import_id(self) -> str | None:
        match = _PATH.match(self.path)
        return match["id"] if match else None


def is_import_path(path: str) -> bool:
    return path.startswith(PREFIX)


def route(method: str, path: str) -> str | None:
    """The endpoint name of a v4 import request, or None when the path is not one."""
    match = _PATH.match(path)
    if match is None or match["op"] not in _OPS:
        return None
    return f"v4.import.{match['op']}"


def handle(ctx: ApiContext, req: V4ImportRequest) -> ApiResult:
    if not ctx.store.ampsea:
        raise PardotError(89)
    spec = _OPS.get(req.op)
    if spec is None:
        raise PardotError(2)
    method, with_id = spec
    if req.method != method:
        raise PardotError(60, status=405)
    if with_id != (req.import_id is not None):
        raise PardotError(2)
    return _HANDLERS[req.op](ctx, req)


def _input(req: V4ImportRequest) -> tuple[dict[str, Any], bytes | None]:
    """The import's JSON description and the CSV sent along with it, if any."""
    if not is_multipart(req.content_type):
        return json_object(req.body), None
    form = parts(req.content_type, req.body)
    if "importInput" not in form:
        raise PardotError(153, f"{MESSAGES[153]}: importInput")
    return json_object(form["importInput"]), form.get("importFile")


def _columns(raw: Any) -> tuple[list[str] | None, dict[str, FieldRule]]:
    """The declared column names, in order, and their rules (v4 defaults: both true)."""
    if raw is None:
        return None, {}
    if not isinstance(raw, list):
        raise PardotError(154, f"{MESSAGES[154]}: columns")
    names: list[str] = []
    rules: dict[str, FieldRule] = {}
    for position, spec in enumerate(raw):
        label = f"columns[{position}]"
        if not isinstance(spec, dict) or not set(spec) <= _COLUMN_KEYS:
            raise PardotError(154, f"{MESSAGES[154]}: {label}")
        name = spec.get("field")
        if not isinstance(name, str) or not name:
            raise PardotError(154, f"{MESSAGES[154]}: {label}.field")
        flags = {key: spec.get(key, True) for key in ("overwrite", "nullOverwrite")}
        if not all(isinstance(value, bool) for value in flags.values()):
            raise PardotError(154, f"{MESSAGES[154]}: {label}")
        names.append(name)
        rules[name] = FieldRule(overwrite=flags["overwrite"], null_overwrite=flags["nullOverwrite"])
    return names, rules


def _restore_deleted(data: dict[str, Any]) -> bool:
    value = data.get("restoreDeleted", False)
    if not isinstance(value, bool):
        raise PardotError(154, f"{MESSAGES[154]}: restoreDeleted")
    return value


def render(ctx: ApiContext, job: ImportJob) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": job.id,
        "state": job.status,
        "isExpired": job.is_expired(ctx.store.clock.now()),
    }
    if job.status == OPEN:
        out["batchesRef"] = f"{ctx.base_url}{PREFIX}batch/id/{job.id}"
    if job.status == COMPLETE:
        out["createdCount"] = job.created_count
        out["updatedCount"] = job.updated_count
        if job.error_count:
            out["errorCount"] = job.error_count
            out["errorsRef"] = f"{ctx.base_url}{PREFIX}downloadErrors/id/{job.id}"
    return out


def _create(ctx: ApiContext, req: V4ImportRequest) -> ApiResult:
    data, csv_data = _input(req)
    ready = check_spec(data, _INPUT_KEYS, status_key="state", has_batch=csv_data is not None)
    declared, rules = _columns(data.get("columns"))
    now = ctx.store.clock.now()
    job = ctx.imports.create(
        flavour=V4,
        create_on_no_match=False,
        restore_deleted=_restore_deleted(data),
        rules=rules,
        now=now,
        open_lifetime=ctx.import_limits.open_lifetime,
        declared_columns=declared,
    )
    ctx.fill_new_import(job, csv_data, ready=ready, now=now)
    return ApiResult(200, render(ctx, job))


def _job(ctx: ApiContext, req: V4ImportRequest) -> ImportJob:
    job = ctx.imports.get(req.import_id or "")
    if job.flavour is not V4:
        # A v5 import is not a v4 one (UNCONFIRMED: Pardot may share the ids).
        raise PardotError(3, "Object not found", status=404)
    return job


def _add_batch(ctx: ApiContext, req: V4ImportRequest) -> ApiResult:
    job = _job(ctx, req)
    if not is_multipart(req.content_type):
        raise PardotError(153, f"{MESSAGES[153]}: importFile")
    form = parts(req.content_type, req.body)
    if "importFile" not in form:
        raise PardotError(153, f"{MESSAGES[153]}: importFile")
    ctx.add_import_batch(job, form["importFile"])
    return ApiResult(204, None)


def _update(ctx: ApiContext, req: V4ImportRequest) -> ApiResult:
    job = _job(ctx, req)
    data = json_object(req.body)
    others = sorted(set(data) - {"state"})
    if others:
        raise PardotError(154, f"{MESSAGES[154]}: {others[0]}")
    if data.get("state") != "Ready":
        raise PardotError(154, f"{MESSAGES[154]}: state (only Ready may be set)")
    ctx.imports.start(job, ctx.store.clock.now())
    return ApiResult(200, render(ctx, job))


def _read(ctx: ApiContext, req: V4ImportRequest) -> ApiResult:
    return ApiResult(200, render(ctx, _job(ctx, req)))


def _download_errors(ctx: ApiContext, req: V4ImportRequest) -> ApiResult:
    job = _job(ctx, req)
    if job.status != COMPLETE:
        raise PardotError(162)
    return ApiResult(200, job.errors_csv())


_HANDLERS: dict[str, Callable[[ApiContext, V4ImportRequest], ApiResult]] = {
    "create": _create,
    "batch": _add_batch,
    "update": _update,
    "read": _read,
    "downloadErrors": _download_errors,
}


# -- answers ----------------------------------------------------------------------------------


def encode_result(result: ApiResult) -> Reply:
    """JSON, an empty 204 (a batch), or the error file's CSV. Errors are encoded as v5's."""
    if result.status == 204:
        return Reply(204, b"", JSON_TYPE)
    if isinstance(result.payload, bytes):
        return Reply(result.status, result.payload, CSV_TYPE)
    return Reply(result.status, json.dumps(result.payload).encode(), JSON_TYPE)
