"""OAuth: every flow against the emulator's token endpoint; one refresh per rejected token."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from pardot_emulator import DEFAULT_CREDENTIALS, PardotEmulator
from target_pardot.api.auth import OAuthTokens, StaticToken, jwt_audience, token_source
from target_pardot.errors import AuthenticationError
from target_pardot.settings import Settings
from tests.conftest import rsa_key_pair


def settings(emulator: PardotEmulator, **overrides: Any) -> Settings:
    config = {
        "business_unit_id": DEFAULT_CREDENTIALS["business_unit_id"],
        "client_id": DEFAULT_CREDENTIALS["client_id"],
        "client_secret": DEFAULT_CREDENTIALS["client_secret"],
        "refresh_token": DEFAULT_CREDENTIALS["refresh_token"],
        "username": DEFAULT_CREDENTIALS["username"],
        "password": DEFAULT_CREDENTIALS["password"],
        "login_url": emulator.url,
        "pardot_url": emulator.url,
        **overrides,
    }
    return Settings.from_config(config)


@pytest.fixture
def rsa_key() -> tuple[str, str]:
    return rsa_key_pair()


@pytest.mark.parametrize("flow", ["refresh_token", "client_credentials", "password"])
def test_each_secret_based_flow_gets_a_token(emulator: PardotEmulator, flow: str) -> None:
    tokens = OAuthTokens(settings(emulator, auth_flow=flow), requests.Session())
    assert tokens.token()
    assert emulator.token_calls == 1


def test_client_credentials_off_the_my_domain_host_stops_with_salesforces_reason(
    make_emulator: Any,
) -> None:
    # The emulator's My Domain is http://localhost:<port>; http://127.0.0.1:<port> stands for
    # login.salesforce.com.
    emulator = make_emulator(my_domain_host="localhost")
    my_domain = emulator.url.replace("127.0.0.1", "localhost")
    on_my_domain = settings(emulator, auth_flow="client_credentials", login_url=my_domain)
    assert OAuthTokens(on_my_domain, requests.Session()).token()

    elsewhere = settings(emulator, auth_flow="client_credentials")
    with pytest.raises(AuthenticationError, match="request not supported on this domain") as error:
        OAuthTokens(elsewhere, requests.Session()).token()
    assert DEFAULT_CREDENTIALS["client_secret"] not in str(error.value)
    # The hint points at login_url, not at the credentials (which are right).
    assert "set login_url to https://<your-domain>.my.salesforce.com" in str(error.value)
    assert "expired or revoked" not in str(error.value)
    assert emulator.token_calls == 2  # refused once, not retried


def test_jwt_bearer_signs_an_assertion_the_connected_app_key_verifies(
    make_emulator: Any, rsa_key: tuple[str, str]
) -> None:
    private, public = rsa_key
    emulator = make_emulator(jwt_public_key=public)
    config = settings(emulator, auth_flow="jwt_bearer", private_key=private)
    assert OAuthTokens(config, requests.Session()).token()


def test_jwt_signed_with_another_key_is_refused_with_salesforces_reason(
    make_emulator: Any, rsa_key: tuple[str, str]
) -> None:
    _, public = rsa_key
    other_private, _ = rsa_key_pair()
    emulator = make_emulator(jwt_public_key=public)
    config = settings(emulator, auth_flow="jwt_bearer", private_key=other_private)
    with pytest.raises(AuthenticationError, match="invalid_grant") as error:
        OAuthTokens(config, requests.Session()).token()
    assert "BEGIN" not in str(error.value)


def test_a_private_key_that_is_not_pem_fails_without_echoing_it(emulator: PardotEmulator) -> None:
    config = settings(emulator, auth_flow="jwt_bearer", private_key="not-a-key-secret-text")
    with pytest.raises(AuthenticationError, match="private_key") as error:
        OAuthTokens(config, requests.Session()).token()
    assert "not-a-key-secret-text" not in str(error.value)


def test_unknown_refresh_token_stops_with_invalid_grant_and_no_secret(
    emulator: PardotEmulator,
) -> None:
    config = settings(emulator, refresh_token="revoked-refresh-token-value")
    with pytest.raises(AuthenticationError) as error:
        OAuthTokens(config, requests.Session()).token()
    message = str(error.value)
    assert "invalid_grant" in message
    assert "revoked-refresh-token-value" not in message
    assert DEFAULT_CREDENTIALS["client_secret"] not in message


def test_unknown_client_id_names_the_setting(emulator: PardotEmulator) -> None:
    with pytest.raises(AuthenticationError, match="client_id"):
        OAuthTokens(settings(emulator, client_id="nope"), requests.Session()).token()


def test_many_workers_seeing_184_at_once_cause_a_single_refresh(emulator: PardotEmulator) -> None:
    tokens = OAuthTokens(settings(emulator), requests.Session())
    stale = tokens.token()
    barrier = threading.Barrier(8)
    fresh: list[str] = []

    def worker() -> None:
        barrier.wait()
        fresh.append(tokens.refresh(stale))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(fresh)) == 1 and fresh[0] != stale
    assert emulator.token_calls == 2


def test_a_static_access_token_is_used_as_is_and_cannot_be_refreshed(
    emulator: PardotEmulator,
) -> None:
    source = token_source(settings(emulator, access_token="given"), requests.Session())
    assert isinstance(source, StaticToken)
    assert source.token() == "given"
    with pytest.raises(AuthenticationError, match="access_token"):
        source.refresh("given")
    assert emulator.token_calls == 0


class _BusyTokenEndpoint(BaseHTTPRequestHandler):
    """Salesforce's answer when two token requests overlap, then a token."""

    calls = 0

    def do_POST(self) -> None:
        type(self).calls += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if type(self).calls == 1:
            status = 400
            answer = {
                "error": "invalid_grant",
                "error_description": "token request is already being processed",
            }
        else:
            status, answer = 200, {"access_token": "fresh", "token_type": "Bearer"}
        body = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_an_overlapping_token_request_is_retried_not_fatal() -> None:
    _BusyTokenEndpoint.calls = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BusyTokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        config = Settings.from_config(
            {
                "business_unit_id": DEFAULT_CREDENTIALS["business_unit_id"],
                "client_id": "id",
                "client_secret": "secret",
                "refresh_token": "refresh",
                "login_url": url,
            }
        )
        tokens = OAuthTokens(config, requests.Session(), sleep=lambda _: None)
        assert tokens.token() == "fresh"
        assert _BusyTokenEndpoint.calls == 2
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("login_url", "audience"),
    [
        ("https://login.salesforce.com", "https://login.salesforce.com"),
        ("https://test.salesforce.com", "https://test.salesforce.com"),
        # My Domain hosts issue tokens, but Salesforce wants login/test as the audience.
        ("https://acme.my.salesforce.com", "https://login.salesforce.com"),
        ("https://acme--dev.sandbox.my.salesforce.com", "https://test.salesforce.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ],
)
def test_the_jwt_audience_is_login_or_test_even_from_a_my_domain_host(
    login_url: str, audience: str
) -> None:
    assert jwt_audience(login_url) == audience
