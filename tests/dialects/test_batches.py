"""BatchWriter edges without HTTP: Pardot's per-item answers tied back to the right records."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from target_pardot.api.client import ApiResponse
from target_pardot.dialects.batches import (
    BatchWriter,
    WriteItem,
    expand_multi_values,
    write_resolving,
)
from target_pardot.errors import AmbiguousWriteError, PardotAPIError, TransientError
from target_pardot.matching import Group, Identity
from target_pardot.outcomes import Result
from target_pardot.settings import Settings

SETTINGS = Settings.from_config(
    {"business_unit_id": "0Uv000000000001AAA", "access_token": "t", "max_retries": 2}
)


class FakeClient:
    """Answers each batch call with the next scripted answer and records what was sent."""

    settings = SETTINGS

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.sent: list[Any] = []
        self.lost_before = False  # answers come from a retry after a lost answer
        self.pauses: list[str] = []  # the backoffs the writer asked for, by what failed

    def pause_before_retry(self, delay: float, *, failure: str) -> None:
        self.pauses.append(failure)

    def v34(self, object_name: str, operation: str, **kwargs: Any) -> ApiResponse:
        self.sent.append(json.loads(kwargs["params"]["prospects"])["prospects"])
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        return ApiResponse(
            status, body, f"v4.prospect.{operation}", after_lost_answer=self.lost_before
        )


def item(email: str, result: Result = Result.UPDATED, *, creates: bool = False) -> WriteItem:
    group = Group(Identity("email", email), [], email=email)
    return WriteItem(group, {"email": email}, result, key=email, creates=creates)


def writer(client: FakeClient, version: int = 4) -> BatchWriter:
    return BatchWriter(
        client,  # type: ignore[arg-type]
        version=version,
        executor=ThreadPoolExecutor(2),
    )


def ok(status: int = 200) -> tuple[int, dict[str, Any]]:
    return status, {"@attributes": {"stat": "ok"}, "errors": {}}


def test_v4_errors_are_keyed_by_position() -> None:
    client = FakeClient((200, {"errors": {"1": "Invalid prospect ID"}}))
    outcome = writer(client).write("batchUpsert", [item("a@x"), item("b@x"), item("c@x")])
    assert [i.key for i, _ in outcome.applied] == ["a@x", "c@x"]
    assert [(item.key, problem.code) for item, problem in outcome.failed] == [("b@x", 3)]


def test_v3_errors_are_keyed_by_the_object_key() -> None:
    client = FakeClient((200, {"errors": {"b@x": "Invalid prospect email address"}}))
    outcome = writer(client, version=3).write("batchUpsert", [item("a@x"), item("b@x")])
    assert client.sent == [{"a@x": {"email": "a@x"}, "b@x": {"email": "b@x"}}]
    assert [(item.key, problem.code) for item, problem in outcome.failed] == [("b@x", 4)]


def test_errors_that_came_back_as_a_list_still_match_positions() -> None:
    client = FakeClient((200, {"errors": [None, "Invalid prospect fid"]}))
    outcome = writer(client).write("batchUpsert", [item("a@x"), item("b@x")])
    assert [(item.key, problem.code) for item, problem in outcome.failed] == [("b@x", 77)]


def test_only_the_items_that_failed_transiently_are_sent_again() -> None:
    busy = "You have exceeded your concurrent request limit.  Please wait"
    client = FakeClient((200, {"errors": {"0": busy}}), ok())
    outcome = writer(client).write("batchUpsert", [item("a@x"), item("b@x")])
    assert [len(batch) for batch in client.sent] == [2, 1]
    assert client.sent[1] == [{"email": "a@x"}]
    assert sorted(i.key for i, _ in outcome.applied) == ["a@x", "b@x"]


def test_items_that_keep_failing_transiently_stop_the_run() -> None:
    busy = (200, {"errors": {"0": "You have exceeded your concurrent request limit"}})
    client = FakeClient(busy, busy, busy)
    outcome = writer(client).write("batchUpsert", [item("a@x")])
    assert isinstance(outcome.error, TransientError)
    assert outcome.applied == []
    assert len(client.pauses) == 2  # between the three rounds (max_retries 2)


def test_items_failing_transiently_back_off_through_the_client_which_a_stop_cuts_short() -> None:
    # The client's pause is where a stop signal ends a backoff and refuses the retry.
    class StoppedClient(FakeClient):
        def pause_before_retry(self, delay: float, *, failure: str) -> None:
            raise TransientError(f"{failure} and was not retried: the run was told to stop")

    busy = (200, {"errors": {"0": "You have exceeded your concurrent request limit"}})
    client = StoppedClient(busy)
    outcome = writer(client).write("batchUpsert", [item("a@x")])

    assert isinstance(outcome.error, TransientError)
    assert "1 items of a batchUpsert batch failed transiently" in str(outcome.error)
    assert len(client.sent) == 1


def test_what_other_calls_applied_is_kept_when_one_call_stops_the_run() -> None:
    quota = PardotAPIError(122, "Daily API rate limit met", status=200, endpoint="e")
    client = FakeClient(ok(), quota, ok())
    outcome = BatchWriter(
        client,  # type: ignore[arg-type]
        version=4,
        executor=ThreadPoolExecutor(1),  # calls in order: the second one fails
    ).write("batchUpsert", [item(f"{n}@x") for n in range(150)])
    assert outcome.error is quota
    assert len(outcome.applied) == 100


def test_more_than_50_items_go_out_in_calls_of_50() -> None:
    client = FakeClient(ok(), ok(), ok())
    writer(client).write("batchUpsert", [item(f"{n}@x") for n in range(120)])
    assert sorted(len(batch) for batch in client.sent) == [20, 50, 50]


def test_v3_upsert_answer_200_means_every_item_was_an_update() -> None:
    outcome = writer(FakeClient(ok(200)), version=3).write(
        "batchUpsert", [item("a@x", Result.UPSERTED), item("b@x", Result.UPSERTED)]
    )
    assert {result for _, result in outcome.applied} == {Result.UPDATED}


def test_v3_upsert_answer_201_for_one_item_means_it_was_created() -> None:
    outcome = writer(FakeClient(ok(201)), version=3).write(
        "batchUpsert", [item("a@x", Result.UPSERTED)]
    )
    assert [result for _, result in outcome.applied] == [Result.CREATED]


def test_creates_whose_answer_was_lost_go_back_to_the_caller_unsent() -> None:
    client = FakeClient(AmbiguousWriteError("v4.prospect.batchUpsert", "reset"))
    outcome = writer(client).write(
        "batchUpsert", [item("a@x", Result.CREATED, creates=True), item("b@x")]
    )
    assert [i.key for i in outcome.ambiguous] == ["a@x", "b@x"]
    assert (outcome.applied, outcome.error, len(client.sent)) == ([], None, 1)


def test_a_v3_upsert_retried_after_a_lost_answer_does_not_claim_to_know_it_updated() -> None:
    client = FakeClient(ok(200))
    client.lost_before = True
    outcome = writer(client, version=3).write("batchUpsert", [item("a@x", Result.UPSERTED)])
    assert [result for _, result in outcome.applied] == [Result.UPSERTED]


def test_a_record_error_on_a_single_item_batch_becomes_a_failure_not_a_crash() -> None:
    error = PardotAPIError(4, "Invalid prospect email address", status=400, endpoint="e")
    outcome = writer(FakeClient(error)).write("batchUpsert", [item("a@x")])
    assert [(item.key, problem.code) for item, problem in outcome.failed] == [("a@x", 4)]


def test_multi_value_fields_are_expanded_to_numbered_names() -> None:
    assert expand_multi_values({"tags": ["a", "b"], "city": "Oslo"}) == {
        "tags_0": "a",
        "tags_1": "b",
        "city": "Oslo",
    }


def test_an_empty_multi_value_list_is_sent_as_the_first_name_empty_which_clears_it() -> None:
    assert expand_multi_values({"tags": [], "city": ""}) == {"tags_0": "", "city": ""}


class ByOperationClient(FakeClient):
    """Answers each operation's calls from its own script (calls run in parallel)."""

    def __init__(self, **answers: list[Any]) -> None:
        super().__init__()
        self.scripts = answers
        self.calls: list[tuple[str, Any]] = []

    def v34(self, object_name: str, operation: str, **kwargs: Any) -> ApiResponse:
        self.calls.append((operation, json.loads(kwargs["params"]["prospects"])["prospects"]))
        answer = self.scripts[operation].pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        return ApiResponse(status, body, f"v4.prospect.{operation}")


def test_updates_by_id_go_to_their_own_operation_and_lost_creates_are_resent_with_theirs() -> None:
    # v4 upsert: batchUpsert would create a prospect for an id Pardot does not know.
    by_id = WriteItem(Group(Identity("id", "7"), []), {"id": "7"}, Result.UPDATED, prospect_id=7)
    create = item("new@x", Result.CREATED, creates=True)
    client = ByOperationClient(
        batchUpdate=[ok(200)],
        batchUpsert=[AmbiguousWriteError("v4.prospect.batchUpsert", "reset"), ok(201)],
    )

    outcome = write_resolving(
        writer(client),
        "batchUpsert",
        [by_id, create],
        resolve_lost=lambda lost: lost,  # Pardot made nothing: send the creates again
        max_rounds=2,
        by_id="batchUpdate",
    )

    assert sorted(client.calls, key=str) == [
        ("batchUpdate", [{"id": "7"}]),
        ("batchUpsert", [{"email": "new@x"}]),
        ("batchUpsert", [{"email": "new@x"}]),
    ]
    applied = {(i.prospect_id, r) for i, r in outcome.applied}
    assert applied == {(7, Result.UPDATED), (None, Result.CREATED)}
