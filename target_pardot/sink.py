"""The Singer sink: collects a stream's records and hands each full batch to the run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from singer_sdk.sinks import BatchSink

from target_pardot.settings import IMPORT_BATCH_ROWS

if TYPE_CHECKING:
    from target_pardot.run import PardotRun
    from target_pardot.target import TargetPardot


class PardotSink(BatchSink):
    # Up to 500 records (10 batch calls of 50) are matched and written together: large enough
    # to keep every worker busy, small enough that a failure holds back little STATE.
    MAX_SIZE_DEFAULT = 500

    def __init__(self, target: TargetPardot, *args: Any, **kwargs: Any) -> None:
        # Every stream's sink shares the target's run: one token, one concurrency limit, one
        # custom field list and one scan index, whatever the number of streams.
        self.run: PardotRun = target.pardot_run
        super().__init__(target, *args, **kwargs)

    @property
    def max_size(self) -> int:
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

    def process_batch(self, context: dict[str, Any]) -> None:
        self.run.sync(self.stream_name, context.get("records", []))
