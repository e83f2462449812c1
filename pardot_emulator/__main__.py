"""``pardot-emulator``: run the emulator until SIGINT/SIGTERM, for demos and manual testing."""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from .gate import is_business_unit_id
from .loopback import is_loopback
from .oauth import DEFAULT_CREDENTIALS
from .server import PardotEmulator
from .store import UnknownSeedFields

# The inspection and control endpoints (control.py), for the --help epilog. A test compares
# this list with the routes control.py serves, so a new endpoint cannot go undocumented.
CONTROL_ENDPOINTS: tuple[tuple[str, str], ...] = (
    (
        "GET  /_emulator/prospects[?include_archived=true]",
        "every prospect held, custom fields included (a JSON list)",
    ),
    (
        "GET  /_emulator/imports",
        "every import made (Import API): status, batches, rows, header and counts",
    ),
    (
        "GET  /_emulator/stats",
        "calls received: call_counts per endpoint (v4.prospect.batchUpsert...),\n"
        "api_calls, token_calls, max_in_flight",
    ),
    (
        "POST /_emulator/prospects",
        'add a prospect: {"email": "a@example.com", "first_name": "A"}',
    ),
    (
        "POST /_emulator/custom-fields",
        'add a custom field: {"field_id": "org_id", "type": "Text", "multi": false}',
    ),
    (
        "POST /_emulator/queue-error",
        "the next calls fail with this Pardot error code:\n"
        '{"code": 66, "endpoint": "v4.prospect.batchUpsert", "count": 2}\n'
        "(endpoint names as in /_emulator/stats; none: any endpoint)",
    ),
    (
        "POST /_emulator/reset-daily-usage",
        "start a new day for --daily-limit (no more error 122)",
    ),
)


def _epilog() -> str:
    endpoints = "".join(
        f"  {route}\n" + "".join(f"      {line}\n" for line in text.splitlines())
        for route, text in CONTROL_ENDPOINTS
    )
    credentials = "\n".join(
        f"  {name.ljust(17)} {value}" for name, value in DEFAULT_CREDENTIALS.items()
    )
    return f"""\
One URL serves everything; it is printed on start and written to --port-file.
Point target-pardot at it with login_url and pardot_url both set to that URL:
  POST /services/oauth2/token          Salesforce OAuth token endpoint
  /api/prospect/version/N/...          Pardot API v3 and v4 (N is 3 or 4)
  /api/customField/version/N/do/query
  /api/v5/objects/prospects...         Pardot API v5
  /api/v5/objects/custom-fields
  /api/v5/imports...                   Pardot API v5 Import API (bulk CSV upserts)
  /api/import/version/4/do/...         Pardot API v4 Import API (bulk CSV updates)

Inspection and control (JSON; no token needed; not counted as API calls):
{endpoints}  e.g. curl -s http://127.0.0.1:PORT/_emulator/stats

Credentials accepted (made up, not secrets; --business-unit-id changes the unit):
{credentials}
  Grants: refresh_token, client_credentials, password (client_id and client_secret
  too), and jwt_bearer (iss = client_id, sub = username, RS256; the signature is
  checked only with --jwt-public-key). Anything else is refused like Salesforce does.

Seeding: --seed FILE reads JSON Lines, one prospect per line: {{"email": ...}} plus
Pardot field names (first_name, company, ...; created_at/updated_at to backdate).
Custom fields must be declared first with --custom-field, e.g. --custom-field
org_id --custom-field tags:Checkbox:multi --custom-field seats:Number.

Fault injection: --latency, --concurrency-limit (the call over it gets error 66),
--daily-limit (error 122 once used up), --token-ttl (error 184, the target
refreshes), --fail-every N (HTTP 500, nothing applied), --drop-after-commit-every N
(applied, then no answer), and POST /_emulator/queue-error for any Pardot code.
Imports: --import-delay (seconds from start to Complete), --import-daily-batch-limit
(error 164 once used up). --read-lag N: new prospects stay out of reads by email and queries
for N seconds, as Pardot's reads may lag writes.

Stop it with Ctrl-C or SIGTERM. Everything is in memory: a restart starts empty.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pardot-emulator",
        description="Local emulator of Salesforce OAuth and the Pardot API (loopback only), "
        "for trying target-pardot and testing pipelines without a Pardot account.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    parser.add_argument("--port-file", type=Path, help="write the URL here once listening")
    parser.add_argument(
        "--ampsea",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="allow several prospects per email, as api_version 4 expects; --no-ampsea makes "
        "emails unique, as api_version 3 expects (v5 works with both)",
    )
    parser.add_argument(
        "--business-unit-id",
        default=DEFAULT_CREDENTIALS["business_unit_id"],
        help="the only business unit id accepted (default %(default)s)",
    )
    parser.add_argument("--seed", type=Path, help="JSON Lines file of prospects to add")
    parser.add_argument(
        "--custom-field",
        action="append",
        default=[],
        metavar="FIELD_ID[:TYPE[:multi]]",
        help="add a custom field, TYPE Text (default), Number, Date, Checkbox...; "
        "multi for a multi-value field (repeatable)",
    )
    parser.add_argument(
        "--jwt-public-key",
        type=Path,
        metavar="PEM_FILE",
        help="check jwt_bearer assertions against this public key (the connected app's "
        "certificate key); without it any RS256 assertion with the right claims is accepted",
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds added to every API call"
    )
    parser.add_argument(
        "--concurrency-limit",
        type=int,
        default=5,
        help="API calls in flight at once before error 66 (default 5, as Pardot)",
    )
    parser.add_argument(
        "--daily-limit",
        type=int,
        default=None,
        help="API calls allowed before error 122, the daily quota (default: no limit)",
    )
    parser.add_argument(
        "--token-ttl", type=float, default=None, help="access token lifetime in seconds"
    )
    parser.add_argument(
        "--fail-every", type=int, default=None, help="every Nth API call answers HTTP 500"
    )
    parser.add_argument(
        "--drop-after-commit-every",
        type=int,
        default=None,
        help="every Nth API call is applied, then the connection is dropped",
    )
    parser.add_argument(
        "--read-lag",
        type=float,
        default=0.0,
        help="seconds a new prospect stays out of reads by email and queries (Pardot's reads "
        "may lag writes by up to 60)",
    )
    parser.add_argument(
        "--import-delay",
        type=float,
        default=0.0,
        help="seconds an import takes from its start (status Ready) to Complete",
    )
    parser.add_argument(
        "--import-daily-batch-limit",
        type=int,
        default=None,
        help="Import API batches allowed before error 164 (default: no limit)",
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
        except UnknownSeedFields as exc:
            declare = " ".join(f"--custom-field {name}" for name in exc.names)
            them = "it" if len(exc.names) == 1 else "them"
            raise ValueError(f"{path}:{number}: {exc}; declare {them} with {declare}") from exc
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: {exc}") from exc
        count += 1
    return count


def _cannot_listen(host: str, port: int, error: OSError) -> str:
    """Why the emulator cannot listen on host:port, and what to do about it."""
    if error.errno == errno.EADDRINUSE:
        return (
            f"port {port} is in use (another emulator?); pick another --port, or --port 0 for "
            "a free one"
        )
    if error.errno == errno.EACCES:
        return (
            f"port {port} needs privileges this user lacks; pick another --port, or --port 0 "
            "for a free one"
        )
    return f"cannot listen on {host}:{port}: {error.strerror or error}"


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
    if not is_business_unit_id(args.business_unit_id):
        unit = args.business_unit_id
        parser.error(f"--business-unit-id must be 0Uv and 15 letters or digits, not {unit!r}")
    try:
        jwt_public_key = (
            args.jwt_public_key.read_text(encoding="utf-8") if args.jwt_public_key else None
        )
    except OSError as exc:
        parser.error(f"--jwt-public-key: {exc}")
    emulator = PardotEmulator(
        ampsea=args.ampsea,
        business_unit_id=args.business_unit_id,
        latency=args.latency,
        concurrency_limit=args.concurrency_limit,
        daily_limit=args.daily_limit,
        token_ttl_seconds=args.token_ttl,
        fail_every=args.fail_every,
        drop_after_commit_every=args.drop_after_commit_every,
        jwt_public_key=jwt_public_key,
        import_delay=args.import_delay,
        read_lag=args.read_lag,
        import_daily_batch_limit=args.import_daily_batch_limit,
        host=args.host,
        port=args.port,
    )
    try:
        for spec in args.custom_field:
            emulator.add_custom_field(**_custom_field(spec))
        seeded = _seed(emulator, args.seed) if args.seed else 0
    except (OSError, ValueError) as exc:
        parser.error(str(exc))

    try:
        emulator.start()
    except OSError as exc:
        parser.error(_cannot_listen(args.host, args.port, exc))

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
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
