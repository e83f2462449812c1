"""Just enough multipart/form-data parsing for the Import API's uploads (stdlib only)."""

from __future__ import annotations

import re

from .errors import PardotError

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_NAME = re.compile(rb'\bname="([^"]*)"', re.IGNORECASE)


def is_multipart(content_type: str) -> bool:
    return content_type.lower().startswith("multipart/form-data")


def parts(content_type: str, body: bytes) -> dict[str, bytes]:
    """The form's parts by name (the last one wins when a name repeats)."""
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise PardotError(150, "Multipart request without a boundary")
    delimiter = b"--" + match.group(1).encode("latin-1")
    found: dict[str, bytes] = {}
    # Split once on the delimiter: the preamble comes first and the epilogue after "--".
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, separator, content = chunk.partition(b"\r\n\r\n")
        if not separator:
            raise PardotError(150, "Malformed multipart part")
        name = _NAME.search(head)
        if name is None:
            continue
        # The CRLF before the next delimiter belongs to the delimiter, not the content.
        found[name.group(1).decode("utf-8", "replace")] = content.removesuffix(b"\r\n")
    return found
