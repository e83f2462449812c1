"""The Singer sink: prepares records as they arrive and hands each full batch to the run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from singer_sdk.sinks import BatchSink

from target_pardot.settings import IMPORT_BATCH_ROWS

if TYPE_CHECKING:
    from target_pardot.prepare import BatchPreparer
    from target_pardot.run import PardotRun
    from target_pardot.target import TargetPardot


# The formats for which singer-sdk turns a string into a datetime, date or time before the
# sink sees the record, and fails the whole run on one it cannot parse.
DATE_FORMATS = frozenset({"date-time", "date", "time"})


def without_date_formats(schema: dict[str, Any]) -> dict[str, Any]:
    """The stream's schema as the SDK is given it: its properties' date formats left out.

    singer-sdk parses each top-level string property whose schema says date-time, date or
    time, and stops the run with a traceback (quoting the value) on one it cannot parse: a
    single `0000-00-00` from a warehouse would stop a nightly sync. Left as text, such values
    are read like those of any other schema: a Pardot date field checks its value and rejects
    the record naming the field, a text field gets the text the tap sent.
    """
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return schema
    return {
        **schema,
        "properties": {name: _without_date_format(prop) for name, prop in properties.items()},
    }


def _without_date_format(prop: Any) -> Any:
    if not isinstance(prop, dict):
        return prop
    if prop.get("format") in DATE_FORMATS:
        prop = {key: value for key, value in prop.items() if key != "format"}
    if isinstance(prop.get("anyOf"), list):
        prop = {**prop, "anyOf": [_without_date_format(option) for option in prop["anyOf"]]}
    return prop


class PardotSink(BatchSink):
    # Up to 500 records (10 batch calls of 50) are matched and written together: large enough
    # to keep every worker busy, small enough that a failure holds back little STATE.
    MAX_SIZE_DEFAULT = 500
    # Batches larger than this (an import's 50,000, or a large batch_size_rows) are read only
    # once the pipeline has room to hand them over, and keep each record as JSON text once
    # it is prepared: decoded, two imports' worth of Segment events is most of a gigabyte.
    LARGE_BATCH_ROWS = 5_000

    def __init__(
        self,
        target: TargetPardot,
        stream_name: str,
        schema: dict[str, Any],
        key_properties: Sequence[str] | None,
    ) -> None:
        # Every stream's sink shares the target's run: one token, one concurrency limit, one
        # custom field list and one scan index, whatever the number of streams.
        self.run: PardotRun = target.pardot_run
        self._max_size: int | None = None
        super().__init__(target, stream_name, without_date_formats(schema), key_properties)

    @property
    def max_size(self) -> int:
        # Asked for every record (is_full): worked out once, from settings fixed for the run.
        if self._max_size is None:
            self._max_size = self._batch_limit()
        return self._max_size

    def _batch_limit(self) -> int:
        # An import is finished inside process_batch, so the SDK (which writes STATE only after
        # every sink's batch is processed) never passes records whose import did not complete;
        # a batch as large as an import is what makes importing pay.
        if self.batch_size_rows is None and self.run.settings.write_method != "api":
            return IMPORT_BATCH_ROWS
        return super().max_size

    def get_validator(self) -> None:  # type: ignore[override]
        # Records are checked field by field while they are mapped, with reasons that name the
        # stream and the field and go to the reject file; the SDK's schema validator would
        # instead stop the whole run on the first record that does not match its SCHEMA.
        return None

    # How the SDK drains (singer_sdk.target_base, 0.53 and 0.54): `drain_one` calls
    # process_batch for a sink that is full, in the middle of reading, and `drain_all` calls it
    # for every sink holding records before it relays the latest STATE (every 5 minutes, at the
    # end of input, on a schema change), then `clean_up` at the end of input. So a full batch
    # is handed to the run's pipeline and reading goes on; anything else is a drain before
    # STATE, which waits until every batch handed over is applied.

    def start_batch(self, context: dict[str, Any]) -> None:
        large = self.max_size > self.LARGE_BATCH_ROWS
        if large:
            # Two imports may be under way: a third batch read now would wait, prepared and
            # in memory, until one of them is done. Reading it then costs seconds against an
            # import's minutes, and peak memory is two batches rather than three.
            self.run.pipeline.wait_for_room(self.max_size)
        context["batch"] = self.run.preparer(self.stream_name, compact=large)

    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        # Prepared now, while the SDK has just read it (see BatchPreparer), not at the batch.
        context["batch"].add(record)

    def process_batch(self, context: dict[str, Any]) -> None:
        batch: BatchPreparer | None = context.get("batch")
        if batch is None:
            # No record since the last batch: a drain before STATE, which waits for what was
            # handed over (see current_size).
            self.run.drain()
            return
        self.run.sync_prepared(batch, wait=batch.seen < self.max_size)

    @property
    def current_size(self) -> int:
        # drain_one skips a sink whose current_size is 0. A sink whose records are all handed
        # over still has something to drain while the pipeline writes them (or holds a failure
        # to raise): it answers 1, so that drain_all calls process_batch, which waits, before
        # STATE is relayed.
        size = super().current_size
        if size == 0 and self.run.pipeline.busy:
            return 1
        return size

    @property
    def is_full(self) -> bool:
        return super().current_size >= self.max_size

    def clean_up(self) -> None:
        # End of input: called after the last drain and before the final STATE.
        self.run.drain()
        super().clean_up()
