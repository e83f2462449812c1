"""What a run tells its operator beyond the one-line summary: progress while it runs, and at the
end a block per stream plus the same numbers as singer-sdk METRIC lines.

    target-pardot progress: 12000 records done of 12500 received in 40 s (300 a second);
        260 API calls used (1% of Growth's daily 25,000), 4 in flight
    target-pardot run report:
      stream 'users': 1000 received; 600 created, 380 updated, ...
      ...
      API calls: ...
      daily quota: ...

Pardot has no API that says how much of the daily quota is used, so the shares shown are of the
calls this run made, against each edition's daily allowance.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from singer_sdk import metrics

from target_pardot.outcomes import (
    NO_CODE,
    Result,
    RunReport,
    StreamTally,
    counted,
    planned_phrases,
    reasons_text,
)

logger = logging.getLogger(__name__)

# Pardot's daily API calls per business unit, by edition (shared with every integration).
DAILY_QUOTAS = (("Growth", 25_000), ("Plus", 50_000), ("Advanced", 100_000))
TOKEN_ENDPOINT = "oauth.token"  # noqa: S105 (an endpoint name): Salesforce's, outside the quota

MERGED_MEANS = (
    "merged duplicates are records of one batch with the same identity (the same Pardot id, "
    "else Salesforce id, else lookup value, else email): they were sent as one write, later "
    "values winning"
)

ORDERED_MEANS = (
    "written after the rest of their batch are records that named a prospect an earlier record "
    "of the batch named through another identity (email, Pardot id, Salesforce id, lookup "
    "value): they waited for it, so that the later record wins"
)

# The metric tag of each result (tags are identifiers, not prose).
RESULT_TAGS = {
    Result.CREATED: "created",
    Result.UPDATED: "updated",
    Result.UPSERTED: "created_or_updated",
    Result.UNCHANGED: "unchanged",
    Result.SKIPPED: "skipped",
    Result.REJECTED: "rejected",
}


def percent(share: float) -> str:
    """A share as a percentage with as many digits as it takes to tell it from 0."""
    value = share * 100
    if value == 0:
        return "0%"
    if value >= 10:
        return f"{value:.0f}%"
    if value >= 1:
        return f"{value:.1f}%"
    return f"{value:.2g}%"


def quota_shares(api_calls: int) -> str:
    shares = ", ".join(
        f"{percent(api_calls / limit)} of {edition}'s {limit:,}" for edition, limit in DAILY_QUOTAS
    )
    return f"{api_calls} calls are {shares} calls a day"


def _stream_line(name: str, tally: StreamTally, dry_run: bool, lookup_field: str | None) -> str:
    results = tally.results
    parts: list[str] = []
    if dry_run:
        parts.extend(planned_phrases(tally.planned))
    else:
        shown = [Result.CREATED, Result.UPDATED, Result.UNCHANGED]
        if results.get(Result.UPSERTED):
            shown.insert(2, Result.UPSERTED)
        parts.extend(f"{results.get(result, 0)} {result.value}" for result in shown)
    if tally.claimed:
        parts.append(
            f"{tally.claimed} of the updates {'would claim' if dry_run else 'claimed'} a "
            f"prospect with the record's email whose {lookup_field or 'lookup field'} was empty"
        )
    skipped = results.get(Result.SKIPPED, 0)
    parts.append(
        f"{skipped} skipped" + (f" ({reasons_text(tally.skip_reasons)})" if skipped else "")
    )
    rejected = results.get(Result.REJECTED, 0)
    reject_text = f"{rejected} rejected"
    if rejected:
        reasons = ", ".join(
            f"field {field}{'' if code == NO_CODE else f' (Pardot code {code})'}: {n}"
            for (field, code), n in sorted(tally.reject_reasons.items())
        )
        reject_text += f" ({reasons})"
    parts.append(reject_text)
    parts.append(f"{tally.merged} merged duplicates")
    if tally.ordered:
        parts.append(f"{tally.ordered} written after the rest of their batch")
    return f"  stream '{name}': {tally.received} received; " + ", ".join(parts)


def report_block(
    report: RunReport, call_counts: Mapping[str, int], *, lookup_field: str | None
) -> str:
    """The closing block: one line per stream, then the run's calls and their quota share."""
    api_calls = {n: c for n, c in sorted(call_counts.items()) if n != TOKEN_ENDPOINT}
    total = sum(api_calls.values())
    title = "target-pardot run report"
    if report.dry_run:
        title += " (dry run: nothing was written; what a real run would do)"
    lines = [f"{title}:"]
    streams = report.streams()
    lines.extend(
        _stream_line(name, tally, report.dry_run, lookup_field) for name, tally in streams.items()
    )
    if not streams:
        lines.append("  no records received")
    if any(tally.merged for tally in streams.values()):
        lines.append(f"  {MERGED_MEANS}")
    if any(tally.ordered for tally in streams.values()):
        lines.append(f"  {ORDERED_MEANS}")
    by_endpoint = ", ".join(f"{name} {n}" for name, n in api_calls.items()) or "none"
    lines.append(
        f"  API calls (the run's, shared by its streams): {total} ({by_endpoint}); "
        f"{counted(call_counts.get(TOKEN_ENDPOINT, 0), 'token call')} to Salesforce, outside "
        "Pardot's quota"
    )
    lines.append(
        f"  daily quota: {quota_shares(total)} (Pardot does not tell how much of it other "
        "integrations used today)"
    )
    if report.results.get(Result.REJECTED):
        lines.append(f"  rejected records, with their reasons: {report.rejects.path}")
    return "\n".join(lines)


# Metric names of their own: the SDK's record_count already counts the records each stream
# received, and a dashboard summing it by stream must not add these results to it.
RECORDS_METRIC = "target_pardot_records"
API_CALLS_METRIC = "target_pardot_api_calls"


@dataclass(frozen=True)
class MetricPoint:
    """One counter, printed as singer-sdk prints its own (`METRIC: {json}`)."""

    metric: str
    value: int
    tags: dict[str, object]

    def __str__(self) -> str:
        point = {"type": "counter", "metric": self.metric, "value": self.value, "tags": self.tags}
        return json.dumps(point, default=str, separators=(",", ":"))


def metric_points(report: RunReport, call_counts: Mapping[str, int]) -> list[MetricPoint]:
    """The closing numbers as counters: records by stream and result, API calls by endpoint."""
    points: list[MetricPoint] = []

    def records(value: int, stream: str, result: str, **tags: str) -> None:
        all_tags: dict[str, object] = {"stream": stream, "result": result, **tags}
        if report.dry_run:
            all_tags["dry_run"] = True
        points.append(MetricPoint(RECORDS_METRIC, value, all_tags))

    for stream, tally in report.streams().items():
        records(tally.received, stream, "received")
        for result in (Result.CREATED, Result.UPDATED, Result.UPSERTED, Result.UNCHANGED):
            if tally.results.get(result) or result in (Result.CREATED, Result.UPDATED):
                records(tally.results.get(result, 0), stream, RESULT_TAGS[result])
        for action, n in tally.planned.items():
            records(n, stream, "would_" + action.replace(" ", "_"))
        for reason, n in tally.skip_reasons.items():
            records(n, stream, "skipped", reason=reason)
        for (field, code), n in tally.reject_reasons.items():
            records(n, stream, "rejected", field=field, code=code)
        if tally.merged:
            records(tally.merged, stream, "merged")
        if tally.claimed:
            records(tally.claimed, stream, "claimed")
        if tally.ordered:
            records(tally.ordered, stream, "ordered")
    points.extend(
        MetricPoint(API_CALLS_METRIC, n, {"endpoint": endpoint})
        for endpoint, n in sorted(call_counts.items())
    )
    return points


def log_metrics(points: list[MetricPoint]) -> None:
    # The SDK's metrics logger: whatever the SDK's logging config does with METRIC lines
    # (a file, a level, nothing) applies to these too.
    metrics_logger = metrics.get_metrics_logger()
    for point in points:
        metrics_logger.info("METRIC: %s", point)


class ProgressLogger:
    """Logs one progress line every `interval` seconds from a thread of its own, so a long
    batch still shows the run is alive."""

    def __init__(
        self,
        interval: float,
        line: Callable[[float], str],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = interval
        self._line = line
        self._monotonic = monotonic
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_at = 0.0

    def start(self) -> None:
        if self._interval <= 0 or self._thread is not None:
            return
        self._started_at = self._monotonic()
        self._thread = threading.Thread(
            target=self._loop, name="target-pardot-progress", daemon=True
        )
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            logger.info(self._line(self._monotonic() - self._started_at))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def progress_line(report: RunReport, api_calls: int, in_flight: int, elapsed: float) -> str:
    done = report.records_settled()
    rate = done / elapsed if elapsed > 0 else 0.0
    return (
        f"target-pardot progress: {done} records done of {report.records_seen} received in "
        f"{elapsed:.0f} s ({rate:.0f} a second); {api_calls} API calls used "
        f"({percent(api_calls / DAILY_QUOTAS[0][1])} of Growth's daily {DAILY_QUOTAS[0][1]:,}), "
        f"{in_flight} in flight"
    )
