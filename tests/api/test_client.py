"""The client: concurrency cap, retries, token refresh and ambiguity, against the emulator."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pardot_emulator import DEFAULT_CREDENTIALS, PardotEmulator
from target_pardot.api.client import PardotClient
from target_pardot.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    ConfigurationError,
    PardotAPIError,
    QuotaExceededError,
    RunStopping,
    TransientError,
)
from target_pardot.settings import Settings


def client(
    emulator: PardotEmulator, sleeps: list[float] | None = None, **overrides: Any
) -> PardotClient:
    config = {
        "business_unit_id": DEFAULT_CREDENTIALS["business_unit_id"],
        "client_id": DEFAULT_CREDENTIALS["client_id"],
        "client_secret": DEFAULT_CREDENTIALS["client_secret"],
        "refresh_token": DEFAULT_CREDENTIALS["refresh_token"],
        "login_url": emulator.url,
        "pardot_url": emulator.url,
        **overrides,
    }
    recorded = sleeps if sleeps is not None else []
    return PardotClient(Settings.from_config(config), sleep=recorded.append, backoff_factor=0.01)


def read(pardot: PardotClient, email: str = "a@x.com") -> Any:
    return pardot.v34("prospect", "read", version=4, ident=("email", email))


def create_batch(pardot: PardotClient, emails: list[str], *, idempotent: bool) -> Any:
    body = json.dumps({"prospects": [{"email": email} for email in emails]})
    return pardot.v34(
        "prospect", "batchUpsert", version=4, params={"prospects": body}, idempotent=idempotent
    )


def test_calls_carry_the_token_and_business_unit_and_answers_are_decoded(
    emulator: PardotEmulator,
) -> None:
    emulator.add_prospect(email="a@x.com", first_name="Ann")
    answer = read(client(emulator))
    assert answer.status == 200
    assert answer.body["prospect"]["first_name"] == "Ann"


def test_never_more_calls_in_flight_than_max_concurrency(make_emulator: Any) -> None:
    emulator = make_emulator(latency=0.05, concurrency_limit=5)
    emulator.add_prospect(email="a@x.com")
    pardot = client(emulator, max_concurrency=3)
    with ThreadPoolExecutor(12) as pool:
        list(pool.map(lambda _: read(pardot), range(24)))
    assert emulator.max_in_flight == 3
    assert emulator.call_counts["v4.prospect.read"] == 24


@pytest.mark.parametrize("code", [66, 62, 85, 116, 120, 121, 183, 214])
def test_transient_codes_are_retried_with_backoff(emulator: PardotEmulator, code: int) -> None:
    emulator.add_prospect(email="a@x.com")
    emulator.queue_error(code, count=2)
    sleeps: list[float] = []
    assert read(client(emulator, sleeps)).status == 200
    assert len(sleeps) == 2
    assert emulator.call_counts["v4.prospect.read"] == 3


def test_retries_are_bounded_and_the_error_says_what_kept_failing(make_emulator: Any) -> None:
    emulator = make_emulator(fail_every=1)
    with pytest.raises(TransientError, match=r"after 3 attempts.*HTTP 500"):
        read(client(emulator, max_retries=2))
    assert emulator.api_calls == 3


def test_a_failure_that_stops_the_run_halts_the_calls_still_to_be_made(
    make_emulator: Any,
) -> None:
    emulator = make_emulator(fail_every=1)
    pardot = client(emulator, max_retries=1)
    pardot.halt_on_failure = True
    with pytest.raises(TransientError):
        read(pardot)
    with pytest.raises(RunStopping, match=r"not sent: the run is stopping \(.*still failing"):
        read(pardot)
    assert emulator.api_calls == 2  # the second call was never sent


def test_a_client_told_to_stop_retrying_gives_up_after_one_failure(make_emulator: Any) -> None:
    emulator = make_emulator(fail_every=1)
    pardot = client(emulator, max_retries=6)
    pardot.stop_retrying()
    with pytest.raises(TransientError, match=r"HTTP 500.*not retried: the run was told to stop"):
        read(pardot)
    assert emulator.api_calls == 1


def test_stop_retrying_cuts_a_backoff_short_and_refuses_the_retry() -> None:
    pardot = PardotClient(
        Settings.from_config(
            {"business_unit_id": DEFAULT_CREDENTIALS["business_unit_id"], "access_token": "t"}
        )
    )  # the default pause: an interruptible wait
    threading.Timer(0.2, pardot.stop_retrying).start()
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"^items failed and was not retried"):
        pardot.pause_before_retry(60, failure="items failed")
    assert time.monotonic() - started < 5


def test_an_idempotent_write_is_retried_after_a_lost_answer(make_emulator: Any) -> None:
    emulator = make_emulator(drop_after_commit_every=1)
    emulator.add_prospect(email="a@x.com")
    pardot = client(emulator)
    emulator.drop_after_commit_every = None
    emulator.queue_error(121)
    assert read(pardot).status == 200


def test_a_create_whose_answer_was_lost_is_not_sent_again(make_emulator: Any) -> None:
    emulator = make_emulator(drop_after_commit_every=1)
    with pytest.raises(AmbiguousWriteError):
        create_batch(client(emulator), ["new@x.com"], idempotent=False)
    assert [p["email"] for p in emulator.prospects()] == ["new@x.com"]
    assert emulator.call_counts["v4.prospect.batchUpsert"] == 1


def test_an_expired_token_is_refreshed_once_and_the_call_retried(make_emulator: Any) -> None:
    emulator = make_emulator(token_max_calls=2)
    emulator.add_prospect(email="a@x.com")
    pardot = client(emulator)
    for _ in range(5):
        assert read(pardot).status == 200
    assert emulator.token_calls == 3


def test_a_second_184_for_the_same_call_is_fatal(emulator: PardotEmulator) -> None:
    emulator.queue_error(184, count=2)
    with pytest.raises(AuthenticationError, match="freshly issued"):
        read(client(emulator))


def test_a_rejected_static_token_stops_with_a_clear_message(emulator: PardotEmulator) -> None:
    with pytest.raises(AuthenticationError, match="access_token setting"):
        read(client(emulator, access_token="stale-token"))


def test_daily_quota_is_not_retried(make_emulator: Any) -> None:
    emulator = make_emulator(daily_limit=1)
    emulator.add_prospect(email="a@x.com")
    pardot = client(emulator)
    read(pardot)
    with pytest.raises(QuotaExceededError):
        read(pardot)
    assert emulator.api_calls == 2


def test_wrong_business_unit_names_the_setting_to_fix(emulator: PardotEmulator) -> None:
    with pytest.raises(ConfigurationError, match="business_unit_id") as error:
        read(client(emulator, business_unit_id="0Uv000000000009ZZZ"))
    assert error.value.code == 201


def test_record_level_errors_come_back_with_their_code(emulator: PardotEmulator) -> None:
    with pytest.raises(PardotAPIError) as error:
        read(client(emulator), "nobody@x.com")
    assert error.value.code == 4


def test_retry_after_is_honoured(emulator: PardotEmulator, monkeypatch: Any) -> None:
    from target_pardot.api import client as client_module

    emulator.add_prospect(email="a@x.com")
    emulator.queue_error(66)
    monkeypatch.setattr(client_module, "_retry_after", lambda value: 7.0)
    sleeps: list[float] = []
    read(client(emulator, sleeps))
    assert sleeps == [7.0]


def test_unreachable_pardot_is_retried_then_reported_without_the_url(
    emulator: PardotEmulator,
) -> None:
    pardot = client(emulator, max_retries=1)
    pardot.authenticate()
    emulator.stop()
    with pytest.raises(TransientError) as error:
        read(pardot, "secret.person@x.com")
    assert "secret.person" not in str(error.value)


class _ProxyPage(BaseHTTPRequestHandler):
    """Answers HTTP 200 with an HTML page (a captive proxy or maintenance page) `bad` times."""

    bad = 1
    calls = 0

    def do_POST(self) -> None:
        type(self).calls += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if type(self).calls <= type(self).bad:
            body, content_type = b"<html>maintenance</html>", "text/html"
        else:
            body = json.dumps({"@attributes": {"stat": "ok", "version": 1}}).encode()
            content_type = "application/json"
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def proxy_page() -> Any:
    _ProxyPage.calls = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ProxyPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def stub_client(url: str) -> PardotClient:
    settings = Settings.from_config(
        {"business_unit_id": "0Uv000000000001AAA", "access_token": "t", "pardot_url": url}
    )
    return PardotClient(settings, sleep=lambda _: None, backoff_factor=0.01)


def test_a_2xx_that_is_not_a_pardot_answer_is_retried(proxy_page: str) -> None:
    assert stub_client(proxy_page).v34("prospect", "query", version=4).status == 200
    assert _ProxyPage.calls == 2


def test_a_2xx_that_is_not_a_pardot_answer_to_a_create_is_ambiguous(proxy_page: str) -> None:
    with pytest.raises(AmbiguousWriteError, match="without a Pardot answer"):
        stub_client(proxy_page).v34("prospect", "batchUpsert", version=4, idempotent=False)
    assert _ProxyPage.calls == 1


def test_form_bodies_are_what_urlencode_makes() -> None:
    from urllib.parse import urlencode

    from target_pardot.api.client import form_encode

    form = {
        "prospects": '{"a+b@x.com":{"first_name":"Zoë Ünal","notes":"50% off & more ~ ok/no?"}}',
        "limit": 200,
        "fields": "id,email,updated_at",
        "odd key=&": "tab\there\nnew line",
        "already %2B quoted + plus": "100%% ~ 5 % 3",
        "bytes": "\x00\x7f\xff\u20ac\U0001f600",
    }
    assert form_encode(form) == urlencode(form).encode("ascii")
    assert form_encode({}) == b""


def test_a_netrc_entry_for_the_pardot_host_does_not_replace_the_bearer_token(
    emulator: PardotEmulator, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests sends ~/.netrc credentials as Basic auth for any call made without `auth`,
    # overwriting an Authorization header given by hand; Pardot would then refuse every call.
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password not-a-pardot-token\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    emulator.add_prospect(email="a@x.com")
    assert read(client(emulator)).status == 200


# -- the v4 Import API ----------------------------------------------------------------------


def v4_batch(pardot: PardotClient, import_id: int, csv: bytes, **options: Any) -> Any:
    return pardot.v4_import(
        "POST",
        "batch",
        import_id=import_id,
        files={"importFile": ("batch-2.csv", csv, "text/csv")},
        idempotent=False,
        **options,
    )


def test_v4_import_calls_take_json_and_multipart_and_an_empty_204(
    emulator: PardotEmulator,
) -> None:
    pardot = client(emulator)
    created = pardot.v4_import(
        "POST", "create", json={"operation": "Upsert", "object": "Prospect"}, idempotent=False
    )
    assert (created.status, created.body["state"]) == (200, "Open")
    import_id = created.body["id"]
    added = v4_batch(pardot, import_id, b"prospect_id,city\r\n1,Oslo\r\n", no_content=True)
    assert (added.status, added.body) == (204, {})
    read = pardot.v4_import("GET", "read", import_id=import_id)
    assert read.body["state"] == "Open"
    assert {name: n for name, n in emulator.call_counts.items() if "import" in name} == {
        "v4.import.create": 1,
        "v4.import.batch": 1,
        "v4.import.read": 1,
    }


def test_an_empty_204_is_an_answer_only_where_the_caller_expects_one(
    emulator: PardotEmulator,
) -> None:
    pardot = client(emulator)
    import_id = pardot.v4_import(
        "POST", "create", json={"operation": "Upsert", "object": "Prospect"}, idempotent=False
    ).body["id"]
    # Elsewhere an empty 2xx is no Pardot answer: a write that got one may have been applied.
    with pytest.raises(AmbiguousWriteError, match="HTTP 204 without a Pardot answer"):
        v4_batch(pardot, import_id, b"prospect_id,city\r\n1,Oslo\r\n")
    assert emulator.call_counts["v4.import.batch"] == 1


def test_v4_import_errors_and_lost_answers(emulator: PardotEmulator) -> None:
    pardot = client(emulator)
    import_id = pardot.v4_import(
        "POST", "create", json={"operation": "Upsert", "object": "Prospect"}, idempotent=False
    ).body["id"]
    with pytest.raises(PardotAPIError) as refused:
        v4_batch(pardot, import_id, b"prospect_id,colour\r\n1,red\r\n", no_content=True)
    assert (refused.value.code, refused.value.status) == (180, 400)
    assert "colour" in refused.value.message
    emulator.queue_drop("v4.import.batch")
    with pytest.raises(AmbiguousWriteError):
        v4_batch(pardot, import_id, b"prospect_id,city\r\n1,Oslo\r\n", no_content=True)
    assert emulator.call_counts["v4.import.batch"] == 2  # the lost one was not sent again
    emulator.queue_error(121, "v4.import.read")  # transient: retried
    assert pardot.v4_import("GET", "read", import_id=import_id).body["id"] == import_id
