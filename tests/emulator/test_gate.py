"""Checks every API request passes before its handler: auth, business unit, limits, faults."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import requests

from pardot_emulator import PardotEmulator

from .helpers import BU, TIMEOUT, Api, err_code, get_token


def test_missing_or_unknown_token_is_184(emu: PardotEmulator) -> None:
    url = f"{emu.url}/api/prospect/version/4/do/query"
    missing = requests.get(
        url, params={"format": "json"}, headers={"Pardot-Business-Unit-Id": BU}, timeout=TIMEOUT
    )
    assert missing.status_code == 401
    assert missing.json() == {
        "@attributes": {"stat": "fail", "version": 1, "err_code": 184},
        "err": "access_token is invalid, unknown, or malformed: Inactive token",
    }
    unknown = Api(emu, token="made-up")
    assert err_code(unknown.v34(4, "query")) == 184
    v5 = unknown.v5("GET", "prospects", params={"fields": "id"})
    assert v5.status_code == 401
    assert v5.json()["code"] == 184
    assert "message" in v5.json()


def test_business_unit_header(api: Api) -> None:
    api.business_unit = ""
    missing = api.v34(4, "query")
    assert (missing.status_code, err_code(missing)) == (400, 181)
    api.business_unit = "0Uv000000000009ZZZ"
    wrong = api.v34(4, "query")
    assert (wrong.status_code, err_code(wrong)) == (403, 201)
    assert wrong.json()["err"] == (
        "Business Unit specified in Pardot-Business-Unit-Id header not found or inactive."
    )
    v5 = api.v5("GET", "prospects", params={"fields": "id"})
    assert (v5.status_code, v5.json()["code"]) == (403, 201)


@pytest.mark.parametrize(
    "header",
    ["hello", "0Uv000000000001", "0Uv000000000001AAAA", "1Uv000000000001AAA", "0Uv000000000001-AA"],
)
def test_a_header_that_is_not_a_business_unit_id_is_refused_with_182(api: Api, header: str) -> None:
    api.business_unit = header
    v4 = api.v34(4, "query")
    assert (v4.status_code, err_code(v4)) == (400, 182)
    assert v4.json()["err"] == "Invalid Pardot-Business-Unit-Id header"
    v5 = api.v5("GET", "prospects", params={"fields": "id"})
    assert (v5.status_code, v5.json()["code"]) == (400, 182)


def test_an_invalid_business_unit_header_uses_no_quota(
    make_emulator: Callable[..., PardotEmulator],
) -> None:
    api = Api(make_emulator(daily_limit=1))
    api.business_unit = "hello"
    assert err_code(api.v34(4, "query")) == 182
    api.business_unit = BU
    assert api.v34(4, "query").status_code == 200


def test_api_version_must_match_the_ampsea_setting(api: Api, api3: Api) -> None:
    v3_on_ampsea = api.v34(3, "query")
    assert (v3_on_ampsea.status_code, err_code(v3_on_ampsea)) == (400, 88)
    assert v3_on_ampsea.json()["err"] == "Your account must use version 4 of the API."
    v4_on_unique = api3.v34(4, "query")
    assert (v4_on_unique.status_code, err_code(v4_on_unique)) == (400, 89)
    assert v4_on_unique.json()["err"] == "Your account is unable to use version 4 of the API."
    assert api.v34(4, "query").status_code == 200
    assert api3.v34(3, "query").status_code == 200
    for client in (api, api3):
        assert client.v5("GET", "prospects", params={"fields": "id"}).status_code == 200


def _burst(
    emu: PardotEmulator, token: str, count: int, v5: bool = False
) -> list[requests.Response]:
    api = Api(emu, token)
    barrier = threading.Barrier(count)
    results: list[requests.Response] = []
    lock = threading.Lock()

    def one() -> None:
        barrier.wait()
        if v5:
            response = api.v5("GET", "prospects", params={"fields": "id"})
        else:
            response = api.v34(4, "query")
        with lock:
            results.append(response)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrency_limit_refuses_the_requests_over_it(
    make_emulator: Callable[..., PardotEmulator],
) -> None:
    # Long enough that all requests overlap even on a loaded machine.
    emu = make_emulator(latency=1.5, concurrency_limit=5)
    token = get_token(emu)
    results = _burst(emu, token, 7)
    refused = [r for r in results if r.status_code != 200]
    assert len(refused) == 2
    for response in refused:
        assert (response.status_code, err_code(response)) == (400, 66)
    # The 5 held requests overlap, and each refused one overlapped them when it arrived.
    assert 6 <= emu.max_in_flight <= 7
    # Slots are released: the next request goes through.
    emu.latency = 0.0
    assert Api(emu, token).v34(4, "query").status_code == 200


def test_concurrency_limit_in_v5_is_429(make_emulator: Callable[..., PardotEmulator]) -> None:
    emu = make_emulator(latency=1.5, concurrency_limit=2)
    results = _burst(emu, get_token(emu), 3, v5=True)
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 200, 429]
    assert next(r for r in results if r.status_code == 429).json()["code"] == 66


def test_sequential_requests_never_count_as_concurrent(api: Api) -> None:
    for _ in range(5):
        assert api.v34(4, "query").status_code == 200
    assert api.emu.max_in_flight == 1


def test_daily_limit_then_reset(make_emulator: Callable[..., PardotEmulator]) -> None:
    emu = make_emulator(daily_limit=2)
    api = Api(emu)
    get_token(emu)  # token calls do not use the API quota
    assert api.v34(4, "query").status_code == 200
    assert api.v5("GET", "prospects", params={"fields": "id"}).status_code == 200
    over = api.v34(4, "query")
    assert (over.status_code, err_code(over)) == (400, 122)
    assert over.json()["err"] == "Daily API rate limit met"
    over5 = api.v5("GET", "prospects", params={"fields": "id"})
    assert (over5.status_code, over5.json()["code"]) == (429, 122)
    emu.reset_daily_usage()
    assert api.v34(4, "query").status_code == 200


def test_fail_every_answers_html_500_without_applying(
    make_emulator: Callable[..., PardotEmulator],
) -> None:
    emu = make_emulator(fail_every=3)
    api = Api(emu)
    statuses = []
    for n in range(6):
        response = api.v34(4, "create", "email", f"p{n}@example.com")
        statuses.append(response.status_code)
        if response.status_code == 500:
            assert "text/html" in response.headers["Content-Type"]
            with pytest.raises(ValueError):
                response.json()
    assert statuses == [201, 201, 500, 201, 201, 500]
    assert [p["email"] for p in emu.prospects()] == [
        "p0@example.com",
        "p1@example.com",
        "p3@example.com",
        "p4@example.com",
    ]
    assert emu.api_calls == 6
    emu.fail_every = None
    assert api.v34(4, "create", "email", "p6@example.com").status_code == 201


def test_drop_after_commit_applies_then_hangs_up(
    make_emulator: Callable[..., PardotEmulator],
) -> None:
    emu = make_emulator(drop_after_commit_every=2)
    api = Api(emu)
    assert api.v34(4, "create", "email", "first@example.com").status_code == 201
    with pytest.raises(requests.ConnectionError):
        api.v34(4, "create", "email", "second@example.com")
    assert [p["email"] for p in emu.prospects()] == ["first@example.com", "second@example.com"]
    emu.drop_after_commit_every = None
    assert api.v34(4, "create", "email", "third@example.com").status_code == 201


def test_queued_drops_hit_only_their_endpoint_and_apply_the_change(api: Api) -> None:
    emu = api.emu
    emu.queue_drop("v4.prospect.create", count=1)
    assert api.v34(4, "query").status_code == 200
    with pytest.raises(requests.ConnectionError):
        api.v34(4, "create", "email", "lost@example.com")
    assert api.v34(4, "create", "email", "kept@example.com").status_code == 201
    assert [p["email"] for p in emu.prospects()] == ["lost@example.com", "kept@example.com"]


def test_token_max_calls_expires_each_token(make_emulator: Callable[..., PardotEmulator]) -> None:
    emu = make_emulator(token_max_calls=2)
    api = Api(emu)
    assert api.v34(4, "query").status_code == 200
    assert api.v5("GET", "prospects", params={"fields": "id"}).status_code == 200
    expired = api.v34(4, "query")
    assert (expired.status_code, err_code(expired)) == (401, 184)
    assert Api(emu).v34(4, "query").status_code == 200


def test_queued_errors_match_endpoint_and_apply_nothing(api: Api) -> None:
    emu = api.emu
    emu.queue_error(85, endpoint="v4.prospect.create", count=2)
    assert api.v34(4, "query").status_code == 200  # other endpoints are unaffected
    for _ in range(2):
        response = api.v34(4, "create", "email", "q@example.com")
        assert (response.status_code, err_code(response)) == (400, 85)
        assert response.json()["err"] == "Unable to save the prospect"
    assert emu.prospects() == []
    assert api.v34(4, "create", "email", "q@example.com").status_code == 201


@pytest.mark.parametrize(
    ("code", "v34_status", "v5_status"),
    [
        (184, 401, 401),
        (201, 403, 403),
        (66, 400, 429),
        (122, 400, 429),
        (121, 400, 400),
        (62, 400, 400),
        (116, 400, 400),
        (120, 400, 400),
        (183, 400, 400),
        (214, 400, 400),
    ],
)
def test_queued_error_statuses(api: Api, code: int, v34_status: int, v5_status: int) -> None:
    api.emu.queue_error(code)
    response = api.v34(4, "query")
    assert (response.status_code, err_code(response)) == (v34_status, code)
    api.emu.queue_error(code)
    response = api.v5("GET", "prospects", params={"fields": "id"})
    assert (response.status_code, err_code(response)) == (v5_status, code)
    assert api.v34(4, "query").status_code == 200


def test_call_counts_and_stats(api: Api, api3: Api) -> None:
    emu = api.emu
    api.v34(4, "query")
    api.v34(4, "query", method="GET")
    api.v34(3, "batchUpsert", prospects="{}")  # fails with 88, still counted
    api.v34(4, "query", obj="customField")
    api.v5("GET", "prospects", params={"fields": "id"})
    api.v5("POST", "prospects", body={"email": "a@example.com"})
    api.v5("GET", "custom-fields", params={"fields": "id"})
    Api(emu, token="bad").v34(4, "read", "id", 1)
    assert emu.call_counts == {
        "oauth.token": 1,
        "v4.prospect.query": 2,
        "v3.prospect.batchUpsert": 1,
        "v4.customField.query": 1,
        "v5.prospects.query": 1,
        "v5.prospects.create": 1,
        "v5.customFields.query": 1,
        "v4.prospect.read": 1,
    }
    assert emu.api_calls == 8
    assert emu.token_calls == 1
    stats = requests.get(f"{emu.url}/_emulator/stats", timeout=TIMEOUT).json()
    assert stats == {
        "call_counts": emu.call_counts,
        "api_calls": 8,
        "token_calls": 1,
        "max_in_flight": 1,
    }
    assert emu.api_calls == 8  # the control plane is not counted


def test_xml_is_the_default_format(api: Api) -> None:
    response = api.v34(4, "query", fmt=None)
    assert response.status_code == 200
    assert "xml" in response.headers["Content-Type"]
    assert response.text.startswith("<?xml")
    assert '<rsp stat="ok"' in response.text
    failed = api.v34(4, "read", "id", 999, fmt=None)
    assert failed.status_code == 400
    assert '<err code="3">Invalid prospect ID</err>' in failed.text


def test_unknown_operation_is_invalid_action(api: Api) -> None:
    response = api.v34(4, "explode")
    assert (response.status_code, err_code(response)) == (400, 2)
    assert api.emu.call_counts["v4.prospect.explode"] == 1
