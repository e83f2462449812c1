"""Time for the emulator: a clock that never repeats, and the renderings each API uses.

Internally every timestamp is a float of epoch seconds (UTC) with microsecond resolution, so
"the most recently updated prospect" is well defined even for writes in the same second.
v3/v4 render whole seconds as ``YYYY-MM-DD HH:MM:SS``; v5 renders ISO 8601 with an offset.
Both render in UTC (real accounts render in the account's time zone).
"""

from __future__ import annotations

import math
import threading
import time
from datetime import date, datetime, timedelta, timezone

_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%m/%d/%Y",
    "%m/%d/%Y %H:%M:%S",
)


class Clock:
    """Epoch seconds that strictly increase across calls, even within one microsecond.

    `step`: the least time between two readings. A step of a whole second puts every write in
    a second of its own, as v3/v4 render them, so "the most recently updated prospect" is the
    same however fast a run writes (tests comparing two runs use it).
    """

    def __init__(self, step: float = 1e-6) -> None:
        self._last = 0.0
        self._step = step
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            stamp = max(time.time(), self._last + self._step)
            self._last = stamp
            return stamp


def render_v34(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return datetime.fromtimestamp(math.floor(stamp), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def render_iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    moment = datetime.fromtimestamp(math.floor(stamp), tz=timezone.utc)
    return moment.isoformat(timespec="seconds")


def whole_seconds(stamp: float) -> int:
    """Pardot stores timestamps to the second, so date filters compare at that precision."""
    return math.floor(stamp)


def parse_timestamp(text: str, *, now: float | None = None) -> float:
    """Parse a filter or seed timestamp; naive values are UTC. Raises ValueError.

    Accepts the v3/v4 rendering, ISO 8601 (``T``, ``Z`` or an offset) and the relative
    keywords the v3/v4 query docs list (today, yesterday, last_7_days, this_month, last_month).
    """
    value = text.strip()
    relative = _relative(value.lower(), time.time() if now is None else now)
    if relative is not None:
        return relative
    iso = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        moment = None
    if moment is None:
        for fmt in _FORMATS:
            try:
                moment = datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
    if moment is None:
        raise ValueError(f"unparseable timestamp: {text!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def to_epoch(value: object) -> float:
    """Seed values may be datetimes, epoch numbers or any string parse_timestamp accepts."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        return parse_timestamp(value)
    raise ValueError(f"not a timestamp: {value!r}")


def parse_date(text: str) -> str:
    """Normalise a Date custom-field value to ``YYYY-MM-DD``. Raises ValueError."""
    value = text.strip()
    for fmt in ("%Y-%m-%d", "%m/%d/%Y", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(value, fmt).date().isoformat()
        except ValueError:
            continue
    return datetime.fromisoformat(value.replace("Z", "+00:00")).date().isoformat()


def _relative(keyword: str, now: float) -> float | None:
    today = datetime.fromtimestamp(now, tz=timezone.utc).date()
    starts: dict[str, date] = {
        "today": today,
        "yesterday": today - timedelta(days=1),
        "last_7_days": today - timedelta(days=7),
        "this_month": today.replace(day=1),
        "last_month": (today.replace(day=1) - timedelta(days=1)).replace(day=1),
    }
    start = starts.get(keyword)
    if start is None:
        return None
    return datetime(start.year, start.month, start.day, tzinfo=timezone.utc).timestamp()
