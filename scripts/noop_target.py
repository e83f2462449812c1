"""A singer-sdk target that does nothing with its records: the floor target-pardot is compared
with in scripts/benchmark.py (CPU per 100k records).

Same SDK, same batch size and, as in target-pardot, no JSON schema validation of records, so
the difference between the two is target-pardot's own work: reading Segment shapes, mapping
traits, checking emails, matching and the Pardot calls.

    python scripts/noop_target.py --config config.json < input.jsonl
"""

from __future__ import annotations

from typing import Any

from singer_sdk import Target
from singer_sdk import typing as th
from singer_sdk.sinks import BatchSink


class NoopSink(BatchSink):
    MAX_SIZE_DEFAULT = 500  # target-pardot's

    def get_validator(self) -> None:  # type: ignore[override]
        return None  # validation off, as in target-pardot

    def process_batch(self, context: dict[str, Any]) -> None:
        pass


class NoopTarget(Target):
    name = "target-noop"
    config_jsonschema = th.PropertiesList().to_dict()
    default_sink_class = NoopSink


if __name__ == "__main__":
    NoopTarget.cli()
