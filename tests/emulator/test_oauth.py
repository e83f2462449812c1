from __future__ import annotations

import time
from collections.abc import Callable

import jwt
import pytest
import requests

from pardot_emulator import PardotEmulator
from tests.conftest import rsa_key_pair

from .helpers import CREDS, Api, err_code, refresh_form, token_request

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_KEYS = {"access_token", "instance_url", "id", "token_type", "issued_at", "signature"}


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return rsa_key_pair()


@pytest.fixture(scope="module")
def other_private_key() -> str:
    return rsa_key_pair()[0]


def _assertion(private_key: str, aud: str, **claims: object) -> str:
    payload: dict[str, object] = {
        "iss": CREDS["client_id"],
        "sub": CREDS["username"],
        "aud": aud,
        "exp": int(time.time()) + 180,
    }
    payload.update(claims)
    return jwt.encode(payload, private_key, algorithm="RS256")


def test_refresh_token_grant_answers_the_salesforce_shape(emu: PardotEmulator) -> None:
    response = token_request(emu, **refresh_form())
    assert response.status_code == 200
    body = response.json()
    assert set(body) == TOKEN_KEYS
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == emu.url
    assert body["issued_at"].isdigit()
    assert abs(int(body["issued_at"]) / 1000 - time.time()) < 60
    # The token it hands out works against the API.
    assert Api(emu, body["access_token"]).v34(4, "query").status_code == 200


def test_client_credentials_and_password_grants(emu: PardotEmulator) -> None:
    client = {"client_id": CREDS["client_id"], "client_secret": CREDS["client_secret"]}
    response = token_request(emu, grant_type="client_credentials", **client)
    assert response.status_code == 200, response.text
    response = token_request(
        emu, grant_type="password", username=CREDS["username"], password=CREDS["password"], **client
    )
    assert response.status_code == 200, response.text
    bad = token_request(
        emu, grant_type="password", username=CREDS["username"], password="wrong", **client
    )
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("overrides", "error", "description"),
    [
        ({"client_id": "nope"}, "invalid_client_id", "client identifier invalid"),
        ({"client_secret": "nope"}, "invalid_client", "invalid client credentials"),
        ({"refresh_token": "nope"}, "invalid_grant", "expired access/refresh token"),
        ({"grant_type": "authorization_code"}, "unsupported_grant_type", None),
    ],
)
def test_token_errors(
    emu: PardotEmulator, overrides: dict[str, str], error: str, description: str | None
) -> None:
    response = token_request(emu, **refresh_form(**overrides))
    assert response.status_code == 400
    assert response.json()["error"] == error
    if description is not None:
        assert response.json()["error_description"] == description


def test_with_a_my_domain_host_client_credentials_is_refused_on_any_other_host(
    make_emulator: Callable[..., PardotEmulator],
) -> None:
    emu = make_emulator(my_domain_host="acme.my.salesforce.com")
    client = {"client_id": CREDS["client_id"], "client_secret": CREDS["client_secret"]}

    def grant(host: str | None, **form: str) -> requests.Response:
        headers = {"Host": host} if host else {}
        url = f"{emu.url}/services/oauth2/token"
        return requests.post(url, data=form, headers=headers, timeout=5)

    for host in (None, "login.salesforce.com", "test.salesforce.com"):
        refused = grant(host, grant_type="client_credentials", **client)
        assert refused.status_code == 400
        assert refused.json() == {
            "error": "invalid_grant",
            "error_description": "request not supported on this domain",
        }
    on_my_domain = grant("ACME.my.salesforce.com:443", grant_type="client_credentials", **client)
    assert on_my_domain.status_code == 200, on_my_domain.text
    # Only client_credentials is tied to My Domain.
    assert grant(None, **refresh_form()).status_code == 200
    assert emu.token_calls == 5


def test_my_domain_host_localhost_tells_the_two_loopback_urls_apart(
    make_emulator: Callable[..., PardotEmulator],
) -> None:
    emu = make_emulator(my_domain_host="localhost")
    form = {
        "grant_type": "client_credentials",
        "client_id": CREDS["client_id"],
        "client_secret": CREDS["client_secret"],
    }
    my_domain = emu.url.replace("127.0.0.1", "localhost")
    assert requests.post(f"{my_domain}/services/oauth2/token", data=form, timeout=5).ok
    assert token_request(emu, **form).status_code == 400


def test_token_endpoint_requires_post(emu: PardotEmulator) -> None:
    response = requests.get(f"{emu.url}/services/oauth2/token", params=refresh_form(), timeout=5)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_new_tokens_do_not_revoke_old_ones_and_are_counted(emu: PardotEmulator) -> None:
    first, second = Api(emu), Api(emu)
    assert first.token != second.token
    assert first.v34(4, "query").status_code == 200
    assert second.v34(4, "query").status_code == 200
    assert emu.token_calls == 2
    assert emu.call_counts["oauth.token"] == 2
    assert emu.api_calls == 2  # token calls are not API calls


def test_fail_next_token_calls_answers_the_already_processing_race_then_recovers(
    emu: PardotEmulator,
) -> None:
    emu.fail_next_token_calls(2)
    for _ in range(2):
        refused = token_request(emu, **refresh_form())
        assert refused.status_code == 400
        assert refused.json() == {
            "error": "invalid_grant",
            "error_description": "token request is already being processed",
        }
    assert token_request(emu, **refresh_form()).status_code == 200
    assert emu.token_calls == 3


def test_fail_next_token_calls_can_give_another_error(emu: PardotEmulator) -> None:
    emu.fail_next_token_calls(1, error="invalid_client_id", description="client identifier invalid")
    refused = token_request(emu, **refresh_form())
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_client_id")
    assert token_request(emu, **refresh_form()).status_code == 200


def test_token_ttl_is_read_at_run_time(emu: PardotEmulator) -> None:
    api = Api(emu)
    assert api.v34(4, "query").status_code == 200
    emu.token_ttl_seconds = 0.0
    expired = api.v34(4, "query")
    assert expired.status_code == 401
    assert err_code(expired) == 184


def test_jwt_bearer_with_signature_verification(
    make_emulator: Callable[..., PardotEmulator], keys: tuple[str, str], other_private_key: str
) -> None:
    private, public = keys
    emu = make_emulator(jwt_public_key=public)

    def grant(assertion: str) -> tuple[int, dict[str, str]]:
        response = token_request(emu, grant_type=JWT_GRANT, assertion=assertion)
        return response.status_code, response.json()

    status, body = grant(_assertion(private, emu.url))
    assert status == 200, body
    assert set(body) == TOKEN_KEYS
    assert Api(emu, body["access_token"]).v34(4, "query").status_code == 200
    assert grant(_assertion(private, "https://login.salesforce.com"))[0] == 200
    assert grant(_assertion(private, "https://test.salesforce.com/"))[0] == 200

    assert grant(_assertion(other_private_key, emu.url)) == (
        400,
        {"error": "invalid_grant", "error_description": "invalid assertion"},
    )
    assert grant(_assertion(private, emu.url, exp=int(time.time()) - 5))[1]["error"] == (
        "invalid_grant"
    )
    assert grant(_assertion(private, "https://evil.example.com"))[1] == {
        "error": "invalid_grant",
        "error_description": "audience is invalid",
    }
    assert grant(_assertion(private, emu.url, iss="someone-else"))[1]["error"] == (
        "invalid_client_id"
    )
    assert grant(_assertion(private, emu.url, sub="other@example.com"))[1]["error"] == (
        "invalid_grant"
    )
    assert grant("not-a-jwt")[1]["error"] == "invalid_grant"


def test_jwt_bearer_without_a_key_checks_claims_only(
    emu: PardotEmulator, other_private_key: str
) -> None:
    good = token_request(
        emu, grant_type=JWT_GRANT, assertion=_assertion(other_private_key, emu.url)
    )
    assert good.status_code == 200
    stale = _assertion(other_private_key, emu.url, exp=int(time.time()) - 1)
    assert token_request(emu, grant_type=JWT_GRANT, assertion=stale).status_code == 400
    hs256 = jwt.encode(
        {
            "iss": CREDS["client_id"],
            "sub": CREDS["username"],
            "aud": emu.url,
            "exp": int(time.time()) + 60,
        },
        "a-shared-secret-long-enough-for-hs256-keys",
        algorithm="HS256",
    )
    assert token_request(emu, grant_type=JWT_GRANT, assertion=hs256).status_code == 400
