#!/usr/bin/env python3
"""The demo (`make demo`): the Meltano pipeline tap-jsonl -> target-pardot against the emulator.

1. Starts the bundled Pardot emulator on a free local port, seeded with demo/seed-prospects.jsonl
   and a custom field `org_id`.
2. Runs `meltano --environment=demo run tap-jsonl target-pardot` on demo/data/*.jsonl,
   streaming its output. Every run reads every file (see the tap's capabilities in meltano.yml).
3. Prints the target's summary line, what the emulator now holds, the API calls it served and the
   rejected records grouped by reason (demo/out/rejects.jsonl, cleared first).

Everything talks to 127.0.0.1 only; Meltano's telemetry is off. The emulator is always stopped.
Exits with Meltano's exit code when the pipeline fails. Standard library only; run it with the
project's virtualenv Python (it finds meltano and pardot-emulator next to that interpreter).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SEED_FILE = ROOT / "demo" / "seed-prospects.jsonl"
OUT_DIR = ROOT / "demo" / "out"
REJECT_FILE = OUT_DIR / "rejects.jsonl"  # must match reject_file in meltano.yml's demo env
EMULATOR_LOG = OUT_DIR / "emulator.log"
SUMMARY_MARK = "target-pardot summary:"
PLUGIN_VENVS = (
    ROOT / ".meltano" / "extractors" / "tap-jsonl" / "venv",
    ROOT / ".meltano" / "loaders" / "target-pardot" / "venv",
)
TABLE_COLUMNS = ("id", "email", "first_name", "last_name", "company", "org_id")
TABLE_ROWS = 15


class DemoError(Exception):
    """A problem that ends the demo with a message rather than a traceback."""


def executable(name: str) -> str:
    """`name` from this interpreter's bin directory (the venv), else from PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise DemoError(
        f"{name} not found next to {sys.executable} nor on PATH: run `make demo` "
        "(it creates .venv and installs the project with its dev extras)."
    )


def banner(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 74 - len(text)), flush=True)


# --- emulator --------------------------------------------------------------------------------


def start_emulator(port_file: Path, timeout: float) -> tuple[subprocess.Popen[bytes], str]:
    """Start pardot-emulator and return it with its base URL (read from the port file)."""
    try:
        command = [executable("pardot-emulator")]
    except DemoError:
        command = [sys.executable, "-m", "pardot_emulator"]
    command += [
        "--port", "0",
        "--port-file", str(port_file),
        "--seed", str(SEED_FILE),
        "--custom-field", "org_id",
        # Real Pardot answers in tens of milliseconds; with some latency the demo shows the
        # target keeping several calls in flight (at most max_concurrency).
        "--latency", "0.05",
    ]  # fmt: skip
    print("$ " + " ".join(command), flush=True)
    log = EMULATOR_LOG.open("wb")
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    log.close()  # the child keeps its own handle

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        url = port_file.read_text(encoding="utf-8").strip() if port_file.exists() else ""
        if url:
            return process, url.rstrip("/")
        if process.poll() is not None:
            raise DemoError(
                f"the emulator exited with code {process.returncode} before listening.\n"
                f"Its output ({EMULATOR_LOG.relative_to(ROOT)}):\n{tail(EMULATOR_LOG)}"
            )
        time.sleep(0.05)
    stop_emulator(process)
    raise DemoError(
        f"the emulator did not write its URL to {port_file} within {timeout:g}s.\n"
        f"Its output ({EMULATOR_LOG.relative_to(ROOT)}):\n{tail(EMULATOR_LOG)}"
    )


def stop_emulator(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def get_json(url: str) -> Any:
    if not url.startswith("http://127.0.0.1:"):
        raise DemoError(f"refusing to call {url}: the demo only talks to the local emulator")
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (checked above)
            return json.load(response)
    except (OSError, ValueError) as error:
        raise DemoError(f"GET {url} failed: {error}") from error


def tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return "(no output)"
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:]) or "(no output)"


# --- meltano ---------------------------------------------------------------------------------


# Where the demo writes and as whom, as meltano.yml's demo environment says (a test checks they
# agree). Pinned as environment variables because TARGET_PARDOT_* variables of the caller's
# shell or of the project's .env (where `meltano config set` keeps secrets) beat meltano.yml:
# a shell set up for a real Pardot must not get the sample prospects written into it.
DEMO_CONNECTION = {
    "login_url": "{url}/",
    "pardot_url": "{url}/",
    "business_unit_id": "0Uv000000000001AAA",
    "auth_flow": "refresh_token",
    "client_id": "emulator-client-id",
    "client_secret": "emulator-client-secret",
    "refresh_token": "emulator-refresh-token",
}
# Credentials of the other auth flows and the sandbox switch: blank, so they are unset.
DEMO_UNSET = ("username", "password", "private_key", "access_token", "sandbox")


def meltano_env(emulator_url: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if environ is None else environ)
    env["PARDOT_EMULATOR_URL"] = emulator_url
    env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    # Other TARGET_PARDOT_* variables still override meltano.yml, so
    # `TARGET_PARDOT_LOOKUP_STRATEGY=scan make demo` tries another setting.
    overridden = sorted(
        f"TARGET_PARDOT_{name.upper()}"
        for name in (*DEMO_CONNECTION, *DEMO_UNSET)
        if env.get(f"TARGET_PARDOT_{name.upper()}")
    )
    if overridden:
        print(
            f"note: the demo ignores {', '.join(overridden)} from your environment: it always "
            "writes to the bundled emulator.",
            flush=True,
        )
    for name, value in DEMO_CONNECTION.items():
        env[f"TARGET_PARDOT_{name.upper()}"] = value.format(url=emulator_url)
    for name in DEMO_UNSET:
        env[f"TARGET_PARDOT_{name.upper()}"] = ""
    return env


def ensure_plugins(meltano: str, env: dict[str, str]) -> None:
    """`meltano install` when a plugin venv is missing (a no-op install still costs seconds)."""
    missing = [path for path in PLUGIN_VENVS if not path.exists()]
    if not missing:
        return
    banner("meltano install (first run: installs the plugins from the package index)")
    command = [meltano, "install"]
    print("$ " + " ".join(command), flush=True)
    result = subprocess.run(command, cwd=ROOT, env=env, check=False)
    if result.returncode != 0:
        raise DemoError(f"meltano install failed with exit code {result.returncode}")


def run_pipeline(meltano: str, env: dict[str, str]) -> tuple[int, list[str]]:
    """Run the pipeline, echo its output as it comes, return (exit code, summary lines)."""
    command = [
        meltano, "--environment=demo", "run", "tap-jsonl", "target-pardot",
    ]  # fmt: skip
    print("$ " + " ".join(command), flush=True)
    summaries: list[str] = []
    with subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
        bufsize=1,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            if SUMMARY_MARK in line:
                summaries.append(clean_summary(line))
        return process.wait(), summaries


def clean_summary(line: str) -> str:
    """The summary text out of Meltano's log line (drop its timestamp and key=value tail)."""
    text = line[line.index(SUMMARY_MARK) :].rstrip()
    cut = text.find(" cmd_type=")
    return text[:cut].rstrip() if cut >= 0 else text


# --- report ----------------------------------------------------------------------------------


def print_table(rows: list[dict[str, Any]], columns: tuple[str, ...], width: int = 34) -> None:
    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        return text if len(text) <= width else text[: width - 1] + "…"

    cells = [[cell(row.get(column)) for column in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))


def sort_key(prospect: dict[str, Any]) -> tuple[int, str]:
    value = str(prospect.get("id", ""))
    return (int(value), "") if value.isdigit() else (sys.maxsize, value)


def report(emulator_url: str, summaries: list[str]) -> None:
    banner("target-pardot summary")
    if summaries:
        for line in summaries:
            print(line)
    else:
        print(f"(no '{SUMMARY_MARK}' line in the output: the target did not finish its run)")

    banner("prospects in the emulator")
    prospects = get_json(f"{emulator_url}/_emulator/prospects")
    seeded = sum(1 for line in SEED_FILE.read_text(encoding="utf-8").splitlines() if line.strip())
    print(f"{len(prospects)} prospects ({seeded} were seeded before the run)")
    shown = sorted(prospects, key=sort_key)[:TABLE_ROWS]
    if shown:
        print(f"first {len(shown)} by id:\n")
        print_table(shown, TABLE_COLUMNS)

    banner("emulator API calls")
    stats = get_json(f"{emulator_url}/_emulator/stats")
    for endpoint, count in sorted((stats.get("call_counts") or {}).items()):
        print(f"  {count:6d}  {endpoint}")
    print(
        f"  API calls: {stats.get('api_calls')}, token calls: {stats.get('token_calls')}, "
        f"most calls in flight at once: {stats.get('max_in_flight')}"
    )

    banner("rejected records")
    rejects = read_rejects()
    print(f"{len(rejects)} rejected records ({REJECT_FILE.relative_to(ROOT)})")
    groups: Counter[tuple[str, str, str]] = Counter()
    for rejection in rejects:
        reason = str(rejection.get("reason", "?"))
        reason = reason if len(reason) <= 110 else reason[:109] + "…"
        code = "-" if rejection.get("code") is None else str(rejection["code"])
        groups[(str(rejection.get("field") or "-"), code, reason)] += 1
    if groups:
        print()
        print_table(
            [
                {"count": n, "code": code, "field": field, "reason": reason}
                for (field, code, reason), n in groups.most_common()
            ],
            ("count", "code", "field", "reason"),
            width=110,
        )


def read_rejects() -> list[dict[str, Any]]:
    if not REJECT_FILE.exists():
        return []
    rejects = []
    for line in REJECT_FILE.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                rejects.append(json.loads(line))
            except json.JSONDecodeError:
                rejects.append({"reason": f"(unreadable reject line) {line[:80]}"})
    return rejects


# --- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--emulator-timeout",
        type=float,
        default=30.0,
        help="seconds to wait for the emulator to start listening (default 30)",
    )
    args = parser.parse_args(argv)

    os.chdir(ROOT)  # Meltano finds its project (meltano.yml) in the working directory
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    REJECT_FILE.unlink(missing_ok=True)
    meltano = executable("meltano")

    emulator: subprocess.Popen[bytes] | None = None
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="pardot-demo-") as scratch:
            banner("starting the Pardot emulator")
            emulator, url = start_emulator(Path(scratch) / "emulator-url", args.emulator_timeout)
            print(f"emulator listening at {url} (log: {EMULATOR_LOG.relative_to(ROOT)})")

            env = meltano_env(url)
            ensure_plugins(meltano, env)

            banner("meltano run tap-jsonl target-pardot")
            code, summaries = run_pipeline(meltano, env)

            report(url, summaries)
        banner("done")
        elapsed = time.monotonic() - started
        if code != 0:
            print(f"the Meltano pipeline FAILED (exit code {code}) after {elapsed:.1f}s")
            return code
        print(f"the Meltano pipeline succeeded in {elapsed:.1f}s")
        return 0
    except DemoError as error:
        print(f"\ndemo failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        if emulator is not None:
            stop_emulator(emulator)


if __name__ == "__main__":
    sys.exit(main())
