"""The HTTP transport: direct or through the environment's proxy, redirects, and failures."""

from __future__ import annotations

import datetime as dt
import gzip
import ipaddress
import json
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.request import ProxyHandler, Request, build_opener

import pytest
import requests

from pardot_emulator import DEFAULT_CREDENTIALS, PardotEmulator
from target_pardot.api.client import PardotClient
from target_pardot.api.transport import (
    DirectTransport,
    HttpAnswer,
    RequestsTransport,
    SendError,
    Transport,
    encode_request,
    same_origin,
    transport_for,
)
from target_pardot.errors import SettingsError
from target_pardot.settings import Settings

TIMEOUT = (2.0, 2.0)


class _Recorder(BaseHTTPRequestHandler):
    """Records each request (path and headers) and answers as `answer` says."""

    seen: list[tuple[str, str, dict[str, str]]]
    answer: Any

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.seen.append((self.command, self.path, dict(self.headers)))
        status, headers, body = self.answer(self)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(answer: Any) -> tuple[ThreadingHTTPServer, list[tuple[str, str, dict[str, str]]]]:
    seen: list[tuple[str, str, dict[str, str]]] = []
    handler = type("Handler", (_Recorder,), {"seen": seen, "answer": staticmethod(answer)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


@pytest.fixture
def servers() -> Iterator[list[ThreadingHTTPServer]]:
    started: list[ThreadingHTTPServer] = []
    yield started
    for server in started:
        server.shutdown()
        server.server_close()


def _url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_port}"


def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


# choosing the way ---------------------------------------------------------------------------


def test_a_host_without_a_proxy_is_reached_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_proxy_environment(monkeypatch)
    transport = transport_for("https://pi.pardot.com", requests.Session(), pool_size=4)
    assert isinstance(transport, DirectTransport)


def test_a_host_behind_the_environments_proxy_goes_through_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _no_proxy_environment(monkeypatch)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    transport = transport_for("https://pi.pardot.com", requests.Session(), pool_size=4)
    assert isinstance(transport, RequestsTransport)


def test_no_proxy_keeps_a_host_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_proxy_environment(monkeypatch)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "pardot.com")
    transport = transport_for("https://pi.pardot.com", requests.Session(), pool_size=4)
    assert isinstance(transport, DirectTransport)


# through a proxy, end to end ----------------------------------------------------------------


class _ForwardingProxy(BaseHTTPRequestHandler):
    """A plain-HTTP forward proxy: requests sends it absolute URLs, it fetches them."""

    used: list[str]

    def _forward(self) -> None:
        self.used.append(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {
            k: v for k, v in self.headers.items() if k.lower() not in ("host", "proxy-connection")
        }
        request = Request(self.path, data=body, headers=headers, method=self.command)  # noqa: S310
        try:
            # Not through the environment's proxy, which is this one.
            with build_opener(ProxyHandler({})).open(request, timeout=10) as answer:
                status, content, answer_headers = answer.status, answer.read(), answer.headers
        except Exception as error:  # an HTTPError is an answer too
            status = getattr(error, "code", 502)
            content = error.read() if hasattr(error, "read") else b""
            answer_headers = getattr(error, "headers", {})
        self.send_response(status)
        self.send_header("Content-Type", answer_headers.get("Content-Type", "text/plain"))
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = _forward

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _environment_proxy(
    servers: list[ThreadingHTTPServer], monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """A forwarding proxy named by HTTP_PROXY (and no other proxy setting); the URLs it was
    asked for."""
    used: list[str] = []
    proxy = ThreadingHTTPServer(
        ("127.0.0.1", 0), type("Proxy", (_ForwardingProxy,), {"used": used})
    )
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    servers.append(proxy)
    _no_proxy_environment(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", _url(proxy))
    return used


def test_calls_go_through_the_proxy_the_environment_names(
    emulator: PardotEmulator,
    servers: list[ThreadingHTTPServer],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    used = _environment_proxy(servers, monkeypatch)
    # A ~/.netrc entry must not replace the token on this path either.
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password not-a-pardot-token\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    emulator.add_prospect(email="a@x.com")
    settings = Settings.from_config(
        {
            "business_unit_id": DEFAULT_CREDENTIALS["business_unit_id"],
            "client_id": DEFAULT_CREDENTIALS["client_id"],
            "client_secret": DEFAULT_CREDENTIALS["client_secret"],
            "refresh_token": DEFAULT_CREDENTIALS["refresh_token"],
            "login_url": emulator.url,
            "pardot_url": emulator.url,
        }
    )
    pardot = PardotClient(settings, sleep=lambda _: None)
    answer = pardot.v34("prospect", "read", version=4, ident=("email", "a@x.com"))
    assert answer.status == 200
    assert any("/api/prospect/version/4/do/read/email/a%40x.com" in url for url in used)


# redirects ----------------------------------------------------------------------------------


def _download_error_file(transport: Transport, api: ThreadingHTTPServer) -> HttpAnswer:
    """An import's error file, as the client asks for it: with the token, following redirects."""
    return transport.send(
        "GET",
        f"{_url(api)}/api/v5/imports/1/do/downloadErrors",
        headers={"Authorization": "Bearer secret-token"},
        body=None,
        timeout=TIMEOUT,
        follow_redirects=True,
    )


def test_a_download_follows_a_redirect_to_another_host_without_the_token(
    servers: list[ThreadingHTTPServer],
) -> None:
    storage, storage_seen = _serve(lambda handler: (200, {}, b"email,error\r\n"))
    servers.append(storage)
    api, api_seen = _serve(
        lambda handler: (302, {"Location": f"{_url(storage)}/files/errors.csv"}, b"")
    )
    servers.append(api)
    transport = DirectTransport(verify=True, pool_size=2, user_agent="test")
    answer = _download_error_file(transport, api)
    assert (answer.status, answer.content, answer.redirected) == (200, b"email,error\r\n", True)
    assert api_seen[0][2].get("Authorization") == "Bearer secret-token"
    assert "Authorization" not in storage_seen[0][2]


def test_an_api_call_does_not_follow_redirects(servers: list[ThreadingHTTPServer]) -> None:
    target, target_seen = _serve(lambda handler: (200, {}, b"{}"))
    servers.append(target)
    api, _ = _serve(lambda handler: (302, {"Location": f"{_url(target)}/elsewhere"}, b""))
    servers.append(api)
    transport = DirectTransport(verify=True, pool_size=2, user_agent="test")
    answer = transport.send("POST", _url(api), headers={}, body=b"x=1", timeout=TIMEOUT)
    assert answer.status == 302
    assert target_seen == []


# failures -----------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_refused_connection_was_never_sent() -> None:
    transport = DirectTransport(verify=True, pool_size=2, user_agent="test")
    with pytest.raises(SendError) as error:
        transport.send(
            "POST",
            f"http://127.0.0.1:{_closed_port()}/api/x?email=secret@x.com",
            headers={},
            body=b"",
            timeout=TIMEOUT,
        )
    assert error.value.never_sent
    assert error.value.description == "connection failed (NewConnectionError)"
    assert "secret" not in error.value.description


def test_no_answer_in_time_may_have_been_applied(servers: list[ThreadingHTTPServer]) -> None:
    def slow(handler: Any) -> tuple[int, dict[str, str], bytes]:
        time.sleep(1.0)
        return 200, {}, b"{}"

    server, _ = _serve(slow)
    servers.append(server)
    transport = DirectTransport(verify=True, pool_size=2, user_agent="test")
    with pytest.raises(SendError) as error:
        transport.send(
            "POST",
            f"{_url(server)}/api/x?email=secret@x.com",
            headers={},
            body=b"a=1",
            timeout=(2.0, 0.2),
        )
    assert not error.value.never_sent
    assert error.value.description == "no answer within request_timeout"


# encoding -----------------------------------------------------------------------------------


def test_query_strings_and_bodies_are_encoded_as_requests_would() -> None:
    headers: dict[str, str] = {}
    url, body = encode_request(
        "https://pi.pardot.com/api/v5/objects/prospects",
        headers,
        params={"fields": "id,email", "skip": None, "ids": [1, 2]},
    )
    assert url == "https://pi.pardot.com/api/v5/objects/prospects?fields=id%2Cemail&ids=1&ids=2"
    assert body is None and headers == {}

    url, body = encode_request("https://h/x?a=1", headers, params={"b": "2"}, json={"n": 1.5})
    assert url == "https://h/x?a=1&b=2"
    assert json.loads(body or b"") == {"n": 1.5}
    assert headers["Content-Type"] == "application/json"

    headers = {}
    _, body = encode_request(
        "https://h/x",
        headers,
        files={
            "input": (None, '{"a":1}', "application/json"),
            "file": ("b.csv", b"x\r\n", "text/csv"),
        },
    )
    assert headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert b'name="input"\r\n' in (body or b"")
    assert b'name="file"; filename="b.csv"' in (body or b"")


# TLS ----------------------------------------------------------------------------------------


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def https_server(servers: list[ThreadingHTTPServer], tmp_path: Path) -> tuple[str, Path]:
    cert_path, key_path = _self_signed_certificate(tmp_path)
    server, _ = _serve(lambda handler: (200, {"Content-Type": "application/json"}, b"{}"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    servers.append(server)
    return f"https://127.0.0.1:{server.server_port}", cert_path


def test_https_is_verified_against_the_ca_bundle_requests_would_use(
    https_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cert_path = https_server
    _no_proxy_environment(monkeypatch)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_path))
    transport = transport_for(url, requests.Session(), pool_size=2)
    assert isinstance(transport, DirectTransport)
    answer = transport.send("GET", f"{url}/api/x", headers={}, body=None, timeout=TIMEOUT)
    assert (answer.status, answer.json()) == (200, {})


def test_an_https_certificate_no_trusted_ca_signed_is_refused(
    https_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = https_server
    _no_proxy_environment(monkeypatch)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    transport = transport_for(url, requests.Session(), pool_size=2)
    with pytest.raises(SendError, match="SSLError"):
        transport.send("GET", f"{url}/api/x", headers={}, body=None, timeout=TIMEOUT)


# what the review of the direct transport found -----------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "name"),
    [
        ("application/json; charset=ISO-8859-1", '{"name":"José"}'.encode("latin-1"), "José"),
        # One byte UTF-8 cannot read: replaced, as requests did, not a lost answer.
        ("application/json", b'{"name":"Jos\xe9"}', "Jos\N{REPLACEMENT CHARACTER}"),
        ("application/json", '{"name":"José"}'.encode(), "José"),
        # No charset to go by: recognised by its first bytes.
        ("application/octet-stream", '{"name":"José"}'.encode("utf-16"), "José"),
    ],
)
def test_answers_are_decoded_as_their_content_type_says(
    servers: list[ThreadingHTTPServer], content_type: str, body: bytes, name: str
) -> None:
    server, _ = _serve(lambda handler: (200, {"Content-Type": content_type}, body))
    servers.append(server)
    transport = DirectTransport(verify=True, pool_size=2, user_agent="test")
    answer = transport.send("GET", _url(server), headers={}, body=None, timeout=TIMEOUT)
    assert answer.json() == {"name": name}


@pytest.mark.parametrize(
    ("old", "new", "keeps"),
    [
        ("https://pi.pardot.com/a", "https://pi.pardot.com/b", True),
        ("https://pi.pardot.com/a", "http://pi.pardot.com/b", False),  # cleartext
        ("https://pi.pardot.com/a", "https://pi.pardot.com:8443/b", False),
        ("https://pi.pardot.com/a", "https://files.example.com/b", False),
    ],
)
def test_a_redirect_keeps_the_token_only_to_the_same_origin(
    old: str, new: str, keeps: bool
) -> None:
    assert same_origin(old, new) is keeps


def test_a_download_redirected_to_a_host_behind_the_proxy_goes_through_it(
    servers: list[ThreadingHTTPServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pardot direct (NO_PROXY), its file storage only through the proxy: two names of the
    # loopback tell them apart.
    storage, _ = _serve(lambda handler: (200, {}, b"email,error\r\n"))
    servers.append(storage)
    api, _ = _serve(
        lambda handler: (
            302,
            {"Location": f"http://localhost:{storage.server_port}/files/errors.csv"},
            b"",
        )
    )
    servers.append(api)
    used = _environment_proxy(servers, monkeypatch)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    transport = transport_for(_url(api), requests.Session(), pool_size=2)
    assert isinstance(transport, DirectTransport)
    answer = _download_error_file(transport, api)
    assert (answer.status, answer.content, answer.redirected) == (200, b"email,error\r\n", True)
    assert used == [f"http://localhost:{storage.server_port}/files/errors.csv"]


def test_a_ca_bundle_that_does_not_exist_stops_before_any_call(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_proxy_environment(monkeypatch)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(SettingsError, match=r"missing\.pem.* does not exist"):
        transport_for("https://pi.pardot.com", requests.Session(), pool_size=2)


def test_a_missing_ca_bundle_does_not_matter_to_plain_http(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_proxy_environment(monkeypatch)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    transport = transport_for("http://127.0.0.1:8080", requests.Session(), pool_size=2)
    assert isinstance(transport, DirectTransport)


# the direct transport's own connections -------------------------------------------------------


class _CountingServer(ThreadingHTTPServer):
    """Counts the connections it accepted and those it has closed since."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.opened = 0
        self.closed = 0
        self.changed = threading.Condition()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.changed:
            self.opened += 1
            self.changed.notify_all()
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        with self.changed:
            self.closed += 1
            self.changed.notify_all()

    def wait_for(self, condition: Callable[[], bool]) -> None:
        with self.changed:
            assert self.changed.wait_for(condition, timeout=5), (self.opened, self.closed)


def _serve_kept_alive(
    servers: list[ThreadingHTTPServer], answer: Any
) -> tuple[_CountingServer, list[tuple[str, str, dict[str, str]]]]:
    """An HTTP/1.1 server: it keeps each connection open for the next request unless the
    answer says otherwise."""
    seen: list[tuple[str, str, dict[str, str]]] = []
    handler = type(
        "KeptAliveHandler",
        (_Recorder,),
        {
            "seen": seen,
            "answer": staticmethod(answer),
            "protocol_version": "HTTP/1.1",
            # Headers and body are written apart: without this each answer on a kept-alive
            # connection waits for the client's delayed ACK (~40 ms).
            "disable_nagle_algorithm": True,
        },
    )
    server = _CountingServer(handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    servers.append(server)
    return server, seen


def _json_answer(handler: Any) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps({"path": handler.path}).encode()


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),  # zlib-wrapped, as RFC 9110 says
        ("deflate", _raw_deflate),  # raw, as some servers send it
        ("gzip, deflate", lambda data: zlib.compress(gzip.compress(data))),
    ],
)
def test_compressed_answers_are_decoded(
    servers: list[ThreadingHTTPServer], encoding: str, compress: Callable[[bytes], bytes]
) -> None:
    body = json.dumps({"prospects": [{"email": f"p{n}@x.com"} for n in range(50)]}).encode()
    server, seen = _serve(
        lambda handler: (
            200,
            {"Content-Type": "application/json", "Content-Encoding": encoding},
            compress(body),
        )
    )
    servers.append(server)
    transport = DirectTransport(verify=True, pool_size=2, user_agent="test")
    answer = transport.send("GET", _url(server), headers={}, body=None, timeout=TIMEOUT)
    assert answer.content == body
    assert answer.json()["prospects"][49] == {"email": "p49@x.com"}
    # Compressed answers are asked for, as requests asks for them.
    assert seen[0][2]["Accept-Encoding"] == "gzip, deflate"
    assert answer.headers.get("content-encoding") == answer.headers.get("Content-Encoding")


def test_an_answer_in_an_encoding_not_asked_for_is_left_as_it_is(
    servers: list[ThreadingHTTPServer],
) -> None:
    server, _ = _serve(lambda handler: (200, {"Content-Encoding": "br"}, b"\x8b\x02\x80{}\x03"))
    servers.append(server)
    transport = DirectTransport(verify=True, pool_size=2, user_agent="test")
    answer = transport.send("GET", _url(server), headers={}, body=None, timeout=TIMEOUT)
    assert answer.content == b"\x8b\x02\x80{}\x03"


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_an_answer_that_does_not_decompress_may_have_been_applied(
    servers: list[ThreadingHTTPServer], encoding: str
) -> None:
    server, _ = _serve(lambda handler: (200, {"Content-Encoding": encoding}, b"not compressed"))
    servers.append(server)
    transport = DirectTransport(verify=True, pool_size=2, user_agent="test")
    with pytest.raises(SendError) as error:
        transport.send("POST", _url(server), headers={}, body=b"a=1", timeout=TIMEOUT)
    assert error.value.description == "connection failed (DecodeError)"
    assert not error.value.never_sent


def test_sequential_calls_reuse_one_connection(servers: list[ThreadingHTTPServer]) -> None:
    server, seen = _serve_kept_alive(servers, _json_answer)
    transport = DirectTransport(verify=True, pool_size=2, user_agent="test")
    for n in range(20):
        # Bodies and no bodies in turn: each request must end where the server expects.
        method, body = ("POST", b"a=%d" % n) if n % 2 else ("GET", None)
        answer = transport.send(
            method, f"{_url(server)}/call/{n}", headers={}, body=body, timeout=TIMEOUT
        )
        assert (answer.status, answer.json()) == (200, {"path": f"/call/{n}"})
    assert [path for _, path, _ in seen] == [f"/call/{n}" for n in range(20)]
    assert server.opened == 1
    assert seen[0][2]["Host"] == f"127.0.0.1:{server.server_port}"
    assert seen[0][2]["User-Agent"] == "test"
    transport.close()
    # close() let go of the idle connection.
    server.wait_for(lambda: server.closed == 1)


def test_a_connection_the_server_closed_while_idle_is_not_reused(
    servers: list[ThreadingHTTPServer],
) -> None:
    def close_after_answering(handler: Any) -> tuple[int, dict[str, str], bytes]:
        # Unannounced (no Connection: close), as a server's idle timeout closes connections.
        handler.close_connection = True
        return _json_answer(handler)

    server, seen = _serve_kept_alive(servers, close_after_answering)
    transport = DirectTransport(verify=True, pool_size=2, user_agent="test")
    for n in range(1, 4):
        answer = transport.send(
            "POST", f"{_url(server)}/call/{n}", headers={}, body=b"a=1", timeout=TIMEOUT
        )
        assert answer.json() == {"path": f"/call/{n}"}
        server.wait_for(lambda n=n: server.closed == n)
    assert (server.opened, len(seen)) == (3, 3)
    transport.close()


def test_an_answer_with_connection_close_gets_a_new_connection_for_the_next_call(
    servers: list[ThreadingHTTPServer],
) -> None:
    def announced_close(handler: Any) -> tuple[int, dict[str, str], bytes]:
        status, headers, body = _json_answer(handler)
        return status, {**headers, "Connection": "close"}, body

    server, seen = _serve_kept_alive(servers, announced_close)
    transport = DirectTransport(verify=True, pool_size=2, user_agent="test")
    for n in range(3):
        answer = transport.send(
            "GET", f"{_url(server)}/{n}", headers={}, body=None, timeout=TIMEOUT
        )
        assert answer.json() == {"path": f"/{n}"}
    assert (server.opened, len(seen)) == (3, 3)
    transport.close()


def test_concurrent_calls_succeed_and_at_most_pool_size_connections_stay_open(
    servers: list[ThreadingHTTPServer],
) -> None:
    # All four calls in flight at once: four connections, of which two are kept afterwards.
    together = threading.Barrier(4, timeout=5)

    def answer(handler: Any) -> tuple[int, dict[str, str], bytes]:
        if handler.path.startswith("/together/"):
            together.wait()
        return _json_answer(handler)

    server, _ = _serve_kept_alive(servers, answer)
    transport = DirectTransport(verify=True, pool_size=2, user_agent="test")
    results: dict[int, Any] = {}

    def call(n: int) -> None:
        url = f"{_url(server)}/together/{n}"
        results[n] = transport.send("GET", url, headers={}, body=None, timeout=TIMEOUT).json()

    threads = [threading.Thread(target=call, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results == {n: {"path": f"/together/{n}"} for n in range(4)}
    assert server.opened == 4
    server.wait_for(lambda: server.opened - server.closed == 2)
    # The two kept serve the next calls.
    for n in range(4):
        answer_n = transport.send(
            "GET", f"{_url(server)}/{n}", headers={}, body=None, timeout=TIMEOUT
        )
        assert answer_n.json() == {"path": f"/{n}"}
    assert server.opened == 4
    transport.close()
    server.wait_for(lambda: server.closed == 4)


def test_a_malformed_answer_may_have_been_applied() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def answer_garbage() -> None:
        connection, _ = listener.accept()
        with connection:
            received.append(connection.recv(65536))
            connection.sendall(b"NOT HTTP AT ALL\r\n\r\n")

    thread = threading.Thread(target=answer_garbage, daemon=True)
    thread.start()
    try:
        transport = DirectTransport(verify=True, pool_size=2, user_agent="test")
        port = listener.getsockname()[1]
        with pytest.raises(SendError) as error:
            transport.send(
                "POST",
                f"http://127.0.0.1:{port}/api/x?email=secret@x.com",
                headers={},
                body=b"a=1",
                timeout=TIMEOUT,
            )
        thread.join(timeout=5)
    finally:
        listener.close()
    assert received and received[0].startswith(b"POST /api/x?email=secret@x.com ")
    assert not error.value.never_sent
    assert error.value.description == "connection failed (BadStatusLine)"
