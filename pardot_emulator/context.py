"""What an API handler receives and returns; shared by the v3/v4 and v5 handlers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .store import Store


@dataclass(frozen=True)
class ApiContext:
    store: Store
    # The emulator's own URL, for links such as v5's nextPageUrl.
    base_url: str
    # HTTP status of a v5 upsertLatestByEmail that created (200 by default, as production
    # clients see; 201 is the other plausible answer).
    upsert_created_status: int = 200


@dataclass(frozen=True)
class ApiResult:
    status: int
    payload: Any


@dataclass(frozen=True)
class Reply:
    """Bytes ready for the wire; the HTTP layer only adds framing headers."""

    status: int
    body: bytes
    content_type: str
