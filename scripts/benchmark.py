"""Measure target-pardot's API cost, throughput, CPU and memory against the local emulator.

Runs the real `target-pardot` command against the bundled emulator and prints Markdown tables;
with --write, replaces the results section of docs/benchmarks.md. Every result is a ratio or a
count measured within this one run, never a bare time (times depend on the machine and its
load; no test asserts on them). Sections (`--only NAME` runs one):

- calls: API calls per 1,000 records in each matching mode, on a first run and on a second,
  identical run with `skip_unchanged` (goals: <= 21 for batched modes, <= 2 on the re-run,
  token included).
- throughput: records per second while writing, at 100 ms latency and max_concurrency 4 and
  5, over the ideal: 50 records x max_concurrency / latency for batched modes,
  max_concurrency / latency for v5 (goal: >= 0.90).
- cpu: target-pardot's CPU over a no-op singer-sdk target's (scripts/noop_target.py: same
  SDK, validation off in both) on the same 100k Segment identify records, rich and simple
  ones (goal: <= 2.0). Where valgrind is installed, also the user-space instructions each
  executes on that input (cachegrind): a count that does not move with the machine's load,
  for telling a change's effect from noise.
- memory: the target process's own peak RSS at 10k and 200k records (goal: within 10%), with
  a scan index over 100k prospects, in import mode (200k Segment identify events, batches of
  50k), and the index's own size per prospect (tracemalloc, in this process; goal: <= 300
  bytes).
- resync: target CPU of re-syncing 50k existing prospects over creating them (goal: <= 1.5).
- import: API calls, wall time, CPU and memory of 100k records written through the Import API
  over the same records through the prospect endpoints: v5 (half of them new) and v4 (updates
  of existing prospects by Pardot id).

Peak RSS and CPU are the target process's own: it is started through scripts/measure.py, a
small process whose only child it is (see there for why).

    python scripts/benchmark.py [--only SECTION] [--quick] [--write]
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pardot_emulator import DEFAULT_CREDENTIALS, PardotEmulator  # noqa: E402

TARGET = str(Path(sys.executable).with_name("target-pardot"))
NOOP = [sys.executable, str(Path(__file__).resolve().with_name("noop_target.py"))]
MEASURE = Path(__file__).resolve().with_name("measure.py")
DOC = ROOT / "docs" / "benchmarks.md"
MARKER = "<!-- results -->"
BATCH = 50  # records per v3/v4 batch call
WRITE_ENDPOINTS = (
    "v5.prospects.upsertLatestByEmail",
    "v5.prospects.create",
    "v5.prospects.update",
)
CPU_REPEATS = 3
SECTIONS = ("calls", "throughput", "cpu", "memory", "resync", "import")

# Sizes: the full run, and --quick (every section in well under a minute, to check the script).
FULL = {
    "calls": 1_000,
    "unit": 10_000,
    "throughput": 20_000,
    "throughput_v5": 600,
    "cpu": 100_000,
    "rss_small": 10_000,
    "rss_large": 200_000,
    "index": 100_000,
    "resync": 50_000,
    "import": 100_000,
}
QUICK = {
    "calls": 200,
    "unit": 1_000,
    "throughput": 2_000,
    "throughput_v5": 60,
    "cpu": 5_000,
    "rss_small": 1_000,
    "rss_large": 5_000,
    "index": 5_000,
    "resync": 2_000,
    "import": 2_000,
}

Records = Callable[[PardotEmulator, int], list[dict[str, Any]]]
Seed = Callable[[PardotEmulator, int], None]


# -- running the command -------------------------------------------------------------------


@dataclass
class Usage:
    returncode: int
    peak_rss_mb: float
    cpu_seconds: float


def measure(command: list[str], stdin: IO[Any], stderr: IO[Any], work: str) -> Usage:
    """Run the command through scripts/measure.py: its own peak RSS and CPU, not ours."""
    report = Path(work, "usage.json")
    subprocess.run(
        [sys.executable, "-S", str(MEASURE), str(report), *command],
        stdin=stdin,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        check=False,
    )
    usage = json.loads(report.read_text())
    return Usage(
        returncode=usage["returncode"],
        peak_rss_mb=usage["peak_rss_kib"] / 1024,
        cpu_seconds=usage["user_seconds"] + usage["system_seconds"],
    )


def write_input(path: Path, records: list[dict[str, Any]]) -> None:
    schema = {"type": "object", "properties": {}}
    with path.open("w") as out:
        out.write(
            json.dumps(
                {"type": "SCHEMA", "stream": "users", "key_properties": [], "schema": schema}
            )
            + "\n"
        )
        for record in records:
            out.write(json.dumps({"type": "RECORD", "stream": "users", "record": record}) + "\n")


def config_for(emulator: PardotEmulator, work: str, **settings: Any) -> Path:
    config = {
        "business_unit_id": DEFAULT_CREDENTIALS["business_unit_id"],
        "client_id": DEFAULT_CREDENTIALS["client_id"],
        "client_secret": DEFAULT_CREDENTIALS["client_secret"],
        "refresh_token": DEFAULT_CREDENTIALS["refresh_token"],
        "login_url": emulator.url,
        "pardot_url": emulator.url,
        "reject_file": f"{work}/rejects.jsonl",
        "import_state_path": f"{work}/imports.json",
        **settings,
    }
    path = Path(work, "config.json")
    path.write_text(json.dumps(config))
    return path


def run_command(command: list[str], input_path: Path, work: str) -> Usage:
    stderr_path = Path(work, "stderr.log")
    with input_path.open() as stdin, stderr_path.open("w") as stderr:
        usage = measure(command, stdin, stderr, work)
    if usage.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr_path.read_text()[-3000:]}")
    return usage


# -- records and seeds ---------------------------------------------------------------------


def email_rows(emulator: PardotEmulator, count: int) -> list[dict[str, Any]]:
    return [
        {"email": f"p{n}@example.com", "first_name": f"F{n}", "company": f"Co {n % 97}"}
        for n in range(count)
    ]


def lookup_rows(emulator: PardotEmulator, count: int) -> list[dict[str, Any]]:
    # With use_user_id_as_lookup the userId is the org_id value to match (and to write).
    return [
        {"userId": f"u{n}", "traits": {"email": f"p{n}@example.com", "firstName": f"F{n}"}}
        for n in range(count)
    ]


def identify_events(emulator: PardotEmulator | None, count: int) -> list[dict[str, Any]]:
    """Segment identify events as a tap relays them: nested traits, context, integrations."""
    return [
        {
            "type": "identify",
            "userId": f"u{n}",
            "anonymousId": f"anon-{n}",
            "messageId": f"msg-{n}",
            "timestamp": "2026-11-24T10:00:00.000Z",
            "traits": {
                "email": f"Person.{n}@Example.com",
                "firstName": f"First{n}",
                "lastName": f"Last{n}",
                "title": "Engineer",
                "company": {"name": f"Company {n % 97}", "plan": "pro"},
                "phone": f"+47 555 {n:05d}",
                "website": f"https://example.com/{n}",
                "address": {"city": "Oslo", "country": "NO", "postalCode": f"{n % 9999:04d}"},
                "createdAt": "2024-01-01T00:00:00Z",
                "industry": "Software",
            },
            "context": {"ip": "10.0.0.1", "library": {"name": "analytics.js", "version": "4"}},
        }
        for n in range(count)
    ]


def simple_identifies(emulator: PardotEmulator | None, count: int) -> list[dict[str, Any]]:
    """Segment identify events with a handful of flat traits."""
    return [
        {
            "type": "identify",
            "userId": f"u{n}",
            "traits": {
                "email": f"person.{n}@example.com",
                "firstName": f"First{n}",
                "lastName": f"Last{n}",
                "company": f"Company {n % 97}",
            },
        }
        for n in range(count)
    ]


def id_rows(emulator: PardotEmulator, count: int) -> list[dict[str, Any]]:
    ids = [p["id"] for p in emulator.prospects()]
    return [{"pardot_id": str(ids[n % len(ids)]), "city": f"City {n}"} for n in range(count)]


def email_then_id_rows(emulator: PardotEmulator, count: int) -> list[dict[str, Any]]:
    """Each prospect twice in a row: by email, then by its Pardot id with the email (a user's
    later events carry the id): two layers per batch, so that the id record lands last."""
    ids = {p["email"]: p["id"] for p in emulator.prospects()}
    rows: list[dict[str, Any]] = []
    for n in range(count // 2):
        email = f"p{n}@example.com"
        rows.append({"email": email, "city": f"City {n}"})
        rows.append({"pardot_id": str(ids[email]), "email": email, "city": f"City {n} by id"})
    return rows


def fid_rows(emulator: PardotEmulator, count: int) -> list[dict[str, Any]]:
    return [{"pardot_fid": fid(n), "city": f"City {n}"} for n in range(count)]


def fid(n: int) -> str:
    return f"00Q{n:012d}"


def seed_none(emulator: PardotEmulator, count: int) -> None:
    pass


def seed_half(emulator: PardotEmulator, count: int) -> None:
    # org_id holds the userId of lookup_rows, so the lookup scenarios find these prospects.
    for n in range(0, count, 2):
        emulator.add_prospect(email=f"p{n}@example.com", org_id=f"u{n}")


def seed_all(emulator: PardotEmulator, count: int) -> None:
    for n in range(count):
        emulator.add_prospect(email=f"p{n}@example.com", org_id=f"u{n}")


def seed_fids(emulator: PardotEmulator, count: int) -> None:
    for n in range(count):
        emulator.add_prospect(email=f"p{n}@example.com", crm_lead_fid=fid(n))


def seed_unit(size: int) -> Seed:
    """A business unit of `size` prospects holding every other record's email and userId."""

    def seed(emulator: PardotEmulator, count: int) -> None:
        for n in range(0, 2 * size, 2):
            emulator.add_prospect(email=f"p{n}@example.com", org_id=f"u{n}")

    return seed


# -- 1. calls per 1,000 records ------------------------------------------------------------


@dataclass
class Mode:
    name: str
    api_version: int
    records: Records
    seed: Seed
    settings: dict[str, Any] = field(default_factory=dict)
    ampsea: bool = True


LOOKUP = {"lookup_field": "org_id", "use_user_id_as_lookup": True}


def modes(unit: int) -> list[Mode]:
    over_unit = seed_unit(unit)
    return [
        Mode("v3 email (batchUpsert), half existing", 3, email_rows, seed_half, ampsea=False),
        Mode("v4 Pardot id", 4, id_rows, seed_all),
        Mode("v4 Salesforce fid", 4, fid_rows, seed_fids),
        Mode(f"v4 email only, auto, unit of {unit:,}", 4, email_rows, over_unit),
        Mode("v4 each prospect by email, then by Pardot id", 4, email_then_id_rows, seed_all),
        *(
            Mode(
                f"v4 lookup, {strategy}, unit of {unit:,}",
                4,
                lookup_rows,
                over_unit,
                {**LOOKUP, "lookup_strategy": strategy},
            )
            for strategy in ("read", "scan", "auto")
        ),
        Mode("v5 email (upsertLatestByEmail), half existing", 5, email_rows, seed_half),
        Mode(f"v5 lookup, auto, unit of {unit:,}", 5, lookup_rows, over_unit, LOOKUP),
    ]


@dataclass
class CallsResult:
    mode: str
    records: int
    first: int  # API calls (what the daily quota counts)
    first_tokens: int
    second: int  # API calls plus token calls


def calls_section(sizes: dict[str, int]) -> str:
    count = sizes["calls"]
    results = []
    for mode in modes(sizes["unit"]):
        with (
            PardotEmulator(ampsea=mode.ampsea) as emulator,
            tempfile.TemporaryDirectory() as work,
        ):
            emulator.add_custom_field("org_id")
            mode.seed(emulator, count)
            records = mode.records(emulator, count)
            input_path = Path(work, "input.jsonl")
            write_input(input_path, records)
            config = config_for(
                emulator,
                work,
                api_version=mode.api_version,
                skip_unchanged=True,
                skip_unchanged_store=f"{work}/unchanged.sqlite",
                **mode.settings,
            )
            spent = []
            for _ in range(2):
                before = emulator.stats()
                run_command([TARGET, "--config", str(config)], input_path, work)
                after = emulator.stats()
                spent.append(
                    (
                        after["api_calls"] - before["api_calls"],
                        after["token_calls"] - before["token_calls"],
                    )
                )
        (api, tokens), second = spent
        result = CallsResult(mode.name, len(records), api, tokens, sum(second))
        print(f"calls: {result}", flush=True)
        results.append(result)
    rows = [
        f"| {r.mode} | {r.first * 1000 / r.records:.1f} | {r.first_tokens} | {r.second} |"
        for r in results
    ]
    return (
        f"### API calls per 1,000 records\n\n{count:,} records per mode (each a different "
        "prospect, but in the email-then-id mode, where each comes twice), the custom field "
        "listing included; the token comes from Salesforce and is "
        "not counted by Pardot's daily quota, so it has a column of its own. The last column is "
        "a second run sending the same records again with `skip_unchanged: true`, token "
        "included (the first run had it on too, which costs nothing).\n\n"
        "| mode | API calls per 1,000 records | token calls | second identical run: all calls "
        "|\n|---|---:|---:|---:|\n" + "\n".join(rows) + "\n"
    )


# -- 2. throughput at 100 ms ---------------------------------------------------------------


class WriteClock(threading.Thread):
    """When the emulator received its first and its last write call (sampled every 2 ms)."""

    def __init__(self, emulator: PardotEmulator) -> None:
        super().__init__(daemon=True)
        self._emulator = emulator
        self._done = threading.Event()
        self.first: float | None = None
        self.last: float | None = None
        self.writes = 0

    def run(self) -> None:
        while not self._done.is_set():
            counts = self._emulator.call_counts
            writes = sum(
                n for name, n in counts.items() if ".batch" in name or name in WRITE_ENDPOINTS
            )
            now = time.perf_counter()
            if writes != self.writes:
                if self.first is None:
                    self.first = now
                self.last = now
                self.writes = writes
            time.sleep(0.002)

    def stop(self) -> None:
        self._done.set()
        self.join()


@dataclass
class Throughput:
    mode: str
    concurrency: int
    records: int
    calls: int
    ratio: float
    max_in_flight: int


def throughput_run(
    mode: Mode, count: int, concurrency: int, latency: float, per_call: int
) -> Throughput:
    with (
        PardotEmulator(ampsea=mode.ampsea, latency=latency) as emulator,
        tempfile.TemporaryDirectory() as work,
    ):
        emulator.add_custom_field("org_id")
        mode.seed(emulator, count)
        records = mode.records(emulator, count)
        input_path = Path(work, "input.jsonl")
        write_input(input_path, records)
        config = config_for(
            emulator, work, api_version=mode.api_version, max_concurrency=concurrency
        )
        clock = WriteClock(emulator)
        clock.start()
        run_command([TARGET, "--config", str(config)], input_path, work)
        clock.stop()
        assert clock.first is not None and clock.last is not None
        # From the first write's arrival to the last write's answer.
        seconds = clock.last - clock.first + latency
        ideal_rate = per_call * concurrency / latency
        return Throughput(
            mode.name,
            concurrency,
            len(records),
            clock.writes,
            len(records) / seconds / ideal_rate,
            emulator.max_in_flight,
        )


def throughput_section(sizes: dict[str, int]) -> str:
    latency = 0.1
    cases = [
        (
            Mode("v3 email (batchUpsert)", 3, email_rows, seed_none, ampsea=False),
            BATCH,
            "throughput",
        ),
        (Mode("v4 Pardot id (batchUpsert)", 4, id_rows, seed_half), BATCH, "throughput"),
        (Mode("v5 email (upsertLatestByEmail)", 5, email_rows, seed_none), 1, "throughput_v5"),
    ]
    results = []
    for mode, per_call, size in cases:
        for concurrency in (4, 5):
            result = throughput_run(mode, sizes[size], concurrency, latency, per_call)
            print(f"throughput: {result}", flush=True)
            results.append(result)
    rows = [
        f"| {r.mode} | {r.concurrency} | {r.records:,} | {r.calls:,} | {r.max_in_flight} "
        f"| **{r.ratio:.2f}** |"
        for r in results
    ]
    return (
        f"### Throughput at {latency * 1000:.0f} ms latency\n\nRecords per second from the "
        "first write call's arrival to the last one's answer, over the ideal (50 records x "
        "max_concurrency / latency for batch calls, max_concurrency / latency for v5).\n\n"
        "| mode | max_concurrency | records | write calls | max in flight | achieved / ideal |"
        "\n|---|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n"
    )


# -- 3. CPU against the no-op SDK target ---------------------------------------------------


@dataclass
class CpuResult:
    stream: str
    ours: float
    noop: float
    calls: int
    # User-space instructions (valgrind's cachegrind), when valgrind is installed.
    ours_instructions: int | None = None
    noop_instructions: int | None = None


def instructions(command: list[str], input_path: Path) -> int | None:
    """User-space instructions `command` executes on the input, or None without valgrind.

    CPU seconds on a shared machine move by a third from run to run; instruction counts move
    by well under a percent, so they show what a change did. They leave out what the kernel
    does for the process and time lost to cache misses and thread switches, which the CPU
    ratio includes.
    """
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    with input_path.open() as stdin:
        done = subprocess.run(
            [
                valgrind,
                "--tool=cachegrind",
                "--cache-sim=no",
                "--cachegrind-out-file=/dev/null",
                *command,
            ],
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{' '.join(command)} under valgrind failed:\n{done.stderr[-3000:]}")
    return int(found.group(1).replace(",", ""))


def cpu_run(stream: str, records: list[dict[str, Any]]) -> CpuResult:
    with PardotEmulator(ampsea=False) as emulator, tempfile.TemporaryDirectory() as work:
        input_path = Path(work, "input.jsonl")
        write_input(input_path, records)
        config = config_for(emulator, work, api_version=3)
        noop_config = Path(work, "noop.json")
        noop_config.write_text("{}")
        # Taken in turns, three times each, keeping each one's least CPU: on a shared machine
        # the other load comes and goes, and it only ever adds.
        noops, ours = [], []
        for _ in range(CPU_REPEATS):
            noops.append(run_command([*NOOP, "--config", str(noop_config)], input_path, work))
            ours.append(run_command([TARGET, "--config", str(config)], input_path, work))
        calls = emulator.api_calls // CPU_REPEATS
        # The console script is a Python file: valgrind runs the interpreter itself.
        ours_instructions = instructions(
            [sys.executable, TARGET, "--config", str(config)], input_path
        )
        noop_instructions = instructions([*NOOP, "--config", str(noop_config)], input_path)
    result = CpuResult(
        stream,
        min(usage.cpu_seconds for usage in ours),
        min(usage.cpu_seconds for usage in noops),
        calls,
        ours_instructions,
        noop_instructions,
    )
    print(f"cpu: {result}", flush=True)
    return result


def cpu_section(sizes: dict[str, int]) -> str:
    count = sizes["cpu"]
    results = [
        cpu_run(
            "Segment identify events with 10 traits (company and address objects), context",
            identify_events(None, count),
        ),
        cpu_run("Segment identify events with 4 flat traits", simple_identifies(None, count)),
    ]
    rows = [
        f"| {r.stream} | {r.calls:,} | **{r.ours / r.noop:.2f}** | {_instruction_ratio(r)} "
        f"| {r.noop * 100_000 / count:.1f} |"
        for r in results
    ]
    return (
        f"### CPU against a no-op singer-sdk target\n\n{count:,} records per stream, v3, "
        "emulator at 0 latency; both targets on the same input, validation off in both, each "
        f"run {CPU_REPEATS} times in turn and its least CPU kept; instructions counted once "
        "each under valgrind (user space only).\n\n"
        "| stream | target-pardot's API calls | CPU, target-pardot / no-op target "
        "| instructions, target-pardot / no-op target "
        "| no-op CPU s per 100k (this machine, for scale) |\n|---|---:|---:|---:|---:|\n"
        + "\n".join(rows)
        + "\n"
    )


def _instruction_ratio(result: CpuResult) -> str:
    if result.ours_instructions is None or not result.noop_instructions:
        return "(no valgrind)"
    return f"{result.ours_instructions / result.noop_instructions:.2f}"


# -- 4. memory -----------------------------------------------------------------------------


def rss_run(mode: Mode, count: int, settings: dict[str, Any]) -> Usage:
    return timed_run(mode, count, settings)[0]


def timed_run(mode: Mode, count: int, settings: dict[str, Any]) -> tuple[Usage, int, float]:
    """One target run: its usage, the API calls Pardot saw, and its wall time in seconds."""
    with (
        PardotEmulator(ampsea=mode.ampsea) as emulator,
        tempfile.TemporaryDirectory() as work,
    ):
        emulator.add_custom_field("org_id")
        mode.seed(emulator, count)
        input_path = Path(work, "input.jsonl")
        write_input(input_path, mode.records(emulator, count))
        config = config_for(emulator, work, api_version=mode.api_version, **settings)
        started = time.monotonic()
        usage = run_command([TARGET, "--config", str(config)], input_path, work)
        return usage, emulator.api_calls, time.monotonic() - started


def index_bytes_per_prospect(count: int) -> float:
    """The scan index's own memory per prospect, built in this process from synthetic pages."""
    from target_pardot.finder import Candidate, ProspectFinder
    from target_pardot.outcomes import RejectFile, RunReport

    class Pages:
        page_size = 1000

        def scan(self, after_id: int = 0) -> Any:
            for start in range(after_id, count, self.page_size):
                yield (
                    None,
                    [
                        Candidate(
                            n + 1, f"person.{n}@example.com", f"u{n}", "2026-11-24T10:00:00+00:00"
                        )
                        for n in range(start, min(start + self.page_size, count))
                    ],
                )

        def read_by_email(self, email: str) -> list[Any]:
            return []

    report = RunReport(RejectFile(os.devnull), 1)
    gc.collect()
    tracemalloc.start()
    finder = ProspectFinder(
        Pages(),
        lookup_field="org_id",
        strategy="scan",
        report=report,
        executor=None,  # type: ignore[arg-type]
    )
    finder.finish_scan()
    gc.collect()
    size, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert finder.watermark() == count
    return size / count


def memory_section(sizes: dict[str, int]) -> str:
    v3 = Mode("v3 email", 3, email_rows, seed_none, ampsea=False)
    small = rss_run(v3, sizes["rss_small"], {})
    large = rss_run(v3, sizes["rss_large"], {})
    print(f"memory: {small.peak_rss_mb:.0f} MB, {large.peak_rss_mb:.0f} MB", flush=True)
    scan = Mode("v4 lookup scan", 4, lookup_rows, seed_unit(sizes["index"]))
    indexed = rss_run(scan, 1_000, {**LOOKUP, "lookup_strategy": "scan"})
    # An import's sink batch holds 50,000 records until Pardot has imported them, and the
    # pipeline two such batches: the most memory a run with the defaults takes.
    imports = Mode("v5 import", 5, identify_events, seed_none)
    imported = rss_run(imports, sizes["rss_large"], {"write_method": "import", "campaign_id": 1})
    print(f"memory: import {imported.peak_rss_mb:.0f} MB", flush=True)
    per_prospect = index_bytes_per_prospect(sizes["index"])
    print(f"memory: index {indexed.peak_rss_mb:.0f} MB, {per_prospect:.0f} B", flush=True)
    return (
        "### Memory\n\nPeak RSS of the target process alone (v3, emulator at 0 latency):\n\n"
        "| run | peak RSS (MB) | relative |\n|---|---:|---:|\n"
        f"| {sizes['rss_small']:,} records | {small.peak_rss_mb:.0f} | 1.00 |\n"
        f"| {sizes['rss_large']:,} records | {large.peak_rss_mb:.0f} "
        f"| **{large.peak_rss_mb / small.peak_rss_mb:.2f}** |\n"
        f"| 1,000 records, v4 lookup scan over a unit of {sizes['index']:,} prospects "
        f"| {indexed.peak_rss_mb:.0f} | {indexed.peak_rss_mb / small.peak_rss_mb:.2f} |\n"
        f"| {sizes['rss_large']:,} Segment identify events, v5, `write_method: import` "
        f"(batches of 50,000) | {imported.peak_rss_mb:.0f} "
        f"| {imported.peak_rss_mb / small.peak_rss_mb:.2f} |\n\n"
        f"The scan index itself (tracemalloc, {sizes['index']:,} prospects with email, lookup "
        f"value and update time): **{per_prospect:.0f} bytes per prospect**, "
        f"{per_prospect * 1_000_000 / 1024**2:.0f} MB per million prospects.\n"
    )


# -- 5. re-sync vs create ------------------------------------------------------------------


def resync_section(sizes: dict[str, int]) -> str:
    count = sizes["resync"]
    settings = {**LOOKUP, "lookup_strategy": "scan"}
    creates = rss_run(Mode("creates", 4, lookup_rows, seed_none), count, settings)
    updates = rss_run(Mode("updates", 4, lookup_rows, seed_all), count, settings)
    ratio = updates.cpu_seconds / creates.cpu_seconds
    print(f"resync: {ratio:.2f}", flush=True)
    return (
        f"### Re-sync vs create\n\n{count:,} records (v4, lookup by userId, scan): into an empty "
        f"business unit, then into one already holding all {count:,} of them. Target CPU "
        f"updates / creates: **{ratio:.2f}**; peak RSS {creates.peak_rss_mb:.0f} MB and "
        f"{updates.peak_rss_mb:.0f} MB.\n"
    )


# -- 6. Import API vs the prospect endpoints ----------------------------------------------

# Each mode is written once through the prospect endpoints and once through the Import API.
IMPORT_MODES: tuple[tuple[Mode, dict[str, Any]], ...] = (
    # v5 has no batch write: one call per record in api mode; an import takes every write.
    (Mode("v5 email, half existing", 5, email_rows, seed_half), {"campaign_id": 1}),
    # v4 writes 50 a call in api mode; its imports take updates of existing prospects only.
    (Mode("v4 Pardot id, all existing", 4, id_rows, seed_all), {}),
)


def import_section(sizes: dict[str, int]) -> str:
    """The same records written through the prospect endpoints, then imported, per version."""
    count = sizes["import"]
    rows = []
    for mode, import_settings in IMPORT_MODES:
        api, api_calls, api_seconds = timed_run(mode, count, {})
        imported, import_calls, import_seconds = timed_run(
            mode, count, {"write_method": "import", **import_settings}
        )
        print(f"import: {mode.name}: {import_calls} calls against {api_calls}", flush=True)
        rows.append(
            f"| {mode.name} | **{import_calls}** | {api_calls:,} "
            f"| **{import_seconds / api_seconds:.3f}** "
            f"| {imported.cpu_seconds / api.cpu_seconds:.2f} "
            f"| {imported.peak_rss_mb:.0f} / {api.peak_rss_mb:.0f} |"
        )
    return (
        f"### Import API vs the prospect endpoints\n\n{count:,} records per mode, written once "
        "with `write_method: api` and once with `import` (emulator at 0 latency):\n\n"
        "| mode | API calls, import | API calls, api | wall time import / api "
        "| target CPU import / api | target peak RSS, import / api (MB) |\n"
        "|---|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n\n"
        "The emulator finishes an import as soon as it is polled; Pardot queues imports, which "
        "adds its own minutes to a real run (the calls stay the same, polls aside).\n"
    )


# -- the report ----------------------------------------------------------------------------


def machine() -> str:
    memory = "unknown memory"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024**2:.0f} GiB memory"
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs (nproc), {memory}, {platform.machine()}, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )


RUNNERS: dict[str, Callable[[dict[str, int]], str]] = {
    "calls": calls_section,
    "throughput": throughput_section,
    "cpu": cpu_section,
    "memory": memory_section,
    "resync": resync_section,
    "import": import_section,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run this section")
    parser.add_argument("--quick", action="store_true", help=f"small sizes: {QUICK}")
    parser.add_argument("--write", action="store_true", help=f"update {DOC.relative_to(ROOT)}")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    started = time.monotonic()
    parts = [RUNNERS[name](sizes) for name in SECTIONS if not args.only or name in args.only]
    minutes = math.ceil((time.monotonic() - started) / 60)
    text = (
        f"Run on {datetime.date.today().isoformat()}{' (--quick)' if args.quick else ''}, "
        f"in about {minutes} minutes. Machine: {machine()}.\n\n" + "\n".join(parts)
    )
    print("\n" + text)
    if args.write:
        doc = DOC.read_text()
        start = doc.index(MARKER) + len(MARKER)
        DOC.write_text(doc[:start] + "\n\n" + text)


if __name__ == "__main__":
    main()
