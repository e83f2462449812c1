"""v3/v4 response envelopes and their two encodings (JSON, and the default XML).

Pardot builds v3/v4 JSON by converting its XML, which is why a repeated element comes out
as an object when there is one and as an array when there are several.
"""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape, quoteattr

JSON_TYPE = "application/json"
XML_TYPE = "text/xml; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"


def ok(**body: Any) -> dict[str, Any]:
    return {"@attributes": {"stat": "ok", "version": 1}, **body}


def fail(code: int, message: str) -> dict[str, Any]:
    return {"@attributes": {"stat": "fail", "version": 1, "err_code": code}, "err": message}


def batch_result(errors: dict[str, str]) -> dict[str, Any]:
    stat = "fail" if errors else "ok"
    return {"@attributes": {"stat": stat, "version": 1}, "errors": errors}


def one_or_many(items: list[Any]) -> Any:
    return items[0] if len(items) == 1 else items


def encode(payload: dict[str, Any], *, as_json: bool) -> tuple[bytes, str]:
    if as_json:
        return json.dumps(payload).encode(), JSON_TYPE
    return to_xml(payload).encode(), XML_TYPE


def to_xml(payload: dict[str, Any]) -> str:
    """A plausible ``<rsp>`` rendering; enough for clients that only sniff for XML."""
    attributes = payload.get("@attributes", {})
    stat = attributes.get("stat", "ok")
    parts = [f'<?xml version="1.0" encoding="UTF-8"?>\n<rsp stat="{stat}" version="1.0">']
    if "err_code" in attributes:
        parts.append(f'<err code="{attributes["err_code"]}">{escape(str(payload["err"]))}</err>')
    for key, value in payload.items():
        if key in ("@attributes", "err"):
            continue
        if key == "errors":
            parts.append(_errors_xml(value))
        else:
            parts.append(_element(key, value))
    parts.append("</rsp>")
    return "".join(parts)


def _errors_xml(errors: dict[str, str]) -> str:
    inner = "".join(
        f"<error identifier={quoteattr(str(k))}>{escape(str(v))}</error>" for k, v in errors.items()
    )
    return f"<errors>{inner}</errors>"


def _element(tag: str, value: Any) -> str:
    if isinstance(value, list):
        return "".join(_element(tag, item) for item in value)
    if isinstance(value, dict):
        return f"<{tag}>{''.join(_element(k, v) for k, v in value.items())}</{tag}>"
    if value is None:
        return f"<{tag}/>"
    if isinstance(value, bool):
        return f"<{tag}>{1 if value else 0}</{tag}>"
    return f"<{tag}>{escape(str(value))}</{tag}>"


def html_error(status: int, reason: str) -> bytes:
    """What a load balancer in front of Pardot answers with: HTML, not an API envelope."""
    return (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n</body>\r\n</html>\r\n"
    ).encode()
