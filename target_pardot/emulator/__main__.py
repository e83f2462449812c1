"""``pardot-emulator``: run the emulator until SIGINT/SIGTERM, for demos and manual testing."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from target_pardot.settings import is_loopback

from .oauth import DEFAULT_CREDENTIALS
from .server import PardotEmulator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pardot-emulator",
        description="Local emulator of Salesforce OAuth and the Pardot API (loopback only).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    parser.add_argument("--port-file", type=Path, help="write the URL here once listening")
    parser.add_argument(
        "--ampsea",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="allow several prospects per email (v4); --no-ampsea for v3",
    )
    parser.add_argument("--business-unit-id", default=DEFAULT_CREDENTIALS["business_unit_id"])
    parser.add_argument("--seed", type=Path, help="JSON Lines file of prospects to add")
    parser.add_argument(
        "--custom-field",
        action="append",
        default=[],
        metavar="FIELD_ID[:TYPE[:multi]]",
        help="add a custom field (repeatable)",
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per API request")
    parser.add_argument("--concurrency-limit", type=int, default=5)
    parser.add_argument("--daily-limit", type=int, default=None)
    parser.add_argument("--token-ttl", type=float, default=None, help="token lifetime, seconds")
    parser.add_argument("--fail-every", type=int, default=None, help="every Nth call -> 500")
    parser.add_argument(
        "--drop-after-commit-every",
        type=int,
        default=None,
        help="every Nth call is applied, then the connection is dropped",
    )
    return parser


def _custom_field(spec: str) -> dict[str, Any]:
    field_id, _, rest = spec.partition(":")
    field_type, _, flag = rest.partition(":")
    if not field_id or flag not in ("", "multi"):
        raise ValueError(f"bad --custom-field {spec!r}; expected FIELD_ID[:TYPE[:multi]]")
    return {"field_id": field_id, "type": field_type or "Text", "multi": flag == "multi"}


def _seed(emulator: PardotEmulator, path: Path) -> int:
    count = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("expected a JSON object")
            email = record.pop("email", None)
            emulator.add_prospect(email, **record)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: {exc}") from exc
        count += 1
    return count


def _write_port_file(path: Path, url: str) -> None:
    # Written atomically so a watcher never reads a half-written URL.
    fd, temporary = tempfile.mkstemp(dir=path.parent or Path("."), prefix=".pardot-emulator-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(url + "\n")
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not is_loopback(args.host):
        parser.error(f"--host must be a loopback address, not {args.host!r}")
    emulator = PardotEmulator(
        ampsea=args.ampsea,
        business_unit_id=args.business_unit_id,
        latency=args.latency,
        concurrency_limit=args.concurrency_limit,
        daily_limit=args.daily_limit,
        token_ttl_seconds=args.token_ttl,
        fail_every=args.fail_every,
        drop_after_commit_every=args.drop_after_commit_every,
        host=args.host,
        port=args.port,
    )
    try:
        for spec in args.custom_field:
            emulator.add_custom_field(**_custom_field(spec))
        seeded = _seed(emulator, args.seed) if args.seed else 0
    except (OSError, ValueError) as exc:
        parser.error(str(exc))

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    emulator.start()
    try:
        print(f"pardot-emulator listening on {emulator.url}", flush=True)
        print(f"  token endpoint: {emulator.url}/services/oauth2/token", flush=True)
        print("  credentials (emulator defaults, not secrets):", flush=True)
        for name, value in DEFAULT_CREDENTIALS.items():
            shown = args.business_unit_id if name == "business_unit_id" else value
            print(f"    {name}: {shown}", flush=True)
        print(f"  ampsea: {args.ampsea}; seeded prospects: {seeded}", flush=True)
        if args.port_file:
            _write_port_file(args.port_file, emulator.url)
        while not stop.wait(0.2):
            pass
    finally:
        emulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("pardot-emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
