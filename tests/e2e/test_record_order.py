"""End to end: when records name one prospect through different identities, the later one wins.

A user's early events may carry only the email and later ones the Pardot id or Salesforce fid
as well. Groups of a batch are written concurrently, so the target writes such records in
layers, one after the other (matching.first_layer), instead of in no particular order. The
real command against the emulator, in each API version.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pardot_emulator import PardotEmulator
from pardot_emulator.clock import Clock
from tests.conftest import TargetRun, run_target, singer_messages, target_config
from tests.e2e.test_run_report import metric_lines

PROSPECTS = 120  # more than two batch calls of 50: a call boundary falls between the records


def fid(n: int) -> str:
    # 18 characters whose first 15 differ: Salesforce ids are compared on those.
    return f"00Q{n:012d}AAA"


def seeded(
    make_emulator: Any, version: int, **knobs: Any
) -> tuple[PardotEmulator, list[dict[str, Any]]]:
    emulator = make_emulator(ampsea=version != 3, **knobs)
    emulator.add_custom_field("org_id")
    # Half of them carry their lookup value; a lookup record claims one of the others.
    prospects = [
        emulator.add_prospect(
            f"p{n}@example.com", crm_lead_fid=fid(n), **({"org_id": f"org-{n}"} if n % 2 else {})
        )
        for n in range(PROSPECTS)
    ]
    return emulator, prospects


def sync(
    emulator: PardotEmulator,
    tmp_path: Path,
    version: int,
    records: list[dict[str, Any]],
    **settings: Any,
) -> TargetRun:
    tmp_path.mkdir(exist_ok=True)
    result = run_target(
        target_config(emulator, tmp_path, api_version=version, **settings),
        singer_messages("users", records),
        tmp_path,
        # With lost answers, a create Pardot did not apply is re-sent only once a minute has
        # passed (reads may lag writes: finder.py), and a batch may draw several such faults.
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.rejects == []
    return result


def cities(emulator: PardotEmulator) -> dict[str, str | None]:
    return {p["email"]: p.get("city") for p in emulator.prospects()}


@pytest.mark.parametrize("version", [3, 4, 5])
def test_email_then_id_then_email_again_the_last_record_wins(
    make_emulator: Any, tmp_path: Path, version: int
) -> None:
    emulator, prospects = seeded(make_emulator, version)
    records = []
    for n, prospect in enumerate(prospects):
        email = f"p{n}@example.com"
        records += [
            {"email": email, "city": "first", "phone": "by email"},
            {"pardot_id": str(prospect["id"]), "email": email, "city": "second", "phone": "by id"},
            {"email": email, "city": "third"},
        ]
    result = sync(emulator, tmp_path, version, records)
    assert len(emulator.prospects()) == PROSPECTS  # nothing created twice
    assert set(cities(emulator).values()) == {"third"}
    # The id record's phone came after the first record's and nothing later set it.
    assert {p.get("phone") for p in emulator.prospects()} == {"by id"}
    # In layers, not one record at a time: three layers of 3 batch calls in v3 and v4 (and the
    # custom field listing, and a scan page in v4).
    if version != 5:
        assert emulator.api_calls <= 3 * 3 + 2
    # One batch: the first layer is the 120 first records; the rest waited, and the report
    # says so.
    assert "240 written after the rest of their batch" in result.stderr
    assert '"result":"ordered"' in result.stderr.replace(" ", "")


@pytest.mark.parametrize("version", [4, 5])
def test_a_fid_record_with_the_email_after_an_email_record_wins(
    make_emulator: Any, tmp_path: Path, version: int
) -> None:
    # Latency keeps several calls in flight: writes of one layer race each other.
    emulator, _prospects = seeded(make_emulator, version, latency=0.02)
    records = [{"email": f"p{n}@example.com", "city": "by email"} for n in range(PROSPECTS)]
    records += [
        {"pardot_fid": fid(n), "email": f"p{n}@example.com", "city": "by fid"}
        for n in range(PROSPECTS)
    ]
    sync(emulator, tmp_path, version, records)
    assert set(cities(emulator).values()) == {"by fid"}


def test_v4_an_id_record_without_the_email_is_ordered_after_finding_its_email(
    make_emulator: Any, tmp_path: Path
) -> None:
    """Only finding tells that p{n}@example.com is the prospect the id names."""
    emulator, prospects = seeded(make_emulator, 4)
    records = [{"email": f"p{n}@example.com", "city": "by email"} for n in range(PROSPECTS)]
    records += [{"pardot_id": str(p["id"]), "city": "by id"} for p in prospects]
    records += [{"email": f"p{n}@example.com", "last_name": "Last"} for n in range(PROSPECTS)]
    sync(emulator, tmp_path, 4, records, lookup_strategy="scan")
    assert set(cities(emulator).values()) == {"by id"}
    assert {p.get("last_name") for p in emulator.prospects()} == {"Last"}


@pytest.mark.parametrize(
    ("version", "second"),
    [
        (4, lambda n: {"email": f"p{n}@example.com"}),  # found in the scan
        (5, lambda n: {"pardot_fid": fid(n)}),  # resolved by the scan
    ],
)
def test_across_batches_a_record_waits_for_the_id_record_of_its_prospect(
    make_emulator: Any, tmp_path: Path, version: int, second: Callable[[int], dict[str, str]]
) -> None:
    """batch_size_rows 1: each batch is handed over while the one before is still written, at
    50 ms a call. Only finding tells that the second record names the prospect of the first."""
    emulator, prospects = seeded(make_emulator, version, latency=0.05)
    records = []
    for n, prospect in enumerate(prospects[:20]):
        records += [
            {"pardot_id": str(prospect["id"]), "city": "first"},
            {**second(n), "city": "second"},
        ]
    sync(emulator, tmp_path, version, records, batch_size_rows=1, lookup_strategy="scan")
    written = [cities(emulator)[f"p{n}@example.com"] for n in range(20)]
    assert written == ["second"] * 20


def test_v3_an_id_record_without_the_email_lands_after_an_email_record_in_one_call(
    make_emulator: Any, tmp_path: Path
) -> None:
    """The target cannot relate them before writing; in one batch call they keep input order."""
    emulator, prospects = seeded(make_emulator, 3)
    records = [{"email": f"p{n}@example.com", "city": "by email"} for n in range(20)]
    records += [{"pardot_id": str(p["id"]), "city": "by id"} for p in prospects[:20]]
    sync(emulator, tmp_path, 3, records)
    assert emulator.call_counts["v3.prospect.batchUpsert"] == 1
    assert [cities(emulator)[f"p{n}@example.com"] for n in range(20)] == ["by id"] * 20


@pytest.mark.parametrize("version", [3, 4, 5])
def test_skip_unchanged_sends_a_record_whose_prospect_another_identity_wrote_before_it(
    make_emulator: Any, tmp_path: Path, version: int
) -> None:
    """The id record's fingerprint matches what it wrote last run, but the email record before
    it in this batch has since written the prospect: it must be sent, or the email's values
    would win."""
    emulator, prospects = seeded(make_emulator, version)
    by_id = [
        {"pardot_id": str(p["id"]), "email": f"p{n}@example.com", "city": "by id"}
        for n, p in enumerate(prospects[:20])
    ]
    store = {"skip_unchanged": True, "skip_unchanged_store": str(tmp_path / "fingerprints.db")}
    sync(emulator, tmp_path, version, by_id, **store)
    by_email = [{"email": f"p{n}@example.com", "city": "by email"} for n in range(20)]
    result = sync(emulator, tmp_path, version, by_email + by_id, **store)
    assert [cities(emulator)[f"p{n}@example.com"] for n in range(20)] == ["by id"] * 20
    assert "20 written after the rest of their batch" in result.stderr


@pytest.mark.parametrize("version", [3, 4, 5])
def test_skip_unchanged_skips_a_later_layer_when_the_layers_before_it_wrote_nothing(
    make_emulator: Any, tmp_path: Path, version: int
) -> None:
    """A second run of the same input: the email records are unchanged and skipped, so the id
    records after them follow no write, and their own fingerprints hold."""
    emulator, prospects = seeded(make_emulator, version)
    records = []
    for n, prospect in enumerate(prospects[:20]):
        email = f"p{n}@example.com"
        records += [
            {"email": email, "city": "by email"},
            {"pardot_id": str(prospect["id"]), "email": email, "city": "by id"},
        ]
    store = {"skip_unchanged": True, "skip_unchanged_store": str(tmp_path / "fingerprints.db")}
    sync(emulator, tmp_path / "first", version, records, **store)
    writes_before = emulator.api_calls
    second = sync(emulator, tmp_path / "second", version, records, **store)
    # The custom field listing only: no read, no write.
    assert emulator.api_calls - writes_before == 1
    assert "40 unchanged" in second.stderr
    assert [cities(emulator)[f"p{n}@example.com"] for n in range(20)] == ["by id"] * 20


def random_batch(
    prospects: list[dict[str, Any]], forms: tuple[str, ...], seed: int
) -> list[dict[str, Any]]:
    """Records naming a few prospects many times, by email, id, fid or lookup value, always
    with the email (so every conflict is one the target can see): what a user's events look
    like."""
    chooser = random.Random(seed)
    records = []
    for position in range(300):
        n = chooser.randrange(len(prospects))
        record: dict[str, Any] = {"email": f"p{n}@example.com", "city": f"c{position}"}
        form = chooser.choice(forms)
        if form == "id":
            record["pardot_id"] = str(prospects[n]["id"])
        elif form == "fid":
            record["pardot_fid"] = fid(n)
        if "lookup" in forms:
            # lookup_field is on: every record needs its value (an id or fid record too).
            record["org_id"] = f"org-{n}"
        if chooser.random() < 0.3:
            record["phone"] = f"+47 {position}"
        records.append(record)
    return records


def state(emulator: PardotEmulator) -> list[tuple[Any, ...]]:
    return sorted(
        (
            (p["email"], p.get("city"), p.get("phone"), p.get("org_id"))
            for p in emulator.prospects()
        ),
        key=str,  # None beside text
    )


# (version, the identities records name prospects by, settings): random_batch's modes.
IDENTITY_MODES = pytest.mark.parametrize(
    ("version", "forms", "settings"),
    [
        (3, ("email", "id"), {}),
        (4, ("email", "id", "fid"), {}),
        (5, ("email", "id", "fid"), {}),
        (4, ("lookup", "id", "fid"), {"lookup_field": "org_id"}),
        (5, ("lookup", "id", "fid"), {"lookup_field": "org_id"}),
    ],
    ids=["v3", "v4", "v5", "v4-lookup", "v5-lookup"],
)


@IDENTITY_MODES
@pytest.mark.parametrize("seed", [1, 2])
def test_a_concurrent_run_leaves_pardot_as_writing_one_record_at_a_time_does(
    make_emulator: Any,
    tmp_path: Path,
    version: int,
    forms: tuple[str, ...],
    settings: dict[str, Any],
    seed: int,
) -> None:
    sequential, prospects = seeded(make_emulator, version)
    records = random_batch(prospects, forms, seed)
    sync(sequential, tmp_path, version, records, batch_size_rows=1, max_concurrency=1, **settings)
    concurrent, _ = seeded(make_emulator, version, latency=0.005)
    result = sync(concurrent, tmp_path, version, records, max_concurrency=5, **settings)
    assert state(concurrent) == state(sequential)
    assert "written after the rest of their batch" in result.stderr


def assert_as_one_record_at_a_time(
    make_emulator: Any,
    tmp_path: Path,
    version: int,
    batch_of: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    *,
    concurrently: dict[str, Any] | None = None,
    faults: dict[str, Any] | None = None,
    **settings: Any,
) -> None:
    """Write `batch_of(prospects)` into two units seeded alike, once one record at a time and
    once concurrently (max_concurrency 5, 5 ms a call, and `concurrently`; the emulator knobs
    `faults` too): both must leave the same prospects. Every write lands in a second of its
    own, as v3/v4 render times, so that among prospects sharing an email "the most recently
    updated" is the same in both."""
    sequential, prospects = seeded(make_emulator, version, clock=Clock(step=1.0))
    records = batch_of(prospects)
    sync(
        sequential,
        tmp_path / "sequential",
        version,
        records,
        batch_size_rows=1,
        max_concurrency=1,
        **settings,
    )
    concurrent, _ = seeded(
        make_emulator, version, latency=0.005, clock=Clock(step=1.0), **(faults or {})
    )
    sync(
        concurrent,
        tmp_path / "concurrent",
        version,
        records,
        max_concurrency=5,
        **settings,
        **(concurrently or {}),
    )
    assert state(concurrent) == state(sequential)


def email_changes(prospects: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Records of a few prospects by Pardot id, each with one of three emails (so an id record
    may move its prospect to another address, or back), and records by one of those emails
    alone: which prospect such a record names depends on the id records before it."""
    chooser = random.Random(seed)
    records = []
    for position in range(300):
        n = chooser.randrange(len(prospects))
        variant = chooser.randrange(3)
        email = f"p{n}@example.com" if variant == 0 else f"p{n}.v{variant}@example.com"
        record: dict[str, Any] = {"email": email, "city": f"c{position}"}
        if chooser.random() < 0.5:
            record["pardot_id"] = str(prospects[n]["id"])
        records.append(record)
    return records


@pytest.mark.parametrize("strategy", ["read", "scan"])
@pytest.mark.parametrize("batch_size_rows", [None, 7], ids=["one-batch", "batches-of-7"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_v4_email_changes_in_a_batch_leave_pardot_as_one_record_at_a_time_does(
    make_emulator: Any,
    tmp_path: Path,
    strategy: str,
    batch_size_rows: int | None,
    seed: int,
) -> None:
    """An email record after an id record that moved its prospect to that email, or away from
    it, must find what the id record left. In one batch (layers) and across batches in flight
    (a batch that writes a prospect an earlier one is still writing finds again after it)."""
    assert_as_one_record_at_a_time(
        make_emulator,
        tmp_path,
        4,
        lambda prospects: email_changes(prospects, seed),
        concurrently={"batch_size_rows": batch_size_rows} if batch_size_rows else None,
        lookup_strategy=strategy,
    )


def lookup_changes(
    prospects: list[dict[str, Any]], seed: int, forms: tuple[str, ...] = ("lookup", "id")
) -> list[dict[str, Any]]:
    """Records by Pardot id that give their prospect one of three lookup values (moving it to
    another value, or back), and records by one of those values alone, all with the
    prospect's email: which prospect a lookup record names, or may claim, depends on the id
    records before it."""
    chooser = random.Random(seed)
    records = []
    for position in range(300):
        n = chooser.randrange(len(prospects))
        variant = chooser.randrange(3)
        record: dict[str, Any] = {
            "email": f"p{n}@example.com",
            "city": f"c{position}",
            "org_id": f"org-{n}" if variant == 0 else f"org-{n}-{variant}",
        }
        form = chooser.choice(forms)
        if form == "id":
            record["pardot_id"] = str(prospects[n]["id"])
        elif form == "fid":
            record["pardot_fid"] = fid(n)
        records.append(record)
    return records


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("strategy", ["read", "scan", "auto"])
@pytest.mark.parametrize("seed", [3, 5])
def test_lookup_values_moved_by_pardot_id_leave_pardot_as_one_record_at_a_time_does(
    make_emulator: Any, tmp_path: Path, version: int, strategy: str, seed: int
) -> None:
    """A record matched by Pardot id that writes a lookup value names what a record of that
    value finds (or claims) after it: ordered in the batch, and known to the scan index."""
    assert_as_one_record_at_a_time(
        make_emulator,
        tmp_path,
        version,
        lambda prospects: lookup_changes(prospects, seed),
        lookup_field="org_id",
        lookup_strategy=strategy,
    )


@pytest.mark.parametrize("strategy", ["scan", "auto"])
def test_v4_lookup_values_moved_by_fid_leave_pardot_as_one_record_at_a_time_does(
    make_emulator: Any, tmp_path: Path, strategy: str
) -> None:
    """v4 answers a write by fid without the prospect's id: the scan index cannot follow the
    lookup value it wrote, so records of its email are read again."""
    assert_as_one_record_at_a_time(
        make_emulator,
        tmp_path,
        4,
        lambda prospects: lookup_changes(prospects, 3, forms=("lookup", "id", "fid")),
        lookup_field="org_id",
        lookup_strategy=strategy,
    )


@pytest.mark.parametrize("strategy", ["scan", "auto"])
def test_v4_of_two_prospects_moved_to_one_email_an_email_record_updates_the_one_moved_last(
    make_emulator: Any, tmp_path: Path, strategy: str
) -> None:
    """Pardot updates the most recently updated prospect with the email: the one the id record
    that comes last moved there, though its id is lower (the scan index must know the order of
    the run's own writes, not only that they are newer than the scan)."""
    emulator, prospects = seeded(make_emulator, 4, clock=Clock(step=1.0))
    # Found before the id records are written: the scan has begun, and the index must follow
    # what they write.
    records: list[dict[str, Any]] = [{"email": f"p{PROSPECTS - 1}@example.com"}]
    for n in range(20):
        lower, higher = prospects[2 * n], prospects[2 * n + 1]
        shared = f"shared{n}@example.com"
        records += [
            {"pardot_id": str(higher["id"]), "email": shared, "city": "moved first"},
            {"pardot_id": str(lower["id"]), "email": shared, "city": "moved last"},
            {"email": shared, "phone": "by email"},
        ]
    sync(emulator, tmp_path, 4, records, lookup_strategy=strategy)
    for n in range(20):
        lower, higher = (emulator.prospect(prospects[2 * n + k]["id"]) for k in (0, 1))
        assert lower is not None and higher is not None
        assert (lower["city"], lower.get("phone")) == ("moved last", "by email")
        assert (higher["city"], higher.get("phone")) == ("moved first", None)
    assert len(emulator.prospects()) == PROSPECTS


# Lost answers: every 5th call is applied and its connection then closed unanswered, every
# 7th fails with a 500 and is not applied. Creates whose answer was lost are found again and
# sent as updates: they must keep their place in the order of the run's writes.
LOST_ANSWERS = {"drop_after_commit_every": 5, "fail_every": 7}


@pytest.mark.parametrize(
    ("version", "batch_of", "settings"),
    [
        (4, lambda prospects: email_changes(prospects, 1), {"lookup_strategy": "scan"}),
        (4, lambda prospects: email_changes(prospects, 2), {"lookup_strategy": "read"}),
        (
            4,
            lambda prospects: lookup_changes(prospects, 2),
            {"lookup_field": "org_id", "lookup_strategy": "scan"},
        ),
        (3, lambda prospects: random_batch(prospects, ("email", "id"), 1), {}),
        (
            4,
            lambda prospects: random_batch(prospects, ("lookup", "id", "fid"), 1),
            {"lookup_field": "org_id"},
        ),
    ],
    ids=[
        "v4-email-changes-scan",
        "v4-email-changes-read",
        "v4-lookup-changes-scan",
        "v3-email-and-id",
        "v4-lookup-id-and-fid",
    ],
)
def test_with_lost_answers_pardot_is_left_as_one_record_at_a_time_leaves_it(
    make_emulator: Any,
    tmp_path: Path,
    version: int,
    batch_of: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    settings: dict[str, Any],
) -> None:
    """v5 passes too, but its one call per record makes the retries' backoff cost minutes."""
    assert_as_one_record_at_a_time(
        make_emulator,
        tmp_path,
        version,
        batch_of,
        faults=LOST_ANSWERS,
        concurrently={"max_retries": 10},
        **settings,
    )


def records_per_stream(stderr: str) -> dict[str, Counter[str]]:
    """The run's target_pardot_records METRIC points: stream -> result -> records."""
    tally: dict[str, Counter[str]] = {}
    for point in metric_lines(stderr):
        if point["metric"] == "target_pardot_records":
            tags = point["tags"]
            tally.setdefault(tags["stream"], Counter())[tags["result"]] += point["value"]
    return tally


@pytest.mark.parametrize("version", [3, 4, 5])
def test_a_stream_sent_after_another_wins_over_the_last_records_of_the_first(
    make_emulator: Any, tmp_path: Path, version: int
) -> None:
    """A tap sends its tables one after the other. The last 100 records of stream a wait in its
    batch (600 is not a multiple of 500) while b's first batch fills; b's records of the same
    people come later in the input, so they win."""
    emulator = make_emulator(ampsea=version != 3)
    a = [{"email": f"x{n}@example.com", "city": "from a"} for n in range(600)]
    b = [{"email": f"x{n}@example.com", "city": "from b"} for n in range(500, 1100)]
    result = run_target(
        target_config(emulator, tmp_path, api_version=version),
        singer_messages("a", a) + singer_messages("b", b),
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    written = cities(emulator)
    assert [written[f"x{n}@example.com"] for n in range(500, 1100)] == ["from b"] * 600
    assert len(written) == 1100
    # Each record is counted once, in its own stream: a b record merged into the group of an
    # a record of the same person counts as merged in b.
    for stream, tally in records_per_stream(result.stderr).items():
        outcomes = sum(n for result_name, n in tally.items() if result_name != "received")
        assert outcomes == tally["received"] == 600, (stream, tally)
    if version != 5:
        assert emulator.call_counts[f"v{version}.prospect.batchUpsert"] == 22  # 1,100 / 50


def interleaved(prospects: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Two streams' messages interleaved at random (a log-based tap), three in four records
    of stream a, naming the same prospects by email or Pardot id."""
    chooser = random.Random(seed)
    messages = [
        {"type": "SCHEMA", "stream": stream, "schema": {"type": "object", "properties": {}}}
        for stream in ("a", "b")
    ]
    for position in range(400):
        n = chooser.randrange(30)
        record: dict[str, Any] = {"email": f"p{n}@example.com", "city": f"c{position}"}
        if chooser.random() < 0.3:
            record["pardot_id"] = str(prospects[n]["id"])
        stream = "a" if chooser.random() < 0.75 else "b"
        messages.append({"type": "RECORD", "stream": stream, "record": record})
    return messages


@pytest.mark.parametrize("version", [3, 4])
@pytest.mark.parametrize("seed", [1, 2])
def test_interleaved_streams_leave_pardot_as_one_record_at_a_time_does(
    make_emulator: Any, tmp_path: Path, version: int, seed: int
) -> None:
    """Batches of 40: each stream's batch fills at its own pace, and records of the other
    stream read before it are handed over with it, in input order."""
    units = []
    for settings in (
        {"batch_size_rows": 1, "max_concurrency": 1},
        {"batch_size_rows": 40, "max_concurrency": 5},
    ):
        emulator, prospects = seeded(make_emulator, version, clock=Clock(step=1.0), latency=0.005)
        work = tmp_path / str(len(units))
        work.mkdir()
        result = run_target(
            target_config(emulator, work, api_version=version, **settings),
            interleaved(prospects, seed),
            work,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        units.append(emulator)
    sequential, concurrent = units
    assert state(concurrent) == state(sequential)
