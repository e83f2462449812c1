"""The control plane under ``/_emulator/``: seeding and inspection for demos and CLI users.

Not part of the emulated API: these calls are not counted, need no token and never fail on
purpose. JSON in, JSON out.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from .context import Reply
from .render import JSON_TYPE

if TYPE_CHECKING:
    from .server import PardotEmulator


def handle(emulator: PardotEmulator, method: str, path: str, query: str, body: bytes) -> Reply:
    route = (method, path.rstrip("/"))
    try:
        if route == ("GET", "/_emulator/prospects"):
            archived = parse_qs(query).get("include_archived", ["false"])[-1].lower() == "true"
            return _json(200, emulator.prospects(include_archived=archived))
        if route == ("GET", "/_emulator/imports"):
            return _json(200, emulator.imports())
        if route == ("GET", "/_emulator/stats"):
            return _json(200, emulator.stats())
        if route == ("POST", "/_emulator/prospects"):
            data = _object(body)
            email = data.pop("email", None)
            return _json(201, emulator.add_prospect(email, **data))
        if route == ("POST", "/_emulator/custom-fields"):
            return _json(201, emulator.add_custom_field(**_object(body)))
        if route == ("POST", "/_emulator/queue-error"):
            emulator.queue_error(**_object(body))
            return _json(200, {"queued": True})
        if route == ("POST", "/_emulator/reset-daily-usage"):
            emulator.reset_daily_usage()
            return _json(200, {"reset": True})
    except (ValueError, TypeError) as exc:
        return _json(400, {"error": str(exc)})
    return _json(404, {"error": f"no control endpoint {method} {path}"})


def _object(body: bytes) -> dict[str, Any]:
    data = json.loads(body or b"{}")
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def _json(status: int, payload: Any) -> Reply:
    return Reply(status, json.dumps(payload).encode(), JSON_TYPE)
