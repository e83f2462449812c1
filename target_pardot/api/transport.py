"""Sending one HTTP request to Pardot and reading its whole answer.

Two ways, chosen once per run for the Pardot host:

- Direct (the common case): urllib3's connection pool, with what requests would have used for
  that host (its CA bundle: REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE or certifi's). A batch call
  costs about half the CPU it costs through a requests Session, which builds a Request, a
  PreparedRequest, cookie jars and a Response around the same urllib3 call. A run makes
  thousands of calls, so this is a good part of the target's CPU.
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
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol
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
    """urllib3's pool, set up as requests would set it up for this host."""

    def __init__(
        self,
        *,
        verify: bool | str,
        pool_size: int,
        user_agent: str,
        fallback: Transport | None = None,
    ) -> None:
        tls: dict[str, Any] = {"cert_reqs": "CERT_NONE"} if verify is False else {}
        if isinstance(verify, str):
            if not os.path.exists(verify):
                # requests refused such a setting before sending anything; so does this.
                raise SettingsError(
                    f"the CA bundle {verify!r} (REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE) does not "
                    "exist: point the variable at a certificate file or directory, or unset it "
                    "to use certifi's"
                )
            # requests accepts a bundle file or a directory of certificates.
            tls = {"ca_cert_dir": verify} if os.path.isdir(verify) else {"ca_certs": verify}
        elif verify is True:
            tls = {"ca_certs": requests.utils.DEFAULT_CA_BUNDLE_PATH}
        self._fallback = fallback or RequestsTransport(requests.Session())
        self._pool = urllib3.PoolManager(
            num_pools=4, maxsize=pool_size, block=False, retries=False, **tls
        )
        self._user_agent = user_agent

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
        limit = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        redirected = False
        for _ in range(MAX_REDIRECTS + 1):
            if redirected and self._proxied(url):
                # A download redirected to a host the environment reaches through a proxy
                # (Pardot's file storage): requests takes it from here.
                answer = self._fallback.send(
                    method, url, headers=headers, body=body, timeout=timeout, follow_redirects=True
                )
                return replace(answer, redirected=True)
            response = self._request(method, url, headers, body, limit)
            location = response.headers.get("Location")
            if not (follow_redirects and response.status in _REDIRECTS and location):
                return HttpAnswer(response.status, response.headers, response.data, url, redirected)
            next_url = urljoin(url, location)
            if not same_origin(url, next_url):
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            if response.status == 303 or (method == "POST" and response.status in (301, 302)):
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
        timeout: urllib3.Timeout,
    ) -> urllib3.BaseHTTPResponse:
        try:
            return self._pool.urlopen(
                method, url, body=body, headers=headers, timeout=timeout, redirect=False
            )
        except urllib3.exceptions.NewConnectionError as error:
            # Before ConnectTimeoutError, of which urllib3 makes it (and DNS failures) a kind.
            return _raise(f"connection failed ({type(error).__name__})", never_sent=True)
        except urllib3.exceptions.ConnectTimeoutError:
            return _raise("connection timed out", never_sent=True)
        except urllib3.exceptions.ReadTimeoutError:
            return _raise("no answer within request_timeout", never_sent=False)
        except urllib3.exceptions.HTTPError as error:
            # The message of urllib3's errors may hold the URL, and a read-by-email URL holds
            # an email address: only the kind of failure is told.
            return _raise(f"connection failed ({type(error).__name__})", never_sent=False)

    def close(self) -> None:
        self._pool.clear()


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
