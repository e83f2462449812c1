"""Measure target-pardot's throughput, API cost and memory against the local emulator.

Runs the real `target-pardot` command once per scenario, with the emulator answering after a
fixed latency (real Pardot answers in tens to hundreds of milliseconds, so wall time is
dominated by how well calls overlap). Prints a Markdown table and, with --write, replaces the
results section of docs/benchmarks.md. Timings are for the machine it ran on: compare runs on
one machine, never against a fixed number (which is why no test asserts on them).

    python scripts/benchmark.py [--records 10000] [--latency 0.05] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from target_pardot.emulator import DEFAULT_CREDENTIALS, PardotEmulator  # noqa: E402

TARGET = str(Path(sys.executable).with_name("target-pardot"))
DOC = ROOT / "docs" / "benchmarks.md"
MARKER = "<!-- results -->"


@dataclass
class Scenario:
    name: str
    api_version: int
    ampsea: bool
    records: Callable[[int], list[dict[str, Any]]]
    seed: Callable[[PardotEmulator, int], None]
    settings: dict[str, Any]


@dataclass
class Result:
    scenario: str
    records: int
    seconds: float
    api_calls: int
    token_calls: int
    max_in_flight: int
    peak_rss_mb: float
    prospects: int


def email_rows(count: int) -> list[dict[str, Any]]:
    return [
        {"email": f"p{n}@example.com", "first_name": f"F{n}", "company": f"Co {n % 97}"}
        for n in range(count)
    ]


def lookup_rows(count: int) -> list[dict[str, Any]]:
    return [
        {
            "userId": f"u{n}",
            "traits": {"email": f"p{n}@example.com", "org_id": f"org-{n}", "firstName": f"F{n}"},
        }
        for n in range(count)
    ]


def seed_half(emulator: PardotEmulator, count: int) -> None:
    for n in range(0, count, 2):
        emulator.add_prospect(email=f"p{n}@example.com", org_id=f"org-{n}")


def id_rows_for(emulator: PardotEmulator, count: int) -> list[dict[str, Any]]:
    ids = [p["id"] for p in emulator.prospects()]
    return [{"pardot_id": str(ids[n % len(ids)]), "city": f"City {n}"} for n in range(count)]


def run(scenario: Scenario, count: int, latency: float) -> Result:
    with (
        PardotEmulator(ampsea=scenario.ampsea, latency=latency) as emulator,
        tempfile.TemporaryDirectory() as work,
    ):
        emulator.add_custom_field("org_id")
        scenario.seed(emulator, count)
        records = (
            id_rows_for(emulator, count)
            if scenario.name.startswith("v4 update by Pardot id")
            else scenario.records(count)
        )
        config = {
            "business_unit_id": DEFAULT_CREDENTIALS["business_unit_id"],
            "client_id": DEFAULT_CREDENTIALS["client_id"],
            "client_secret": DEFAULT_CREDENTIALS["client_secret"],
            "refresh_token": DEFAULT_CREDENTIALS["refresh_token"],
            "login_url": emulator.url,
            "pardot_url": emulator.url,
            "api_version": scenario.api_version,
            "reject_file": f"{work}/rejects.jsonl",
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
        started = time.perf_counter()
        stderr_path = Path(work, "stderr.log")
        with input_path.open() as stdin, stderr_path.open("w") as stderr:
            process = subprocess.Popen(
                [TARGET, "--config", str(config_path)],
                stdin=stdin,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
            # wait4 gives this one child's resource usage; ru_maxrss is in KiB on Linux.
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        if process.returncode != 0:
            raise SystemExit(f"{scenario.name} failed:\n{stderr_path.read_text()[-3000:]}")
        peak = usage.ru_maxrss / 1024
        seeded = len(emulator.prospects())
        return Result(
            scenario.name,
            len(records),
            seconds,
            emulator.api_calls,
            emulator.token_calls,
            emulator.max_in_flight,
            peak,
            seeded,
        )


SCENARIOS = [
    Scenario("v3 batchUpsert by email, half existing", 3, False, email_rows, seed_half, {}),
    Scenario("v4 email match (auto -> scan), half existing", 4, True, email_rows, seed_half, {}),
    Scenario(
        "v4 lookup by userId (scan), half existing",
        4,
        True,
        lookup_rows,
        seed_half,
        {"lookup_field": "org_id", "use_user_id_as_lookup": True, "lookup_strategy": "scan"},
    ),
    Scenario("v4 update by Pardot id", 4, True, email_rows, seed_half, {}),
    Scenario("v5 upsertLatestByEmail, half existing", 5, True, email_rows, seed_half, {}),
]


def table(results: list[Result], latency: float) -> str:
    head = (
        f"Machine: {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, emulator latency {latency * 1000:.0f} ms per call, "
        "max_concurrency 4.\n\n"
        "| scenario | records | seconds | records/s | API calls | calls/record | token calls "
        "| max in flight | peak RSS (MB) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = [
        f"| {r.scenario} | {r.records} | {r.seconds:.1f} | {r.records / r.seconds:.0f} | "
        f"{r.api_calls} | {r.api_calls / r.records:.3f} | {r.token_calls} | {r.max_in_flight} "
        f"| {r.peak_rss_mb:.0f} |"
        for r in results
    ]
    return head + "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--only", help="run scenarios whose name contains this text")
    parser.add_argument("--write", action="store_true", help=f"update {DOC.relative_to(ROOT)}")
    args = parser.parse_args()
    results = []
    for scenario in SCENARIOS:
        if args.only and args.only not in scenario.name:
            continue
        count = args.records if scenario.api_version != 5 else max(1, args.records // 5)
        result = run(scenario, count, args.latency)
        print(
            f"{result.scenario}: {result.records} records in {result.seconds:.1f}s, "
            f"{result.api_calls} API calls",
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
