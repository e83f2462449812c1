"""Measure target-pardot's API cost, overlap, CPU and memory against the local emulator.

Runs the real `target-pardot` command once per scenario, with the emulator answering after a
fixed latency (real Pardot answers in tens to hundreds of milliseconds, so wall time is
dominated by how well calls overlap). Prints a Markdown table and, with --write, replaces the
results section of docs/benchmarks.md.

Everything reported is a ratio measured within this one run, never a bare time (times depend
on the machine and its load; no test asserts on them):

- wall / ideal: the run's wall time over the least the calls it made could take at this
  latency: query calls one after another (a scan pages sequentially), every other call
  `max_concurrency` at a time. 1.0 is perfect overlap.
- emulator CPU / target CPU: whether the benchmark measured the target or its emulator.
- updates / creates: target CPU of re-syncing a business unit whose prospects all exist, over
  the CPU of creating the same prospects in an empty unit (goal: at most 1.5).
- import / api: API calls and wall time of the same v5 records written through the Import API
  (write_method import) over writing them one call each (write_method api).

Peak RSS and CPU are the target process's own: it is started through scripts/measure.py, a
small process whose only child it is (see there for why).

    python scripts/benchmark.py [--records 10000] [--v5-records 2000] [--unit 50000]
                                [--import-records 100000] [--latency 0.05] [--only TEXT]
                                [--quick] [--write]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pardot_emulator import DEFAULT_CREDENTIALS, PardotEmulator  # noqa: E402

TARGET = str(Path(sys.executable).with_name("target-pardot"))
MEASURE = Path(__file__).resolve().with_name("measure.py")
DOC = ROOT / "docs" / "benchmarks.md"
MARKER = "<!-- results -->"
MAX_CONCURRENCY = 4  # the target's default, which the scenarios keep
UPDATE_CPU_GOAL = 1.5
# --quick: every scenario in a few seconds, to check the script itself still works.
QUICK = {"records": 500, "v5_records": 100, "unit": 1000, "import_records": 2000}

Records = Callable[[PardotEmulator, int], list[dict[str, Any]]]


@dataclass
class Scenario:
    name: str
    api_version: int
    ampsea: bool
    records: Records
    seed: Callable[[PardotEmulator, int], None]
    settings: dict[str, Any]
    # Which size option sets the record count: "records", "v5_records", "unit" or
    # "import_records".
    size: str = "records"


@dataclass
class Usage:
    returncode: int
    peak_rss_mb: float
    cpu_seconds: float


@dataclass
class Result:
    scenario: str
    records: int
    prospects_before: int
    prospects_after: int
    seconds: float
    ideal_seconds: float
    api_calls: int
    token_calls: int
    max_in_flight: int
    target_cpu: float
    emulator_cpu: float
    peak_rss_mb: float


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


def id_rows(emulator: PardotEmulator, count: int) -> list[dict[str, Any]]:
    ids = [p["id"] for p in emulator.prospects()]
    return [{"pardot_id": str(ids[n % len(ids)]), "city": f"City {n}"} for n in range(count)]


def seed_none(emulator: PardotEmulator, count: int) -> None:
    pass


def seed_half(emulator: PardotEmulator, count: int) -> None:
    # org_id holds the userId of lookup_rows, so the lookup scenarios find these prospects.
    for n in range(0, count, 2):
        emulator.add_prospect(email=f"p{n}@example.com", org_id=f"u{n}")


def seed_all(emulator: PardotEmulator, count: int) -> None:
    for n in range(count):
        emulator.add_prospect(email=f"p{n}@example.com", org_id=f"u{n}")


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


def ideal_seconds(call_counts: dict[str, int], latency: float) -> float:
    """The least the calls made could take: queries in sequence, the rest 4 at a time."""
    queries = sum(n for endpoint, n in call_counts.items() if endpoint.endswith(".query"))
    others = sum(call_counts.values()) - queries
    return latency * (queries + math.ceil(others / MAX_CONCURRENCY))


def own_cpu() -> float:
    # This process: the emulator's threads, plus the little the benchmark does meanwhile.
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(scenario: Scenario, count: int, latency: float) -> Result:
    with (
        PardotEmulator(ampsea=scenario.ampsea, latency=latency) as emulator,
        tempfile.TemporaryDirectory() as work,
    ):
        emulator.add_custom_field("org_id")
        scenario.seed(emulator, count)
        prospects_before = len(emulator.prospects())
        records = scenario.records(emulator, count)
        config = {
            "business_unit_id": DEFAULT_CREDENTIALS["business_unit_id"],
            "client_id": DEFAULT_CREDENTIALS["client_id"],
            "client_secret": DEFAULT_CREDENTIALS["client_secret"],
            "refresh_token": DEFAULT_CREDENTIALS["refresh_token"],
            "login_url": emulator.url,
            "pardot_url": emulator.url,
            "api_version": scenario.api_version,
            "reject_file": f"{work}/rejects.jsonl",
            "import_state_path": f"{work}/imports.json",
            **scenario.settings,
        }
        config_path = Path(work, "config.json")
        config_path.write_text(json.dumps(config))
        lines = [
            json.dumps(
                {
                    "type": "SCHEMA",
                    "stream": "users",
                    "key_properties": [],
                    "schema": {"type": "object", "properties": {}},
                }
            )
        ]
        lines += [json.dumps({"type": "RECORD", "stream": "users", "record": r}) for r in records]
        input_path = Path(work, "input.jsonl")
        input_path.write_text("\n".join(lines) + "\n")
        stderr_path = Path(work, "stderr.log")
        cpu_before = own_cpu()
        started = time.perf_counter()
        with input_path.open() as stdin, stderr_path.open("w") as stderr:
            usage = measure([TARGET, "--config", str(config_path)], stdin, stderr, work)
        seconds = time.perf_counter() - started
        emulator_cpu = own_cpu() - cpu_before
        if usage.returncode != 0:
            raise SystemExit(f"{scenario.name} failed:\n{stderr_path.read_text()[-3000:]}")
        stats = emulator.stats()
        return Result(
            scenario=scenario.name,
            records=len(records),
            prospects_before=prospects_before,
            prospects_after=len(emulator.prospects()),
            seconds=seconds,
            ideal_seconds=ideal_seconds(stats["call_counts"], latency),
            api_calls=stats["api_calls"],
            token_calls=stats["token_calls"],
            max_in_flight=stats["max_in_flight"],
            target_cpu=usage.cpu_seconds,
            emulator_cpu=emulator_cpu,
            peak_rss_mb=usage.peak_rss_mb,
        )


LOOKUP_SCAN = {"lookup_field": "org_id", "use_user_id_as_lookup": True, "lookup_strategy": "scan"}
# The pair whose target CPU is compared: the same records, into an empty unit and into a unit
# that already holds every one of them (a nightly re-sync).
CREATES = "v4 lookup by userId (scan), all new, empty unit"
UPDATES = "v4 lookup by userId (scan), all existing: re-sync"
# The pair compared for the Import API: the same v5 records, one call each or imported.
BY_API = "v5 upsertLatestByEmail (write_method api), half existing"
BY_IMPORT = "v5 Import API (write_method import), half existing"
IMPORT = {"write_method": "import", "campaign_id": 1}

SCENARIOS = [
    Scenario("v3 batchUpsert by email, half existing", 3, False, email_rows, seed_half, {}),
    Scenario("v4 email match (auto -> scan), half existing", 4, True, email_rows, seed_half, {}),
    Scenario(
        "v4 lookup by userId (scan), half existing", 4, True, lookup_rows, seed_half, LOOKUP_SCAN
    ),
    Scenario("v4 update by Pardot id", 4, True, id_rows, seed_half, {}),
    Scenario(
        "v5 upsertLatestByEmail, half existing", 5, True, email_rows, seed_half, {}, "v5_records"
    ),
    Scenario(CREATES, 4, True, lookup_rows, seed_none, LOOKUP_SCAN, "unit"),
    Scenario(UPDATES, 4, True, lookup_rows, seed_all, LOOKUP_SCAN, "unit"),
    Scenario(BY_IMPORT, 5, True, email_rows, seed_half, IMPORT, "import_records"),
    Scenario(BY_API, 5, True, email_rows, seed_half, {}, "import_records"),
]


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


def table(results: list[Result], latency: float) -> str:
    head = (
        f"Run on {datetime.date.today().isoformat()}. Machine: {machine()}. Emulator latency "
        f"{latency * 1000:.0f} ms per call, max_concurrency {MAX_CONCURRENCY}.\n\n"
        "| scenario | records | prospects before -> after | API calls | calls/record "
        "| token calls | max in flight | wall / ideal | emulator CPU / target CPU "
        "| target peak RSS (MB) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = [
        f"| {r.scenario} | {r.records} | {r.prospects_before} -> {r.prospects_after} "
        f"| {r.api_calls} | {r.api_calls / r.records:.3f} | {r.token_calls} | {r.max_in_flight} "
        f"| {r.seconds / r.ideal_seconds:.2f} | {r.emulator_cpu / r.target_cpu:.2f} "
        f"| {r.peak_rss_mb:.0f} |"
        for r in results
    ]
    text = head + "\n".join(rows) + "\n"
    by_name = {r.scenario: r for r in results}
    if CREATES in by_name and UPDATES in by_name:
        creates, updates = by_name[CREATES], by_name[UPDATES]
        cpu = updates.target_cpu / creates.target_cpu
        verdict = "within" if cpu <= UPDATE_CPU_GOAL else "OVER"
        text += (
            f"\nRe-sync vs create, {updates.records} records over a unit of "
            f"{updates.prospects_before} prospects: target CPU ratio updates / creates "
            f"**{cpu:.2f}** ({verdict} the {UPDATE_CPU_GOAL}x goal); wall time ratio "
            f"{updates.seconds / creates.seconds:.2f}.\n"
        )
    if BY_API in by_name and BY_IMPORT in by_name:
        api, imported = by_name[BY_API], by_name[BY_IMPORT]
        text += (
            f"\nImport API vs one call per record, the same {imported.records} v5 records (half "
            f"of them existing): **{imported.api_calls} API calls against {api.api_calls}** "
            f"({imported.api_calls / api.api_calls:.5f} of them); wall time ratio import / api "
            f"**{imported.seconds / api.seconds:.3f}**; target CPU ratio "
            f"{imported.target_cpu / api.target_cpu:.2f}; target peak RSS "
            f"{imported.peak_rss_mb:.0f} MB against {api.peak_rss_mb:.0f} MB. The emulator "
            "finishes an import as soon as it is polled (Pardot queues imports, which adds its "
            "own minutes to a real run; the calls stay the same, polls aside).\n"
        )
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000, help="v3/v4 scenarios")
    parser.add_argument("--v5-records", type=int, default=2_000, help="v5: 1 call per record")
    parser.add_argument("--unit", type=int, default=50_000, help="re-sync vs create pair")
    parser.add_argument("--import-records", type=int, default=100_000, help="v5 import vs api pair")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--only", help="run scenarios whose name contains this text")
    parser.add_argument("--quick", action="store_true", help=f"small sizes: {QUICK}")
    parser.add_argument("--write", action="store_true", help=f"update {DOC.relative_to(ROOT)}")
    args = parser.parse_args()
    sizes = {
        "records": args.records,
        "v5_records": args.v5_records,
        "unit": args.unit,
        "import_records": args.import_records,
    }
    if args.quick:
        sizes.update(QUICK)
    results = []
    for scenario in SCENARIOS:
        if args.only and args.only not in scenario.name:
            continue
        result = run(scenario, sizes[scenario.size], args.latency)
        print(
            f"{result.scenario}: {result.records} records, {result.api_calls} API calls, "
            f"wall / ideal {result.seconds / result.ideal_seconds:.2f}",
            flush=True,
        )
        results.append(result)
    text = table(results, args.latency)
    print("\n" + text)
    if args.write:
        doc = DOC.read_text()
        start = doc.index(MARKER) + len(MARKER)
        DOC.write_text(doc[:start] + "\n\n" + text)


if __name__ == "__main__":
    main()
