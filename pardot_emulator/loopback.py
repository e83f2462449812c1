"""The emulator listens on this machine only; it keeps its own check rather than importing the
target's, so that the two packages stay independent."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
