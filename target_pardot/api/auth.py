"""Salesforce OAuth access tokens for the Pardot API, shared by every worker of a run.

One token is fetched lazily and reused by all threads. When Pardot rejects it (error 184) the
worker that saw the rejection asks for a refresh *of that token*: if another worker has already
replaced it, the replacement is returned without a second token call, so a burst of 184s causes
one refresh, not a storm.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

import jwt
import requests
import requests.auth

from target_pardot.errors import AuthenticationError
from target_pardot.settings import Settings

TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 (a URL path, not a secret)
PRODUCTION_AUDIENCE = "https://login.salesforce.com"
SANDBOX_AUDIENCE = "https://test.salesforce.com"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Salesforce answers this when two token requests for the same grant overlap: retry it.
ALREADY_PROCESSING = "token request is already being processed"
TOKEN_ATTEMPTS = 4


class TokenSource(Protocol):
    def token(self) -> str: ...

    def refresh(self, rejected: str) -> str: ...


class StaticToken:
    """The `access_token` setting, used as is: it cannot be renewed."""

    def __init__(self, access_token: str) -> None:
        self._access_token = access_token

    def token(self) -> str:
        return self._access_token

    def refresh(self, rejected: str) -> str:
        raise AuthenticationError(
            "Pardot rejected the access_token setting (error 184: invalid, unknown or expired). "
            "Give a fresh token, or remove access_token so that auth_flow can fetch one."
        )


class OAuthTokens:
    """Fetches and refreshes tokens with the configured Salesforce OAuth flow."""

    def __init__(
        self,
        settings: Settings,
        session: requests.Session,
        *,
        on_token_call: Callable[[], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings = settings
        self._session = session
        self._lock = threading.Lock()
        self._access_token: str | None = None
        self._on_token_call = on_token_call
        self._sleep = sleep

    def token(self) -> str:
        with self._lock:
            if self._access_token is None:
                self._access_token = self._fetch()
            return self._access_token

    def refresh(self, rejected: str) -> str:
        with self._lock:
            if self._access_token is not None and self._access_token != rejected:
                return self._access_token
            self._access_token = self._fetch()
            return self._access_token

    def _form(self) -> dict[str, str]:
        settings = self._settings
        flow = settings.auth_flow
        if flow == "refresh_token":
            return {
                "grant_type": "refresh_token",
                "refresh_token": settings.refresh_token or "",
                "client_id": settings.client_id or "",
                "client_secret": settings.client_secret or "",
            }
        if flow == "client_credentials":
            return {
                "grant_type": "client_credentials",
                "client_id": settings.client_id or "",
                "client_secret": settings.client_secret or "",
            }
        if flow == "password":
            return {
                "grant_type": "password",
                "username": settings.username or "",
                "password": settings.password or "",
                "client_id": settings.client_id or "",
                "client_secret": settings.client_secret or "",
            }
        return {"grant_type": JWT_GRANT, "assertion": self._jwt_assertion()}

    def _jwt_assertion(self) -> str:
        settings = self._settings
        claims = {
            "iss": settings.client_id,
            "sub": settings.username,
            "aud": jwt_audience(settings.login_url),
            # Salesforce accepts assertions valid for at most 3 minutes.
            "exp": int(time.time()) + 180,
        }
        try:
            return jwt.encode(claims, settings.private_key or "", algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            # The library's message never contains the key itself.
            raise AuthenticationError(
                f"private_key could not sign the JWT bearer assertion: {exc}"
            ) from None

    def _fetch(self) -> str:
        url = self._settings.login_url + TOKEN_PATH
        flow = self._settings.auth_flow
        last_problem = ""
        for attempt in range(TOKEN_ATTEMPTS):
            if attempt:
                self._sleep(min(2**attempt, 10) * 0.5)
            if self._on_token_call:
                self._on_token_call()
            try:
                response = self._session.post(
                    url,
                    data=self._form(),
                    timeout=self._settings.request_timeout,
                    auth=BearerAuth(None),  # credentials go in the form, never from ~/.netrc
                )
            except requests.RequestException as exc:
                last_problem = f"could not reach {url}: {type(exc).__name__}"
                continue
            if response.status_code >= 500:
                last_problem = f"{url} answered HTTP {response.status_code}"
                continue
            try:
                body = response.json()
            except ValueError:
                last_problem = f"{url} answered HTTP {response.status_code} without JSON"
                continue
            if response.ok and body.get("access_token"):
                return str(body["access_token"])
            error = body.get("error", "unknown_error")
            description = body.get("error_description", "")
            if ALREADY_PROCESSING in description.lower():
                last_problem = f"{error}: {description}"
                continue
            hint = _FLOW_HINTS.get(error, "Check the credentials settings for this flow.")
            if NOT_THIS_DOMAIN in description.lower():
                hint = (
                    "This grant works only on the org's My Domain: set login_url to "
                    "https://<your-domain>.my.salesforce.com."
                )
            raise AuthenticationError(
                f"Salesforce refused the {flow} token request at {url}: {error}: {description}. "
                f"{hint}"
            )
        raise AuthenticationError(
            f"could not get a Salesforce access token after {TOKEN_ATTEMPTS} attempts: "
            f"{last_problem}"
        )


# Salesforce's description when a grant that needs My Domain (client_credentials) is sent to
# another host.
NOT_THIS_DOMAIN = "not supported on this domain"

_FLOW_HINTS = {
    "invalid_grant": "The credentials for this auth_flow were not accepted (expired or revoked "
    "refresh token, wrong username/password, or a JWT the connected app does not trust).",
    "invalid_client_id": "client_id is not a known connected app consumer key.",
    "invalid_client": "client_secret does not match client_id.",
    "unsupported_grant_type": "This org does not allow this auth_flow; pick another one.",
}


def token_source(
    settings: Settings,
    session: requests.Session,
    *,
    on_token_call: Callable[[], None] | None = None,
) -> TokenSource:
    if settings.access_token:
        return StaticToken(settings.access_token)
    return OAuthTokens(settings, session, on_token_call=on_token_call)


def jwt_audience(login_url: str) -> str:
    """The `aud` Salesforce accepts in a JWT bearer assertion for this login host.

    It must be login.salesforce.com or test.salesforce.com even when tokens are fetched from a
    My Domain URL (acme.my.salesforce.com, acme--dev.sandbox.my.salesforce.com); only another
    host (a community URL, or a local emulator) is its own audience.
    """
    host = (urlsplit(login_url).hostname or "").lower()
    if host == "test.salesforce.com" or host.endswith(".sandbox.my.salesforce.com"):
        return SANDBOX_AUDIENCE
    if host == "login.salesforce.com" or host.endswith(".my.salesforce.com"):
        return PRODUCTION_AUDIENCE
    return login_url


class BearerAuth(requests.auth.AuthBase):
    """Sends an OAuth access token, or nothing when there is none (the token call itself).

    Giving requests an `auth` also keeps it from sending a `~/.netrc` entry for the host as
    Basic auth in place of the token, which it does for any call made without one.
    """

    def __init__(self, token: str | None) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._token is not None:
            request.headers["Authorization"] = f"Bearer {self._token}"
        return request
