"""BATCH messages end to end: records a tap sends in files land in Pardot exactly as the same
records sent as RECORD messages do, and a file that cannot be read stops the run before STATE.

singer-sdk taps with `batch_config` (tap-jsonl, tap-postgres...) send a stream's records as
JSON Lines files and one BATCH message listing them. Before target-pardot read them itself, the
SDK handed each file to the sink in a shape the sink did not expect: every record in a batch file
was dropped without a word, and STATE moved past them.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pardot_emulator import PardotEmulator
from tests.conftest import run_target, singer_messages, target_config
from tests.e2e.test_meltano_pipeline import DATA_DIR, ROOT, require_plugins
from tests.e2e.test_record_order import IDENTITY_MODES, random_batch, seeded, state
from tests.e2e.test_run_endings import (
    RunningTarget,
    assert_state_is_never_ahead_and_nothing_is_doubled,
    people,
    wait_for,
)

TAP_JSONL = ROOT / ".meltano" / "extractors" / "tap-jsonl" / "venv" / "bin" / "tap-jsonl"
SCHEMA = {"type": "object", "properties": {}, "additionalProperties": True}


def batch_file(path: Path, records: list[dict[str, Any]], *, gzipped: bool) -> str:
    data = "".join(json.dumps(record) + "\n" for record in records).encode("utf-8")
    path.write_bytes(gzip.compress(data) if gzipped else data)
    return path.as_uri()


def batch_message(stream: str, urls: list[str], *, gzipped: bool) -> dict[str, Any]:
    return {
        "type": "BATCH",
        "stream": stream,
        "encoding": {"format": "jsonl", "compression": "gzip" if gzipped else "none"},
        "manifest": urls,
    }


def as_batches(records: list[dict[str, Any]], directory: Path) -> list[dict[str, Any]]:
    """The records, in order, as a tap in batch mode might send them: some RECORD messages,
    a BATCH message of two gzipped files, more RECORD messages, a BATCH message of one plain
    file, and the rest as RECORD messages; STATE at the end."""
    directory.mkdir(parents=True, exist_ok=True)
    a, b, c, d, e = 30, 110, 160, 200, 270  # cut points; sink batches of 7 straddle them
    messages = singer_messages("users", records[:a])
    first = batch_file(directory / "users-1.jsonl.gz", records[a:b], gzipped=True)
    second = batch_file(directory / "users-2.jsonl.gz", records[b:c], gzipped=True)
    messages.append(batch_message("users", [first, second], gzipped=True))
    messages += [{"type": "RECORD", "stream": "users", "record": r} for r in records[c:d]]
    third = batch_file(directory / "users-3.jsonl", records[d:e], gzipped=False)
    messages.append(batch_message("users", [third], gzipped=False))
    messages += [{"type": "RECORD", "stream": "users", "record": r} for r in records[e:]]
    messages.append({"type": "STATE", "value": {"bookmarks": {"users": len(records)}}})
    return messages


@IDENTITY_MODES
def test_records_in_batch_files_leave_pardot_as_the_same_record_messages_do(
    make_emulator: Any,
    tmp_path: Path,
    version: int,
    forms: tuple[str, ...],
    settings: dict[str, Any],
) -> None:
    as_records, prospects = seeded(make_emulator, version)
    records = random_batch(prospects, forms, seed=4)
    assert len(records) == 300
    config = {"api_version": version, "batch_size_rows": 7, **settings}
    plain = run_target(
        target_config(as_records, tmp_path / "records", **config),
        singer_messages("users", records, state={"bookmarks": {"users": len(records)}}),
        _dir(tmp_path / "records"),
    )
    assert plain.returncode == 0, plain.stderr[-3000:]

    in_files, _ = seeded(make_emulator, version)
    batched = run_target(
        target_config(in_files, tmp_path / "batches", **config),
        as_batches(records, tmp_path / "files"),
        _dir(tmp_path / "batches"),
    )
    assert batched.returncode == 0, batched.stderr[-3000:]
    assert state(in_files) == state(as_records)
    assert batched.rejects == plain.rejects == []
    assert batched.states == [{"bookmarks": {"users": 300}}]
    # Every record counted once, in the run report as in the SDK's own record count.
    assert "stream 'users': 300 received" in batched.stderr
    assert '"metric":"record_count","value":300' in batched.stderr.replace(" ", "")


def _dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_a_record_in_a_batch_file_that_can_never_succeed_is_rejected_naming_stream_and_field(
    emulator: PardotEmulator, tmp_path: Path
) -> None:
    good = [{"email": f"u{n}@example.com", "first_name": f"U{n}"} for n in range(3)]
    bad = {"email": "not-an-email", "first_name": "Bad"}
    url = batch_file(tmp_path / "users.jsonl.gz", [good[0], bad, *good[1:]], gzipped=True)
    messages = [
        *singer_messages("users", []),
        batch_message("users", [url], gzipped=True),
        {"type": "STATE", "value": {"done": True}},
    ]
    result = run_target(target_config(emulator, tmp_path), messages, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p["email"] for p in emulator.prospects()) == [r["email"] for r in good]
    [reject] = result.rejects
    assert (reject["stream"], reject["field"], reject["record"]) == ("users", "email", bad)
    assert result.states == [{"done": True}]


def test_stream_maps_apply_to_records_in_batch_files(
    emulator: PardotEmulator, tmp_path: Path
) -> None:
    # The SDK's own BATCH handling gives the sink whole files, past stream maps.
    records = [{"mail": f"m{n}@example.com", "first_name": f"M{n}"} for n in range(4)]
    url = batch_file(tmp_path / "users.jsonl", records, gzipped=False)
    messages = [
        *singer_messages("users", [], schema=SCHEMA),
        batch_message("users", [url], gzipped=False),
        {"type": "STATE", "value": {"done": True}},
    ]
    config = target_config(
        emulator, tmp_path, stream_maps={"users": {"email": "mail", "mail": None}}
    )
    result = run_target(config, messages, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p["email"] for p in emulator.prospects()) == [r["mail"] for r in records]
    assert result.rejects == []


def test_a_batch_file_that_cannot_be_read_stops_the_run_before_state(
    emulator: PardotEmulator, tmp_path: Path
) -> None:
    readable = batch_file(tmp_path / "users-1.jsonl.gz", [{"email": "a@example.com"}], gzipped=True)
    missing = (tmp_path / "users-2.jsonl.gz").as_uri()
    messages = [
        *singer_messages("users", [{"email": "first@example.com"}]),
        {"type": "STATE", "value": {"bookmarks": {"users": 1}}},
        batch_message("users", [readable, missing], gzipped=True),
        {"type": "RECORD", "stream": "users", "record": {"email": "after@example.com"}},
        {"type": "STATE", "value": {"bookmarks": {"users": 3}}},
    ]
    result = run_target(target_config(emulator, tmp_path), messages, tmp_path)
    assert result.returncode == 1
    [stop] = [line for line in result.stderr.splitlines() if "target-pardot stopped:" in line]
    assert (
        f"input line 4 is a BATCH message for stream 'users' whose file {missing} cannot be "
        "read (FileNotFoundError"
    ) in stop
    assert "Traceback" not in result.stderr
    # What came before it is applied and its STATE relayed, as at the end of input; the
    # BATCH message comes again, whole, with the next run.
    assert result.states == [{"bookmarks": {"users": 1}}]
    emails = [p["email"] for p in emulator.prospects()]
    assert "first@example.com" in emails and "after@example.com" not in emails


def test_sigterm_while_a_batch_message_is_read_applies_what_was_read_and_names_it(
    make_emulator: Callable[..., PardotEmulator], tmp_path: Path
) -> None:
    emulator = make_emulator(ampsea=True, latency=0.05)
    # One call at a time, batches of 5: the target reads only a little ahead of what Pardot
    # applied, so it is still inside the BATCH message's 1,000 records when the signal comes.
    config = target_config(emulator, tmp_path, batch_size_rows=5, max_concurrency=1)
    url = batch_file(tmp_path / "users.jsonl.gz", people(1005, start=5), gzipped=True)
    target = RunningTarget(config, tmp_path)
    target.send(
        [
            *singer_messages("users", people(5), state={"bookmarks": {"users": 5}}),
            batch_message("users", [url], gzipped=True),
            {"type": "STATE", "value": {"bookmarks": {"users": 1005}}},
        ]
    )
    wait_for(lambda: len(emulator.prospects()) >= 15)

    assert target.terminate() == 143
    stderr = target.stderr
    [interrupted] = [line for line in stderr.splitlines() if "interrupted by SIGTERM" in line]
    cut = re.search(r"the BATCH message on line 8 was read only to its record (\d+)", interrupted)
    assert cut, interrupted
    read = int(cut.group(1))
    assert 0 < read < 1000
    # Every record read was applied, none after; STATE never passed the BATCH message.
    assert len(emulator.prospects()) == 5 + read
    assert target.states == [{"bookmarks": {"users": 5}}]
    [summary] = [line for line in stderr.splitlines() if "target-pardot summary:" in line]
    assert_state_is_never_ahead_and_nothing_is_doubled(emulator, target.states, summary)


def test_a_real_sdk_tap_in_batch_mode_loads_what_it_loads_with_record_messages(
    make_emulator: Any, tmp_path: Path
) -> None:
    """tap-jsonl (singer-sdk), as `make test` installs it for the Meltano pipeline, reads the
    demo data once as RECORD messages and once with batch_config (gzipped files of 7 records);
    target-pardot must leave the same prospects and reject the same records either way."""
    require_plugins()
    outputs = {}
    for mode, extra in (
        ("records", {}),
        (
            "batches",
            {
                "batch_config": {
                    "encoding": {"format": "jsonl", "compression": "gzip"},
                    "storage": {"root": (tmp_path / "files").as_uri(), "prefix": "demo-"},
                    "batch_size": 7,
                }
            },
        ),
    ):
        tap_config = tmp_path / f"tap-{mode}.json"
        tap_config.write_text(
            json.dumps(
                {
                    "path": f"{DATA_DIR}/*.jsonl",  # the good records and the problem ones
                    "stream_name": "identifies",
                    "schema_sample_records": 100000,
                    **extra,
                }
            )
        )
        tap = subprocess.run(
            [str(TAP_JSONL), "--config", str(tap_config)],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        outputs[mode] = tap.stdout
    kinds = [json.loads(line)["type"] for line in outputs["batches"].splitlines()]
    assert "BATCH" in kinds and "RECORD" not in kinds
    assert "RECORD" in [json.loads(line)["type"] for line in outputs["records"].splitlines()]

    landed = {}
    for mode, output in outputs.items():
        emulator = make_emulator(ampsea=True)
        emulator.add_custom_field("org_id")
        run_dir = _dir(tmp_path / f"run-{mode}")
        result = run_target(
            target_config(emulator, run_dir, api_version=4, lookup_strategy="scan"),
            output,
            run_dir,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        landed[mode] = (
            sorted(
                json.dumps({k: v for k, v in p.items() if k not in VOLATILE}, sort_keys=True)
                for p in emulator.prospects()
            ),
            sorted(json.dumps(r["reason"]) for r in result.rejects),
        )
    assert len(landed["records"][0]) > 200 and len(landed["records"][1]) >= 5
    assert landed["batches"] == landed["records"]


# Pardot's own bookkeeping, which differs between two units written at different moments.
VOLATILE = frozenset({"id", "created_at", "updated_at", "last_activity_at"})
