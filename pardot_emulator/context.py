"""What an API handler receives and returns; shared by the v3/v4 and v5 handlers."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import PardotError
from .imports import MAX_BATCH_BYTES, MAX_BATCHES, ImportBook, ImportJob
from .store import Store

# Pardot: "Imports left in the Open state expire after 24 hours" (the v4 guide).
OPEN_LIFETIME = 24 * 3600.0


@dataclass(frozen=True)
class ImportLimits:
    """The Import API's limits: knobs, read on every request like the others."""

    max_batch_bytes: int = MAX_BATCH_BYTES
    max_batches: int = MAX_BATCHES
    daily_batch_limit: int | None = None
    # Seconds an import (v4 or v5) may stay Open before it expires.
    open_lifetime: float = OPEN_LIFETIME


@dataclass(frozen=True)
class ApiContext:
    store: Store
    # The emulator's own URL, for links such as v5's nextPageUrl.
    base_url: str
    # HTTP status of a v5 upsertLatestByEmail that created (200 by default, as production
    # clients see; 201 is the other plausible answer).
    upsert_created_status: int = 200
    imports: ImportBook = field(default_factory=ImportBook)
    import_limits: ImportLimits = field(default_factory=ImportLimits)

    def add_import_batch(self, job: ImportJob, data: bytes) -> None:
        """One CSV batch into an import, checked against the limits in force."""
        limits = self.import_limits
        self.imports.add_batch(
            job,
            data,
            store=self.store,
            max_batch_bytes=limits.max_batch_bytes,
            max_batches=limits.max_batches,
            daily_batch_limit=limits.daily_batch_limit,
            now=self.store.clock.now(),
        )

    def fill_new_import(
        self, job: ImportJob, first_batch: bytes | None, *, ready: bool, now: float
    ) -> None:
        """What a create does with the CSV it carries (both versions): keep it as the first
        batch, and queue the import when asked. A create whose file is refused makes nothing
        (UNCONFIRMED: Pardot may keep an empty Open import; nothing could ever run it)."""
        if first_batch is None:
            return
        try:
            self.add_import_batch(job, first_batch)
        except PardotError:
            self.imports.discard(job)
            raise
        if ready:
            self.imports.start(job, now)


@dataclass(frozen=True)
class ApiResult:
    status: int
    payload: Any
    # Extra response headers (the Import API's error download answers with a redirect).
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Reply:
    """Bytes ready for the wire; the HTTP layer only adds framing headers."""

    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()


def strict_json(text: str | bytes) -> Any:
    """`json.loads`, refusing what Python's parser takes and a strict one does not: a string
    holding half a UTF-16 surrogate pair (`"\\udcfc"` alone), which is no Unicode text
    (RFC 8259 leaves its meaning open). Pardot's API answers in the shape of PHP's SimpleXML
    (`@attributes`), and PHP's json_decode fails on such a string for the whole body ("Single
    unpaired UTF-16 surrogate"). Inferred, not seen in real traffic: a sandbox check. The
    strict reading keeps a client that sends one from passing here. Raises ValueError.
    """
    data = json.loads(text)
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    # Nearly every body: ASCII without a surrogate's escape, nothing to look for.
    if (not raw.isascii() or _SURROGATE_ESCAPE.search(raw)) and _has_lone_surrogate(data):
        raise ValueError("a string holds an unpaired UTF-16 surrogate")
    return data


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        if value.isascii():
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


def json_object(body: bytes) -> dict[str, Any]:
    """A v5 request body: empty -> 152, not JSON or not an object -> 150."""
    if not body.strip():
        raise PardotError(152)
    try:
        data = strict_json(body)
    except ValueError as exc:
        raise PardotError(150) from exc
    if not isinstance(data, dict):
        raise PardotError(150)
    return data
