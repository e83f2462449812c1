"""The Pardot HTTP client: one place for auth headers, concurrency, retries and error decoding.

Callers get back a decoded Pardot answer or one of the exceptions in `errors`. What the client
decides on their behalf:

- At most `max_concurrency` calls are in flight across the whole run (every stream and worker
  shares one client), because Pardot answers the 6th concurrent call with error 66.
- Anything transient (connection failures, timeouts, HTTP 5xx, 429, a 2xx that is not a Pardot
  answer, and the transient Pardot codes) is retried with exponential backoff and full jitter,
  bounded by `max_retries` and `max_retry_seconds`; `Retry-After` is honoured.
- A write that is not idempotent is never blindly re-sent once its request may have reached
  Pardot: a lost answer raises `AmbiguousWriteError` so the caller can find out what happened.
- Error 184 refreshes the token and retries. A second 184 for the same call is fatal unless
  the refused token had worked before (it expired again, as tokens do under heavy use).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import string
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import backoff
import requests

from target_pardot.api.auth import TokenSource, token_source
from target_pardot.api.codes import ErrorClass, classify
from target_pardot.api.transport import (
    Files,
    HttpAnswer,
    SendError,
    encode_request,
    transport_for,
)
from target_pardot.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    ConfigurationError,
    QuotaExceededError,
    RunStopping,
    SettingsError,
    TargetPardotError,
    TransientError,
    error_for,
)
from target_pardot.settings import Settings

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
MAX_BACKOFF_SECONDS = 60.0
USER_AGENT = "target-pardot"
# What stops a run wherever it happens: with halt_on_failure, no further call is sent.
_STOPPING_FAILURES = (TransientError, AuthenticationError, QuotaExceededError, ConfigurationError)


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: dict[str, Any]
    endpoint: str
    # The HTTP Date header: Pardot's clock when it answered (see server_time).
    date: str | None = None
    # An earlier attempt of this call may have been applied before its answer was lost (an
    # idempotent call was simply sent again): this answer describes the retry only.
    after_lost_answer: bool = False
    # The raw body of a download (`download=True`), such as an import's error file.
    content: bytes = b""

    @property
    def server_time(self) -> dt.datetime | None:
        """Pardot's clock when it answered, to compare with timestamps in its answers without
        trusting this machine's clock. Parsed on demand: few answers need it."""
        return _server_time(self.date)


class CallStats:
    """Counts the calls a run spends, per endpoint: the number users pay for in API quota."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._in_flight = 0

    def record(self, endpoint: str) -> None:
        with self._lock:
            self._calls[endpoint] += 1

    @contextlib.contextmanager
    def calling(self, endpoint: str) -> Iterator[None]:
        """Count a call, and count it as in flight until it has its answer (or failed)."""
        with self._lock:
            self._calls[endpoint] += 1
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def by_endpoint(self) -> dict[str, int]:
        with self._lock:
            return dict(self._calls)

    @property
    def api_calls(self) -> int:
        with self._lock:
            return sum(n for name, n in self._calls.items() if name != "oauth.token")

    @property
    def token_calls(self) -> int:
        with self._lock:
            return self._calls["oauth.token"]


@dataclass(frozen=True)
class _Retry:
    """A failed attempt that may be tried again."""

    problem: str
    retry_after: float | None = None
    maybe_applied: bool = False


class EnvironmentOnceSession(requests.Session):
    """A requests session that reads proxies and CA bundles from the environment once per host.

    requests reads them again for every call (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE...,
    walking the whole environment twice): about half a millisecond of CPU per call, as much as
    preparing the 50 records the call carries. The environment does not change during a run,
    so the answer for a host is kept; what is sent and through which proxy stays the same.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[str, str], dict[str, Any]] = {}

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        if proxies or stream is not None or verify is not None or cert is not None:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        settings = self._environment.get(key)
        if settings is None:
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._environment[key] = settings
        # A copy: requests may add to what it is given.
        return {**settings, "proxies": dict(settings["proxies"])}


class PardotClient:
    def __init__(
        self,
        settings: Settings,
        *,
        session: requests.Session | None = None,
        tokens: TokenSource | None = None,
        stats: CallStats | None = None,
        sleep: Callable[[float], None] | None = None,
        backoff_factor: float = 1.0,
    ) -> None:
        self.settings = settings
        self.stats = stats or CallStats()
        self._session = session or EnvironmentOnceSession()
        self._session.headers["User-Agent"] = USER_AGENT
        self._tokens = tokens or token_source(
            settings, self._session, on_token_call=lambda: self.stats.record("oauth.token")
        )
        self._transport = transport_for(
            settings.pardot_url, self._session, pool_size=settings.max_concurrency
        )
        self._in_flight = threading.BoundedSemaphore(settings.max_concurrency)
        self._working_tokens: set[str] = set()
        self._backoff_factor = backoff_factor
        # Set by the run: a failure that stops it (retries used up, credentials, quota...)
        # halts the client, so the batch's other calls are not sent, each through its own
        # retries, for minutes or hours before the run can report it.
        self.halt_on_failure = False
        self._halted: str | None = None
        self._no_retries = threading.Event()
        self._wake = threading.Event()  # cuts a backoff short
        self._sleep = sleep or self._wake.wait

    def halt(self, reason: str) -> None:
        """Send no call from now on; each raises RunStopping naming `reason`."""
        if self._halted is None:
            self._halted = reason
        self._wake.set()

    def stop_retrying(self) -> None:
        """Retry no call from now on (the run was told to stop): calls under way finish or
        fail, and a backoff under way ends now."""
        self._no_retries.set()
        self._wake.set()

    def pause_before_retry(self, delay: float, *, failure: str) -> None:
        """The backoff before a retry, the client's own or a caller's (a batch's items that
        failed transiently): cut short by `stop_retrying` or `halt`, after which the retry is
        refused with TransientError (`failure` says what failed)."""
        self._sleep(delay)
        if self._no_retries.is_set():
            raise TransientError(f"{failure} and was not retried: the run was told to stop")

    def close(self) -> None:
        self._transport.close()
        self._session.close()

    def authenticate(self) -> None:
        """Fetch the first token now, so bad credentials stop the run before any record."""
        self._tokens.token()

    # v3 / v4 ------------------------------------------------------------------------------

    def v34(
        self,
        object_name: str,
        operation: str,
        *,
        version: int,
        ident: tuple[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> ApiResponse:
        """Call `{pardot}/api/{object}/version/{v}/do/{op}[/{kind}/{value}]` with form params."""
        path = f"/api/{object_name}/version/{version}/do/{operation}"
        if ident is not None:
            kind, value = ident
            path += f"/{kind}/{quote(str(value), safe='')}"
        form = {key: value for key, value in (params or {}).items() if value is not None}
        form["format"] = "json"
        return self._call(
            f"v{version}.{object_name}.{operation}",
            "POST",
            path,
            data=form_encode(form),
            idempotent=idempotent,
        )

    # v5 -----------------------------------------------------------------------------------

    def v5(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        json: Mapping[str, Any] | None = None,
        files: Files | None = None,
        idempotent: bool = True,
        download: bool = False,
    ) -> ApiResponse:
        """Call `{pardot}/api/v5/{path}` with JSON in and out.

        `files` sends a multipart form instead of JSON (the Import API's uploads: part name ->
        (file name, content, content type)). `download` accepts any 2xx body, following
        redirects, and returns it as `content` (the Import API's error file).
        """
        return self._call(
            endpoint,
            method,
            "/api/v5/" + path.lstrip("/"),
            params=params,
            json=json,
            files=files,
            idempotent=idempotent,
            download=download,
        )

    # v4 Import API ---------------------------------------------------------------------------

    def v4_import(
        self,
        method: str,
        operation: str,
        *,
        import_id: int | None = None,
        json: Mapping[str, Any] | None = None,
        files: Files | None = None,
        idempotent: bool = True,
        download: bool = False,
        no_content: bool = False,
    ) -> ApiResponse:
        """Call `{pardot}/api/import/version/4/do/{operation}[/id/{import_id}]`.

        JSON in and out (no `format` parameter: these endpoints speak JSON); `files` sends a
        multipart form; `download` returns the raw body of a 2xx (the error file); with
        `no_content` an empty 204 is the answer (a batch upload), with an empty body.
        """
        path = f"/api/import/version/4/do/{operation}"
        if import_id is not None:
            path += f"/id/{int(import_id)}"
        return self._call(
            f"v4.import.{operation}",
            method,
            path,
            json=json,
            files=files,
            idempotent=idempotent,
            download=download,
            no_content=no_content,
        )

    # the retry loop ---------------------------------------------------------------------------

    def _call(self, endpoint: str, method: str, path: str, **options: Any) -> ApiResponse:
        try:
            return self._call_retrying(endpoint, method, path, **options)
        except _STOPPING_FAILURES as error:
            if self.halt_on_failure:
                self.halt(str(error))
            raise

    def _call_retrying(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: bytes | None = None,
        json: Mapping[str, Any] | None = None,
        files: Files | None = None,
        idempotent: bool,
        download: bool = False,
        no_content: bool = False,
    ) -> ApiResponse:
        url = self.settings.pardot_url + path
        deadline = time.monotonic() + self.settings.max_retry_seconds
        delays = backoff.expo(base=2, factor=self._backoff_factor, max_value=MAX_BACKOFF_SECONDS)
        next(delays)  # python-backoff generators yield a priming 0 first
        refreshes = 0
        failures = 0
        maybe_applied = False
        while True:
            if self._halted is not None:
                raise RunStopping(f"{endpoint} not sent: the run is stopping ({self._halted})")
            token = self._tokens.token()
            outcome = self._attempt(
                endpoint, method, url, token, params, data, json, files, download, no_content
            )
            if isinstance(outcome, ApiResponse):
                return replace(outcome, after_lost_answer=True) if maybe_applied else outcome
            if outcome.problem == "184":
                # A token that worked for some call and is now refused has expired: refresh it.
                # A token refused before it ever worked, after this call already refreshed once,
                # will not start working: stop instead of looping.
                if refreshes and (token not in self._working_tokens or refreshes > 3):
                    raise AuthenticationError(
                        f"Pardot rejected a freshly issued access token on {endpoint} "
                        "(error 184). Check that the Salesforce user has Pardot access in this "
                        "business unit and the connected app has the pardot_api scope."
                    )
                refreshes += 1
                self._tokens.refresh(token)
                continue
            if outcome.maybe_applied and not idempotent:
                raise AmbiguousWriteError(endpoint, outcome.problem)
            maybe_applied = maybe_applied or outcome.maybe_applied
            failures += 1
            delay = backoff.full_jitter(next(delays))
            if outcome.retry_after is not None:
                delay = max(delay, outcome.retry_after)
            if failures > self.settings.max_retries or time.monotonic() + delay > deadline:
                raise TransientError(
                    f"{endpoint} still failing after {failures} attempts "
                    f"(max_retries {self.settings.max_retries}, max_retry_seconds "
                    f"{self.settings.max_retry_seconds:g}): {outcome.problem}"
                )
            logger.info(
                "%s failed (%s); retry %d in %.1fs", endpoint, outcome.problem, failures, delay
            )
            self.pause_before_retry(delay, failure=f"{endpoint} failed ({outcome.problem})")

    def _attempt(
        self,
        endpoint: str,
        method: str,
        url: str,
        token: str,
        params: Mapping[str, Any] | None,
        data: bytes | None,
        json: Mapping[str, Any] | None,
        files: Files | None = None,
        download: bool = False,
        no_content: bool = False,
    ) -> ApiResponse | _Retry:
        headers = {
            "Authorization": f"Bearer {token}",
            "Pardot-Business-Unit-Id": self.settings.business_unit_id,
        }
        url, body = encode_request(url, headers, params=params, data=data, json=json, files=files)
        started = time.monotonic()
        try:
            with self._in_flight, self.stats.calling(endpoint):
                answer = self._transport.send(
                    method,
                    url,
                    headers=headers,
                    body=body,
                    timeout=(CONNECT_TIMEOUT, self.settings.request_timeout),
                    follow_redirects=download,
                )
        except SendError as error:
            return _Retry(error.description, maybe_applied=not error.never_sent)
        logger.debug(
            "%s %s -> HTTP %d in %.2fs",
            method,
            endpoint,
            answer.status,
            time.monotonic() - started,
        )
        if answer.status != 401:
            self._working_tokens.add(token)
        if no_content and answer.status == 204:
            # Asked for by the callers whose endpoint answers No Content (v4 import batches);
            # elsewhere an empty 2xx is not a Pardot answer (a proxy's), and is retried.
            return ApiResponse(204, {}, endpoint, answer.headers.get("Date"))
        if download and 200 <= answer.status < 300:
            return ApiResponse(
                answer.status, {}, endpoint, answer.headers.get("Date"), content=answer.content
            )
        if download and answer.status >= 400 and answer.redirected:
            # Pardot's redirect pointed at its file storage, which refused (an expired link):
            # asking Pardot again gives a fresh one.
            return _Retry(f"HTTP {answer.status} from the file Pardot redirected to")
        return _interpret(endpoint, answer)


# What `urlencode` (and so requests, for a dict of form data) leaves as it is; every other byte
# of the UTF-8 text becomes %XX, and the space "+". A batch call's form holds ~12 KB of JSON,
# which urlencode quotes one byte at a time (~0.5 ms of CPU a call, as much as preparing the
# call's 50 records). Here one C-level pass finds which bytes need quoting (a JSON body uses a
# dozen distinct ones) and one `replace` per such byte quotes them: about 3x faster.
_FORM_SAFE = (string.ascii_letters + string.digits + "_.-~").encode("ascii")
_FORM_ESCAPES = {
    code: b"+" if code == 0x20 else b"%%%02X" % code
    for code in range(256)
    if code not in _FORM_SAFE
}


def form_encode(form: Mapping[str, Any]) -> bytes:
    """`urlencode(form).encode()`, byte for byte, for flat forms of text and numbers."""
    return b"&".join(
        _form_quote(str(name)) + b"=" + _form_quote(str(value)) for name, value in form.items()
    )


def _form_quote(text: str) -> bytes:
    data = text.encode("utf-8")
    unsafe = set(data.translate(None, _FORM_SAFE))
    if not unsafe:
        return data
    # "%" first and the space last: the escapes add "%" and "+", which must stay as they are.
    if 0x25 in unsafe:
        unsafe.discard(0x25)
        data = data.replace(b"%", b"%25")
    space = 0x20 in unsafe
    unsafe.discard(0x20)
    for code in unsafe:
        data = data.replace(bytes((code,)), _FORM_ESCAPES[code])
    return data.replace(b" ", b"+") if space else data


def _interpret(endpoint: str, response: HttpAnswer) -> ApiResponse | _Retry:
    status = response.status
    retry_after = _retry_after(response.headers.get("Retry-After"))
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        if status >= 500 or status < 300:
            return _Retry(f"HTTP {status} without a Pardot answer", retry_after, maybe_applied=True)
        if status == 429:
            return _Retry("HTTP 429 without a Pardot answer", retry_after)
        raise SettingsError(
            f"{endpoint} answered HTTP {status} without a Pardot answer; check pardot_url "
            f"({response.url.split('/api/')[0]})"
        )

    code, message = _error_of(body, status)
    if code is None:
        if status >= 500:
            return _Retry(f"HTTP {status}: {message or 'server error'}", retry_after, True)
        if status == 429:
            return _Retry("HTTP 429", retry_after)
        if status >= 400 and message:
            raise TargetPardotError(f"{endpoint} answered HTTP {status}: {message}")
        return ApiResponse(status, body, endpoint, response.headers.get("Date"))
    error_class = classify(code)
    if error_class is ErrorClass.AUTHENTICATION:
        return _Retry("184")
    if error_class is ErrorClass.TRANSIENT:
        return _Retry(f"Pardot error {code}: {message}", retry_after)
    raise error_for(code, message, status=status, endpoint=endpoint)


def _error_of(body: dict[str, Any], status: int) -> tuple[int | None, str]:
    attributes = body.get("@attributes")
    if isinstance(attributes, dict):
        code = attributes.get("err_code")
        if code is not None:
            return _as_int(code), str(body.get("err", ""))
        return None, ""
    if status >= 400 and "code" in body:
        return _as_int(body.get("code")), str(body.get("message", ""))
    return None, str(body.get("message", "")) if status >= 400 else ""


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _server_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
