"""Sending one HTTP request to Pardot and reading its whole answer.

Two ways, chosen once per run for the Pardot host:

- Direct (the common case): the standard library's `http.client`, its connections kept alive
  in a small pool of our own, with the certificates requests would have used for that host
  (its CA bundle: REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE or certifi's). A run makes thousands of
  calls, so their client CPU is a good part of the target's: measured on a 50-prospect batch
  call, about 0.19 ms through a kept-alive `http.client` connection against 0.36 ms through
  urllib3's pool, which in turn costs about half of a requests Session (that builds a
  Request, a PreparedRequest, cookie jars and a Response around the same urllib3 call). The
  pool does only what these calls need, as urllib3 did it: per origin, idle connections are
  reused last-in first-out, at most `pool_size` of them kept; one the server closed while
  idle is not used; a connection goes back only after its answer was read whole and the
  server keeps it open; gzip and deflate answers are decoded. Nothing is retried here (the
  client decides, knowing whether the call may have been applied).
- Through a proxy (HTTPS_PROXY / HTTP_PROXY / ALL_PROXY apply to the host, NO_PROXY does not
  exclude it): requests does it all, with its proxy handling as users know it.

Either way the caller gets an `HttpAnswer` or a `SendError` that says whether the request can
have reached Pardot (only a failure to connect proves it did not). Redirects are followed only
for downloads (`follow_redirects`), as requests would: without the Authorization header when
the redirect leaves the host (Pardot's error files are behind pre-signed storage links).
"""

from __future__ import annotations

import json as jsonlib
import os.path
import select
import socket
import ssl
import threading
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from http.client import HTTPConnection, HTTPException, HTTPMessage, HTTPSConnection
from typing import Any, Protocol, cast
from urllib.parse import urlencode, urljoin, urlsplit

import requests
import urllib3
from requests.utils import (
    get_encoding_from_headers,
    get_environ_proxies,
    guess_json_utf,
    select_proxy,
)

from target_pardot.api.auth import BearerAuth
from target_pardot.errors import SettingsError

MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

_Origin = tuple[str, str, int]  # scheme, host, port: what a kept-alive connection can serve
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Origins whose idle connections are kept (urllib3's num_pools was 4): Pardot's host and the
# file storage its downloads redirect to.
_MAX_ORIGINS = 4

Files = Mapping[str, tuple[str | None, bytes | str, str]]


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: Mapping[str, str]  # case-insensitive look-ups
    content: bytes
    url: str
    redirected: bool = False

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not JSON.

        Decoded as requests' `Response.json()` did: with the charset the Content-Type names
        (UTF-8 for JSON without one; UTF-16/32 recognised by their first bytes), a byte the
        charset cannot read replaced rather than failing the whole answer (one stray Latin-1
        byte in a prospect's field must not turn an applied write into a lost answer).
        """
        encoding = get_encoding_from_headers(self.headers)  # type: ignore[arg-type]
        if not encoding and len(self.content) > 3:
            encoding = guess_json_utf(self.content)
        try:
            text = self.content.decode(encoding or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            text = self.content.decode("utf-8", errors="replace")
        return jsonlib.loads(text)


class SendError(Exception):
    """The request failed before an answer came back."""

    def __init__(self, description: str, *, never_sent: bool) -> None:
        super().__init__(description)
        self.description = description
        # True only when no byte of the request can have reached the server.
        self.never_sent = never_sent


class Transport(Protocol):
    def send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        body: bytes | None,
        timeout: tuple[float, float],
        follow_redirects: bool = False,
    ) -> HttpAnswer: ...

    def close(self) -> None: ...


def encode_request(
    url: str,
    headers: dict[str, str],
    *,
    params: Mapping[str, Any] | None = None,
    data: bytes | None = None,
    json: Mapping[str, Any] | None = None,
    files: Files | None = None,
) -> tuple[str, bytes | None]:
    """The URL with its query string and the body, as requests would send them; sets the
    Content-Type header for a body (`data` is an encoded form)."""
    if params:
        query = urlencode(
            [(key, value) for key, value in params.items() if value is not None], doseq=True
        )
        if query:
            url += ("&" if urlsplit(url).query else "?") + query
    if files is not None:
        body, content_type = urllib3.encode_multipart_formdata(dict(files))
        headers["Content-Type"] = content_type
        return url, body
    if json is not None:
        headers["Content-Type"] = "application/json"
        return url, jsonlib.dumps(json, allow_nan=False).encode("utf-8")
    if data is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    return url, data


class DirectTransport:
    """http.client connections kept alive in a pool of our own, with the CA bundle requests
    would have used for this host."""

    def __init__(
        self,
        *,
        verify: bool | str,
        pool_size: int,
        user_agent: str,
        fallback: Transport | None = None,
    ) -> None:
        if isinstance(verify, str) and not os.path.exists(verify):
            # requests refused such a setting before sending anything; so does this.
            raise SettingsError(
                f"the CA bundle {verify!r} (REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE) does not "
                "exist: point the variable at a certificate file or directory, or unset it "
                "to use certifi's"
            )
        self._verify = verify
        # Loading a CA bundle costs about 20 ms of CPU: done at the first https connection (a
        # transport for a plain-http host never needs it), then shared by every connection.
        self._tls: ssl.SSLContext | None = None
        self._fallback = fallback or RequestsTransport(requests.Session())
        self._pool_size = pool_size
        self._user_agent = user_agent
        self._lock = threading.Lock()
        # Per origin, its idle connections, in the order they were put back: the last one is
        # used first, being the least likely to have been closed by the server meanwhile.
        self._idle: dict[_Origin, list[HTTPConnection]] = {}
        # Moves on at each close(), so that a connection in use then is closed when it is done.
        self._generation = 0

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        body: bytes | None,
        timeout: tuple[float, float],
        follow_redirects: bool = False,
    ) -> HttpAnswer:
        # requests' default headers, so Pardot sees the same request either way.
        headers = {
            "User-Agent": self._user_agent,
            "Accept-Encoding": "gzip, deflate",
            "Accept": "*/*",
            **headers,
        }
        redirected = False
        for _ in range(MAX_REDIRECTS + 1):
            if redirected and self._proxied(url):
                # A download redirected to a host the environment reaches through a proxy
                # (Pardot's file storage): requests takes it from here.
                answer = self._fallback.send(
                    method, url, headers=headers, body=body, timeout=timeout, follow_redirects=True
                )
                return replace(answer, redirected=True)
            status, answer_headers, content = self._request(method, url, headers, body, timeout)
            location = answer_headers.get("Location")
            if not (follow_redirects and status in _REDIRECTS and location):
                # Not a Mapping, but its `get` ignores case as requests' headers did, and `get`
                # is all that is asked of an answer's headers.
                headers_read = cast(Mapping[str, str], answer_headers)
                return HttpAnswer(status, headers_read, content, url, redirected)
            next_url = urljoin(url, location)
            if not same_origin(url, next_url):
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            if status == 303 or (method == "POST" and status in (301, 302)):
                method, body = "GET", None
                headers.pop("Content-Type", None)
            url, redirected = next_url, True
        raise SendError(f"more than {MAX_REDIRECTS} redirects", never_sent=False)

    def _proxied(self, url: str) -> bool:
        return bool(select_proxy(url, get_environ_proxies(url)))

    def _request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        timeout: tuple[float, float],
    ) -> tuple[int, HTTPMessage, bytes]:
        # Only a redirect's Location can make these fail; urllib3's names for the failures.
        try:
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
            if scheme not in _DEFAULT_PORTS:
                return _raise("connection failed (URLSchemeUnknown)", never_sent=False)
            origin = (scheme, parts.hostname or "", parts.port or _DEFAULT_PORTS[scheme])
        except ValueError:  # a bracketed host or a port that is not one
            return _raise("connection failed (LocationParseError)", never_sent=False)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        with self._lock:
            generation = self._generation
        connection = self._reused(origin)
        if connection is None:
            connection = self._connect(origin, timeout[0])
        try:
            connection.sock.settimeout(timeout[1])
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            content = _decoded(response.read(), response.msg.get("Content-Encoding"))
        except BaseException as error:
            connection.close()
            failure = _exchange_failure(error)
            if failure is None:
                raise
            raise failure from None
        if response.will_close:
            connection.close()
        else:
            self._put_back(origin, connection, generation)
        return response.status, response.msg, content

    def _reused(self, origin: _Origin) -> HTTPConnection | None:
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                if not idle:
                    return None
                connection = idle.pop()
            if not _dropped(connection):
                return connection
            connection.close()

    def _connect(self, origin: _Origin, timeout: float) -> HTTPConnection:
        scheme, host, port = origin
        connection: HTTPConnection
        if scheme == "https":
            try:
                context = self._context()
            except OSError:  # a CA bundle without a certificate; urllib3 said so at each call
                return _raise("connection failed (SSLError)", never_sent=False)
            connection = HTTPSConnection(host, port, timeout=timeout, context=context)
        else:
            connection = HTTPConnection(host, port, timeout=timeout)
        try:
            connection.connect()
        except BaseException as error:
            connection.close()
            failure = _connect_failure(error)
            if failure is None:
                raise
            raise failure from None
        return connection

    def _context(self) -> ssl.SSLContext:
        # Two threads may both load it the first time: either context does.
        if self._tls is None:
            self._tls = _tls_context(self._verify)
        return self._tls

    def _put_back(self, origin: _Origin, connection: HTTPConnection, generation: int) -> None:
        kept = False
        evicted: list[HTTPConnection] = []
        with self._lock:
            if generation == self._generation:
                idle = self._idle.get(origin)
                if idle is None:
                    if len(self._idle) >= _MAX_ORIGINS:
                        # However many hosts downloads are redirected to, few sockets stay open.
                        evicted = self._idle.pop(next(iter(self._idle)))
                    idle = self._idle[origin] = []
                if len(idle) < self._pool_size:
                    idle.append(connection)
                    kept = True
        if not kept:
            # More threads than pool_size at once: the extra connections are not kept.
            connection.close()
        for extra in evicted:
            extra.close()

    def close(self) -> None:
        with self._lock:
            self._generation += 1
            closing = [connection for idle in self._idle.values() for connection in idle]
            self._idle.clear()
        for connection in closing:
            connection.close()


class RequestsTransport:
    """A requests Session: for hosts reached through a proxy."""

    def __init__(self, session: requests.Session) -> None:
        self._session = session

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        body: bytes | None,
        timeout: tuple[float, float],
        follow_redirects: bool = False,
    ) -> HttpAnswer:
        try:
            response = self._session.request(
                method,
                url,
                data=body,
                headers=headers,
                # The token is in `headers`; an `auth` keeps requests from replacing it with a
                # ~/.netrc entry for the host.
                auth=BearerAuth(None),
                timeout=timeout,
                allow_redirects=follow_redirects,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            # Only a failure to connect proves the request never reached Pardot.
            never_sent = isinstance(exc, requests.ConnectTimeout) or _is_connect_refusal(exc)
            raise SendError(_describe(exc), never_sent=never_sent) from None
        return HttpAnswer(
            response.status_code,
            response.headers,
            response.content,
            response.url,
            bool(response.history),
        )

    def close(self) -> None:
        self._session.close()


def transport_for(url: str, session: requests.Session, *, pool_size: int) -> Transport:
    """Direct, unless the environment routes `url` through a proxy."""
    environment = session.merge_environment_settings(url, {}, None, None, None)
    if select_proxy(url, environment.get("proxies") or {}):
        return RequestsTransport(session)
    user_agent = str(session.headers.get("User-Agent") or "target-pardot")
    # Certificates matter only to https (requests looked at the bundle only then, too).
    https = urlsplit(url).scheme == "https"
    return DirectTransport(
        verify=environment.get("verify", True) if https else True,
        pool_size=pool_size,
        user_agent=user_agent,
        fallback=RequestsTransport(session),
    )


def same_origin(url: str, other: str) -> bool:
    """Whether a redirect from `url` to `other` may keep the credentials: same scheme, host
    and port (requests' rule, without its allowance for an http -> https upgrade)."""
    first, second = urlsplit(url), urlsplit(other)
    return (first.scheme, first.hostname, first.port) == (
        second.scheme,
        second.hostname,
        second.port,
    )


def _raise(description: str, *, never_sent: bool) -> Any:
    raise SendError(description, never_sent=never_sent) from None


# The messages of these errors may hold the URL, and a read-by-email URL holds an email
# address: only the kind of failure is told, by urllib3's names where it had one (as the logs
# have said until now).


def _connect_failure(error: BaseException) -> SendError | None:
    """What a failure to connect means, or None for one that is not a network failure."""
    if isinstance(error, TimeoutError):
        return SendError("connection timed out", never_sent=True)
    if isinstance(error, ssl.SSLError):
        # Before the request, yet said to be possibly sent, as before and as requests says.
        return SendError("connection failed (SSLError)", never_sent=False)
    if isinstance(error, socket.gaierror):
        return SendError("connection failed (NameResolutionError)", never_sent=True)
    if isinstance(error, OSError):
        return SendError("connection failed (NewConnectionError)", never_sent=True)
    return None


def _exchange_failure(error: BaseException) -> SendError | None:
    """What a failure once connected means (the request may have arrived), or None for one
    that is not a network failure."""
    if isinstance(error, TimeoutError):
        return SendError("no answer within request_timeout", never_sent=False)
    if isinstance(error, ssl.SSLError):
        return SendError("connection failed (SSLError)", never_sent=False)
    if isinstance(error, zlib.error):
        return SendError("connection failed (DecodeError)", never_sent=False)
    if isinstance(error, (OSError, HTTPException)):
        return SendError(f"connection failed ({type(error).__name__})", never_sent=False)
    return None


def _dropped(connection: HTTPConnection) -> bool:
    """Whether an idle connection cannot carry another request: the server closed it (the
    socket reads as at its end) or sent something unasked. urllib3's test, before each reuse."""
    sock = connection.sock
    if sock is None:
        return True
    try:
        if hasattr(select, "poll"):
            # poll, unlike select, takes descriptors above 1023.
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):  # already closed
        return True


def _tls_context(verify: bool | str) -> ssl.SSLContext:
    """The certificate checks requests would have made; OSError for a bundle it cannot load."""
    if verify is False:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif isinstance(verify, str):
        # requests accepts a bundle file or a directory of certificates.
        if os.path.isdir(verify):
            context = ssl.create_default_context(capath=verify)
        else:
            context = ssl.create_default_context(cafile=verify)
    else:
        context = ssl.create_default_context(cafile=requests.utils.DEFAULT_CA_BUNDLE_PATH)
    # What urllib3 offered: a server that speaks HTTP/2 too must pick HTTP/1.1.
    context.set_alpn_protocols(["http/1.1"])
    return context


def _gunzip(data: bytes) -> bytes:
    # Several gzip members follow one another when a server compressed in pieces; bytes after
    # a whole member that are not one are ignored, as urllib3 (and browsers) do.
    parts: list[bytes] = []
    while data:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            parts.append(decompressor.decompress(data))
        except zlib.error:
            if parts:
                break
            raise
        if not decompressor.eof:
            raise zlib.error("truncated gzip data")
        data = decompressor.unused_data
    return b"".join(parts)


def _inflate(data: bytes) -> bytes:
    # "deflate" should be zlib-wrapped (RFC 9110), but some servers send it raw: urllib3 reads
    # both, so does this.
    try:
        return zlib.decompress(data)
    except zlib.error:
        return zlib.decompress(data, -zlib.MAX_WBITS)


_DECODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": _gunzip,
    "x-gzip": _gunzip,
    "deflate": _inflate,
}


def _decoded(content: bytes, content_encoding: str | None) -> bytes:
    """The body as sent before the Content-Encoding the request allowed (zlib.error when it
    does not decompress); as is when not encoded, or encoded in a way not asked for."""
    if not content_encoding or not content:
        return content
    codings = [
        coding
        for coding in (part.strip() for part in content_encoding.lower().split(","))
        if coding and coding != "identity"
    ]
    if not all(coding in _DECODERS for coding in codings):
        return content
    for coding in reversed(codings):  # listed in the order they were applied
        content = _DECODERS[coding](content)
    return content


def _is_connect_refusal(exc: BaseException) -> bool:
    # requests wraps urllib3's NewConnectionError; its presence in the chain means no byte of
    # the request was written.
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__name__ in ("NewConnectionError", "NameResolutionError"):
            return True
        for arg in getattr(current, "args", ()):
            if isinstance(arg, BaseException) and _is_connect_refusal(arg):
                return True
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException) and _is_connect_refusal(reason):
            return True
        current = current.__cause__ or current.__context__
    return False


def _describe(exc: BaseException) -> str:
    # requests' messages include the URL, and a read-by-email URL holds an email address.
    if isinstance(exc, requests.ReadTimeout):
        return "no answer within request_timeout"
    if isinstance(exc, requests.ConnectTimeout):
        return "connection timed out"
    return f"connection failed ({type(exc).__name__})"
