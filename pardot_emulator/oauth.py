"""Salesforce's OAuth 2.0 token endpoint (``POST /services/oauth2/token``) and token book-keeping.

Grants: refresh_token, client_credentials, password and the JWT bearer flow. Tokens are
opaque random strings; each stays valid until the TTL or per-token call budget that the
emulator's knobs set runs out, and issuing a new one never revokes older ones.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt

DEFAULT_CREDENTIALS: dict[str, str] = {
    "client_id": "emulator-client-id",
    "client_secret": "emulator-client-secret",
    "refresh_token": "emulator-refresh-token",
    "username": "integration@example.com",
    "password": "emulator-password",
    "business_unit_id": "0Uv000000000001AAA",
}

TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 - a URL path, not a secret
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Audiences a JWT assertion may name besides the emulator's own URL.
LOGIN_HOSTS = ("https://login.salesforce.com", "https://test.salesforce.com")
ORG_ID = "00D000000000001AAA"
USER_ID = "005000000000001AAA"
# Salesforce's answer to a token request while another one for the same grant is under way
# (the notes: "two refreshes at once can give 400 invalid_grant"; clients should retry it).
ALREADY_PROCESSING = "token request is already being processed"
# Salesforce's answer to a client_credentials grant sent to login/test.salesforce.com rather
# than the org's My Domain (seen in public client issues; the notes give no wording).
NOT_THIS_DOMAIN = "request not supported on this domain"


class OAuthError(Exception):
    def __init__(self, error: str, description: str):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description

    def payload(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass
class _Token:
    issued_at: float  # time.monotonic(), so wall-clock jumps do not expire tokens
    calls: int = 0


class TokenBook:
    """Issued access tokens and how much each has been used. Callers hold the emulator lock."""

    def __init__(self) -> None:
        self._tokens: dict[str, _Token] = {}

    def issue(self) -> str:
        # Shaped like a Salesforce session id ("<org id>!<secret>"); clients must not parse it.
        token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(32)}"
        self._tokens[token] = _Token(issued_at=time.monotonic())
        return token

    def admit(self, token: str | None, *, ttl: float | None, max_calls: int | None) -> bool:
        """True, and one call charged to the token, if it is known and still live."""
        record = self._tokens.get(token) if token else None
        if record is None:
            return False
        if ttl is not None and time.monotonic() - record.issued_at >= ttl:
            return False
        if max_calls is not None and record.calls >= max_calls:
            return False
        record.calls += 1
        return True


class TokenFailures:
    """Token calls to refuse on purpose, one queued error per call, oldest first. A real race
    cannot be staged reliably, so the emulator refuses the next calls whatever they carry.
    Callers hold the emulator lock."""

    def __init__(self) -> None:
        self._queued: deque[OAuthError] = deque()

    def queue(self, count: int, error: str, description: str) -> None:
        self._queued.extend(OAuthError(error, description) for _ in range(count))

    def take(self) -> OAuthError | None:
        return self._queued.popleft() if self._queued else None


def is_my_domain(host_header: str | None, my_domain_host: str | None) -> bool:
    """Whether a token request reached the org's My Domain host: always, when none is set
    (the emulator has one host for everything); else when its Host header names that host,
    whatever the port."""
    if my_domain_host is None:
        return True
    try:
        host = urlsplit("//" + (host_header or "")).hostname
    except ValueError:  # a Host header that is no host at all
        return False
    return host is not None and host == my_domain_host.strip().lower()


def token_response(
    method: str,
    form: Mapping[str, str],
    *,
    credentials: Mapping[str, str],
    book: TokenBook,
    instance_url: str,
    jwt_public_key: str | None,
    on_my_domain: bool = True,
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) for one token request."""
    try:
        if method != "POST":
            raise OAuthError("invalid_request", "must use HTTP POST")
        _check_grant(form, credentials, instance_url, jwt_public_key, on_my_domain)
    except OAuthError as exc:
        return 400, exc.payload()
    issued_at = str(int(time.time() * 1000))
    identity = f"{instance_url}/id/{ORG_ID}/{USER_ID}"
    # Salesforce signs id + issued_at with the client secret (HMAC-SHA256, base64).
    digest = hmac.new(
        credentials["client_secret"].encode(), (identity + issued_at).encode(), hashlib.sha256
    ).digest()
    return 200, {
        "access_token": book.issue(),
        "instance_url": instance_url,
        "id": identity,
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": base64.b64encode(digest).decode(),
    }


def _check_grant(
    form: Mapping[str, str],
    credentials: Mapping[str, str],
    instance_url: str,
    jwt_public_key: str | None,
    on_my_domain: bool,
) -> None:
    grant = form.get("grant_type")
    if grant == "refresh_token":
        _check_client(form, credentials)
        if not _same(form.get("refresh_token"), credentials["refresh_token"]):
            raise OAuthError("invalid_grant", "expired access/refresh token")
    elif grant == "client_credentials":
        # The notes: this grant "must use the org's My Domain URL ... not login/test".
        if not on_my_domain:
            raise OAuthError("invalid_grant", NOT_THIS_DOMAIN)
        _check_client(form, credentials)
    elif grant == "password":
        _check_client(form, credentials)
        if form.get("username") != credentials["username"] or not _same(
            form.get("password"), credentials["password"]
        ):
            raise OAuthError("invalid_grant", "authentication failure")
    elif grant == JWT_BEARER:
        _check_assertion(form.get("assertion"), credentials, instance_url, jwt_public_key)
    else:
        raise OAuthError("unsupported_grant_type", "grant type not supported")


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _check_client(form: Mapping[str, str], credentials: Mapping[str, str]) -> None:
    if form.get("client_id") != credentials["client_id"]:
        raise OAuthError("invalid_client_id", "client identifier invalid")
    if not _same(form.get("client_secret"), credentials["client_secret"]):
        raise OAuthError("invalid_client", "invalid client credentials")


def _check_assertion(
    assertion: str | None,
    credentials: Mapping[str, str],
    instance_url: str,
    public_key: str | None,
) -> None:
    """RS256 only; the signature is checked when a public key is configured. The exp claim
    must be in the future but its distance is not capped (Salesforce asks for <= 3 min)."""
    invalid = OAuthError("invalid_grant", "invalid assertion")
    if not assertion:
        raise invalid
    try:
        if jwt.get_unverified_header(assertion).get("alg") != "RS256":
            raise invalid
        if public_key:
            claims = jwt.decode(
                assertion,
                public_key,
                algorithms=["RS256"],
                options={
                    "verify_aud": False,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        else:
            claims = jwt.decode(assertion, options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise invalid from exc
    if claims.get("iss") != credentials["client_id"]:
        raise OAuthError("invalid_client_id", "client identifier invalid")
    audiences = claims.get("aud")
    audiences = audiences if isinstance(audiences, list) else [audiences]
    accepted = {instance_url.rstrip("/"), *LOGIN_HOSTS}
    if not any(isinstance(a, str) and a.rstrip("/") in accepted for a in audiences):
        raise OAuthError("invalid_grant", "audience is invalid")
    expires = claims.get("exp")
    if not isinstance(expires, (int, float)) or isinstance(expires, bool) or expires <= time.time():
        raise invalid
    if claims.get("sub") != credentials["username"]:
        raise OAuthError("invalid_grant", "user hasn't approved this consumer")
