"""HTTP plumbing and the ``PardotEmulator`` facade.

One ``ThreadingHTTPServer`` on 127.0.0.1 serves the OAuth token endpoint, the Pardot API
(v3/v4 and v5) and the ``/_emulator/`` control plane. Each connection gets its own daemon
thread, so concurrent requests really overlap and the concurrency limit is observable. All
state sits behind one lock; latency is slept outside it.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import control, v4_imports, v5, v5_imports, v34
from .clock import Clock
from .context import OPEN_LIFETIME, ApiContext, ApiResult, ImportLimits, Reply
from .errors import PardotError
from .faults import FaultPlan
from .gate import Knobs, Verdict, admit, is_business_unit_id
from .imports import MAX_BATCH_BYTES, MAX_BATCHES, ImportBook
from .loopback import is_loopback
from .oauth import (
    ALREADY_PROCESSING,
    DEFAULT_CREDENTIALS,
    TOKEN_PATH,
    TokenBook,
    TokenFailures,
    is_my_domain,
    token_response,
)
from .render import HTML_TYPE, JSON_TYPE, encode, fail, html_error
from .store import Store

UNKNOWN_ENDPOINT = "api.unknown"


DROP_CODE = 0  # queue entries for queue_drop carry no Pardot error code


@dataclass(frozen=True)
class _ApiCall:
    """One API request, reduced to what the admission pipeline needs."""

    endpoint: str
    run: Callable[[ApiContext], ApiResult]
    encode_result: Callable[[ApiResult], Reply]
    encode_error: Callable[[PardotError], Reply]


class PardotEmulator:
    """A local stand-in for Salesforce OAuth plus the Pardot API. See the package docstring."""

    def __init__(
        self,
        ampsea: bool = True,
        business_unit_id: str = DEFAULT_CREDENTIALS["business_unit_id"],
        latency: float = 0.0,
        concurrency_limit: int | None = 5,
        daily_limit: int | None = None,
        token_ttl_seconds: float | None = None,
        token_max_calls: int | None = None,
        fail_every: int | None = None,
        drop_after_commit_every: int | None = None,
        jwt_public_key: str | None = None,
        *,
        upsert_created_status: int = 200,
        my_domain_host: str | None = None,
        import_delay: float = 0.0,
        import_daily_batch_limit: int | None = None,
        import_max_batch_bytes: int = MAX_BATCH_BYTES,
        import_max_batches: int = MAX_BATCHES,
        import_open_lifetime: float = OPEN_LIFETIME,
        read_lag: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: dict[str, str] | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not is_loopback(host):
            raise ValueError(f"the emulator only listens on loopback addresses, not {host!r}")
        if not is_business_unit_id(business_unit_id):
            # Every request naming it would be refused with 182, which would look like a bug.
            raise ValueError(
                f"{business_unit_id!r} is not a business unit id (0Uv + 15 letters/digits)"
            )
        # Knobs: plain attributes, read on every request, so tests may change them mid-run.
        self.business_unit_id = business_unit_id
        self.latency = latency
        self.concurrency_limit = concurrency_limit
        self.daily_limit = daily_limit
        self.token_ttl_seconds = token_ttl_seconds
        self.token_max_calls = token_max_calls
        self.fail_every = fail_every
        self.drop_after_commit_every = drop_after_commit_every
        self.jwt_public_key = jwt_public_key
        # The org's My Domain host name: when set, a client_credentials grant is accepted only
        # by a request whose Host header names it (None: on any host).
        self.my_domain_host = my_domain_host
        self.upsert_created_status = upsert_created_status
        # Seconds from an import's start (status Ready) until it is Complete.
        self.import_delay = import_delay
        self.import_daily_batch_limit = import_daily_batch_limit
        self.import_max_batch_bytes = import_max_batch_bytes
        self.import_max_batches = import_max_batches
        # Seconds an import (v4 or v5) may stay Open before it expires.
        self.import_open_lifetime = import_open_lifetime
        self.credentials = {**DEFAULT_CREDENTIALS, **(credentials or {})}

        self._host = host
        self._port = port
        self._lock = threading.RLock()
        self._store = Store(clock or Clock(), ampsea=ampsea)
        self.read_lag = read_lag
        self._tokens = TokenBook()
        self._token_failures = TokenFailures()
        self._faults = FaultPlan()
        self._imports = ImportBook()
        self._counts: Counter[str] = Counter()
        self._api_calls = 0
        self._token_calls = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    @property
    def read_lag(self) -> float:
        """Seconds a new prospect stays out of reads by email and queries (Pardot's reads may
        lag writes by up to 60 seconds)."""
        return self._store.read_lag

    @read_lag.setter
    def read_lag(self, seconds: float) -> None:
        self._store.read_lag = seconds

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> PardotEmulator:
        if self._server is not None:
            raise RuntimeError("emulator already started")
        server = _Server((self._host, self._port), self)
        self._server = server
        host, port = server.server_address[:2]
        self._url = f"http://[{host}]:{port}" if ":" in str(host) else f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits at most this long for the loop
            name=f"pardot-emulator:{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        # Keep-alive connections would otherwise keep answering after stop().
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> PardotEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("emulator not started")
        return self._url

    # -- state for tests -----------------------------------------------------------------

    @property
    def ampsea(self) -> bool:
        return self._store.ampsea

    @ampsea.setter
    def ampsea(self, value: bool) -> None:
        with self._lock:
            self._store.ampsea = value

    def add_custom_field(
        self, field_id: str, name: str | None = None, type: str = "Text", multi: bool = False
    ) -> dict[str, Any]:
        with self._lock:
            return self._store.add_custom_field(field_id, name, type, multi).snapshot()

    def add_prospect(self, email: str | None, **fields: Any) -> dict[str, Any]:
        with self._lock:
            return self._store.snapshot(self._store.seed(email, fields))

    def prospects(self, include_archived: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            self._settle_imports()
            everyone = self._store.all(include_archived=include_archived)
            return [self._store.snapshot(p) for p in everyone]

    def prospect(self, id: int) -> dict[str, Any] | None:
        with self._lock:
            self._settle_imports()
            found = self._store.get(id)
            return self._store.snapshot(found) if found is not None else None

    def imports(self) -> list[dict[str, Any]]:
        """Every import made, oldest first: status, batches, rows, header and counts."""
        with self._lock:
            self._settle_imports()
            return self._imports.snapshots()

    def fail_next_import_after(self, rows: int) -> None:
        """The next import to be processed stops after `rows` rows: the rest fail with
        error 183's message (an internal error; try again) and are not applied."""
        with self._lock:
            self._imports.fail_next_import_after(rows)

    @property
    def call_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    @property
    def api_calls(self) -> int:
        with self._lock:
            return self._api_calls

    @property
    def token_calls(self) -> int:
        with self._lock:
            return self._token_calls

    @property
    def max_in_flight(self) -> int:
        with self._lock:
            return self._max_in_flight

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "call_counts": dict(self._counts),
                "api_calls": self._api_calls,
                "token_calls": self._token_calls,
                "max_in_flight": self._max_in_flight,
            }

    def queue_error(self, code: int, endpoint: str | None = None, count: int = 1) -> None:
        with self._lock:
            self._faults.queue(code, endpoint, count)

    def fail_next_token_calls(
        self,
        count: int = 1,
        error: str = "invalid_grant",
        description: str = ALREADY_PROCESSING,
    ) -> None:
        """The next `count` token calls answer HTTP 400 ``{"error", "error_description"}``
        and issue nothing, whatever they carry: by default Salesforce's answer when two token
        requests overlap, which clients should retry."""
        with self._lock:
            self._token_failures.queue(count, error, description)

    def queue_drop(self, endpoint: str, count: int = 1) -> None:
        """The next `count` calls to `endpoint` are applied, then answered with nothing."""
        with self._lock:
            self._faults.queue(DROP_CODE, endpoint, count, drops=True)

    def reset_daily_usage(self) -> None:
        with self._lock:
            self._faults.reset_daily()
            self._imports.reset_daily()

    def _settle_imports(self) -> None:
        """Imports move on in the background at Pardot; here, whenever anyone looks."""
        self._imports.settle(self._store, self._store.clock.now(), self.import_delay)

    # -- request handling (called from connection threads) --------------------------------

    def _respond(self, method: str, target: str, headers: Message, body: bytes) -> Reply | None:
        """The reply to one request, or None to drop the connection without answering."""
        split = urlsplit(target)
        path = split.path
        if path == TOKEN_PATH:
            return self._token(method, split.query, body, headers.get("Host"))
        if path.startswith("/_emulator/"):
            return control.handle(self, method, path, split.query, body)
        if path.startswith("/api/"):
            return self._api(self._api_call(method, path, split.query, headers, body), headers)
        if path.startswith(v5_imports.ERROR_FILES) and method == "GET":
            return self._error_file(path[len(v5_imports.ERROR_FILES) :].removesuffix(".csv"))
        return Reply(404, json.dumps({"error": f"nothing at {path}"}).encode(), JSON_TYPE)

    def _error_file(self, token: str) -> Reply:
        with self._lock:
            job = self._imports.by_token(token)
            if job is None:
                return Reply(404, b"no such file", "text/plain")
            return Reply(200, job.errors_csv(), "text/csv; charset=utf-8")

    def _token(self, method: str, query: str, body: bytes, host: str | None) -> Reply:
        form = _last_values(parse_qs(query, keep_blank_values=True))
        form.update(_last_values(parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)))
        with self._lock:
            self._token_calls += 1
            self._counts["oauth.token"] += 1
            forced = self._token_failures.take()
            if forced is not None:
                return Reply(400, json.dumps(forced.payload()).encode(), JSON_TYPE)
            status, payload = token_response(
                method,
                form,
                credentials=self.credentials,
                book=self._tokens,
                instance_url=self.url,
                jwt_public_key=self.jwt_public_key,
                on_my_domain=is_my_domain(host, self.my_domain_host),
            )
        return Reply(status, json.dumps(payload).encode(), JSON_TYPE)

    def _api_call(
        self, method: str, path: str, query: str, headers: Message, body: bytes
    ) -> _ApiCall:
        query_params = parse_qs(query, keep_blank_values=True)
        if path.startswith("/api/v5/"):
            request5 = v5.V5Request(
                method, path, query_params, body, headers.get("Content-Type") or ""
            )
            return _ApiCall(
                endpoint=request5.key,
                run=lambda ctx: v5.handle(ctx, request5),
                encode_result=_v5_result,
                encode_error=_v5_error,
            )
        if v4_imports.is_import_path(path):
            request4 = v4_imports.V4ImportRequest(
                method, path, body, headers.get("Content-Type") or ""
            )
            return _ApiCall(
                endpoint=request4.key,
                run=lambda ctx: v4_imports.handle(ctx, request4),
                encode_result=v4_imports.encode_result,
                encode_error=_v5_error,  # UNCONFIRMED: the v4 import errors as v5's
            )
        params = {name: list(values) for name, values in query_params.items()}
        if "json" not in (headers.get("Content-Type") or "").lower():
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            for name, values in form.items():
                params.setdefault(name, []).extend(values)
        request34 = v34.parse(path, params)
        as_json = (_last_values(params).get("format") or "").lower() == "json"

        def run(ctx: ApiContext) -> ApiResult:
            if request34 is None:
                raise PardotError(2)
            return v34.handle(ctx, request34)

        return _ApiCall(
            endpoint=request34.key if request34 is not None else UNKNOWN_ENDPOINT,
            run=run,
            encode_result=lambda result: _v34_result(result, as_json),
            encode_error=lambda error: _v34_error(error, as_json),
        )

    def _api(self, call: _ApiCall, headers: Message) -> Reply | None:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            self._api_calls += 1
            self._counts[call.endpoint] += 1
            verdict = admit(
                endpoint=call.endpoint,
                call_number=self._api_calls,
                authorization=headers.get("Authorization"),
                business_unit=headers.get("Pardot-Business-Unit-Id"),
                knobs=self._knobs(),
                tokens=self._tokens,
                faults=self._faults,
            )
        try:
            return self._run_admitted(call, verdict)
        finally:
            # Released before the reply is written, so a client that sends its next request
            # the moment it has an answer is never counted twice or refused a slot.
            with self._lock:
                if verdict.holds_slot:
                    self._faults.release_slot()
                self._in_flight -= 1

    def _run_admitted(self, call: _ApiCall, verdict: Verdict) -> Reply | None:
        if verdict.error is not None:
            return call.encode_error(verdict.error)
        if verdict.fault == "fail":
            return Reply(500, html_error(500, "Internal Server Error"), HTML_TYPE)
        latency = self.latency
        if latency:
            time.sleep(latency)
        context = ApiContext(
            self._store,
            self.url,
            self.upsert_created_status,
            self._imports,
            ImportLimits(
                self.import_max_batch_bytes,
                self.import_max_batches,
                self.import_daily_batch_limit,
                self.import_open_lifetime,
            ),
        )
        with self._lock:
            self._settle_imports()
            drop = verdict.fault == "drop" or self._faults.take_drop(call.endpoint)
            try:
                reply = call.encode_result(call.run(context))
            except PardotError as exc:
                reply = call.encode_error(exc)
            except Exception:
                # An emulator bug must surface in the test that hit it, not as a hang.
                traceback.print_exc(file=sys.stderr)
                reply = Reply(500, b"pardot emulator internal error", "text/plain")
        return None if drop else reply

    def _knobs(self) -> Knobs:
        return Knobs(
            business_unit_id=self.business_unit_id,
            daily_limit=self.daily_limit,
            concurrency_limit=self.concurrency_limit,
            token_ttl_seconds=self.token_ttl_seconds,
            token_max_calls=self.token_max_calls,
            fail_every=self.fail_every,
            drop_after_commit_every=self.drop_after_commit_every,
        )


def _last_values(params: dict[str, list[str]]) -> dict[str, str]:
    return {name: values[-1] for name, values in params.items() if values}


def _v34_result(result: ApiResult, as_json: bool) -> Reply:
    body, content_type = encode(result.payload, as_json=as_json)
    return Reply(result.status, body, content_type)


def _v34_error(error: PardotError, as_json: bool) -> Reply:
    body, content_type = encode(fail(error.code, error.message), as_json=as_json)
    return Reply(error.v34_status(), body, content_type)


def _v5_result(result: ApiResult) -> Reply:
    return Reply(result.status, json.dumps(result.payload).encode(), JSON_TYPE, result.headers)


def _v5_error(error: PardotError) -> Reply:
    payload = {"code": error.code, "message": error.message}
    return Reply(error.v5_status(), json.dumps(payload).encode(), JSON_TYPE)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], emulator: PardotEmulator) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (a DNS lookup); loopback needs none.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The handler writes status, headers and body separately; with Nagle's algorithm on, each
    # answer then waits for the client's delayed ACK (~40 ms), which is not Pardot's latency.
    disable_nagle_algorithm = True
    server_version = "PardotEmulator/1.0"
    # Idle keep-alive connections give their thread back after this many seconds.
    timeout = 30
    server: _Server

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet: test output should show the client's logs, not one line per request.
        return

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except ValueError:
            self._write(Reply(400, b"unreadable request body", "text/plain"))
            self.close_connection = True
            return
        reply = self.server.emulator._respond(self.command, self.path, self.headers, body)
        if reply is None:
            # drop_after_commit: the change is applied, the client never hears back.
            self.close_connection = True
            return
        self._write(reply)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                # Trailers end with an empty line.
                while self.rfile.readline().strip():
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _write(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
