"""The HTTP transport: direct or through the environment's proxy, redirects, and failures."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
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
    RequestsTransport,
    SendError,
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
    answer = transport.send(
        "GET",
        f"{_url(api)}/api/v5/imports/1/do/downloadErrors",
        headers={"Authorization": "Bearer secret-token"},
        body=None,
        timeout=TIMEOUT,
        follow_redirects=True,
    )
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
    answer = transport.send(
        "GET",
        f"{_url(api)}/api/v5/imports/1/do/downloadErrors",
        headers={"Authorization": "Bearer secret-token"},
        body=None,
        timeout=TIMEOUT,
        follow_redirects=True,
    )
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
