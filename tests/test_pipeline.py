"""The pipeline: batches written in the background, bounded, in order per prospect, failures
raised at the next hand-over or drain once everything running has finished."""

from __future__ import annotations

import threading
import time

import pytest

from target_pardot.pipeline import Pipeline


class Gate:
    """Work that runs until the test opens it."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.opened = threading.Event()
        self.done = threading.Event()

    def __call__(self) -> None:
        self.started.set()
        assert self.opened.wait(10)
        self.done.set()


def blocked(action: object) -> threading.Thread:
    """Start `action` in a thread; the caller checks it is still waiting."""
    thread = threading.Thread(target=action, daemon=True)  # type: ignore[arg-type]
    thread.start()
    time.sleep(0.05)
    return thread


def test_a_batch_runs_in_the_background_and_drain_waits_for_it() -> None:
    pipeline = Pipeline(capacity=100)
    gate = Gate()
    pipeline.submit(10, ["a"], gate)
    assert gate.started.wait(5)
    assert pipeline.busy
    drain = blocked(pipeline.drain)
    assert drain.is_alive()
    gate.opened.set()
    drain.join(5)
    assert not drain.is_alive() and gate.done.is_set()
    assert not pipeline.busy


def test_a_hand_over_waits_for_room() -> None:
    pipeline = Pipeline(capacity=20)
    first, second, third = Gate(), Gate(), Gate()
    pipeline.submit(10, [], first)
    pipeline.submit(10, [], second)
    submit = blocked(lambda: pipeline.submit(10, [], third))
    assert submit.is_alive() and not third.started.is_set()
    first.opened.set()
    submit.join(5)
    assert third.started.wait(5)
    second.opened.set()
    third.opened.set()
    pipeline.drain()


def test_a_large_batch_is_read_only_once_there_is_room_to_hand_it_over() -> None:
    # Two imports under way: the sink waits before reading a third batch of 50,000, rather
    # than holding it prepared in memory until one of them is done.
    pipeline = Pipeline(capacity=20)
    first, second = Gate(), Gate()
    pipeline.submit(50, [], first)
    pipeline.submit(50, [], second)
    waiting = blocked(lambda: pipeline.wait_for_room(50))
    assert waiting.is_alive()
    first.opened.set()
    waiting.join(5)
    assert not waiting.is_alive()
    pipeline.wait_for_room(50)  # one batch under way: room for the next at once
    second.opened.set()
    pipeline.drain()


def test_waiting_for_room_leaves_a_failure_to_the_hand_over_that_follows() -> None:
    pipeline = Pipeline(capacity=20)
    may_fail = threading.Event()

    def fail() -> None:
        assert may_fail.wait(10)
        raise RuntimeError("pardot said no")

    blocker = Gate()
    pipeline.submit(50, [], fail)
    pipeline.submit(50, [], blocker)
    outcome: list[BaseException | None] = []

    def wait() -> None:
        try:
            pipeline.wait_for_room(50)
        except BaseException as error:
            outcome.append(error)
        else:
            outcome.append(None)

    waiting = blocked(wait)
    assert waiting.is_alive()
    may_fail.set()
    waiting.join(5)
    assert outcome == [None]  # the failure ends the wait without raising in it
    blocker.opened.set()
    with pytest.raises(RuntimeError, match="pardot said no"):
        pipeline.submit(50, [], Gate())


def test_two_batches_of_any_size_fit_whatever_the_capacity() -> None:
    pipeline = Pipeline(capacity=1)
    first, second = Gate(), Gate()
    pipeline.submit(500, [], first)
    pipeline.submit(500, [], second)  # does not block
    assert first.started.wait(5) and second.started.wait(5)
    first.opened.set()
    second.opened.set()
    pipeline.drain()


def test_a_prospect_still_being_written_is_waited_for() -> None:
    pipeline = Pipeline(capacity=100)
    gate = Gate()
    pipeline.submit(1, ["ann@x.com", "id 7"], gate)
    pipeline.watch()
    assert pipeline.wait_for(["bob@x.com"]) is False  # another prospect: no wait
    waited: list[bool] = []
    waiting = blocked(lambda: waited.append(pipeline.wait_for(["id 7"])))
    assert waiting.is_alive()
    gate.opened.set()
    waiting.join(5)
    assert not waiting.is_alive()
    # The run finds again what it found while that batch was still writing.
    assert waited == [True]


def test_a_prospect_written_since_watch_is_told_even_when_no_wait_was_needed() -> None:
    """The reading thread finds a batch's prospects, then waits for the batches writing them.
    A batch that finished between the two wrote after the finding: it must be told too."""
    pipeline = Pipeline(capacity=100)
    before = Gate()
    pipeline.submit(1, [7], before)
    before.opened.set()
    pipeline.drain()
    pipeline.watch()  # finished before: what is found now is up to date
    assert pipeline.wait_for([7]) is False
    during = Gate()
    pipeline.submit(1, [8], during)
    pipeline.watch()
    during.opened.set()  # finishes while the reading thread finds
    pipeline.drain()
    assert pipeline.wait_for([8]) is True
    assert pipeline.wait_for([9]) is False


def test_a_failure_is_raised_at_the_next_hand_over_after_the_others_finished() -> None:
    pipeline = Pipeline(capacity=100)
    slow = Gate()
    pipeline.submit(1, [], slow)

    def fail() -> None:
        raise RuntimeError("quota")

    pipeline.submit(1, [], fail)
    assert slow.started.wait(5)
    outcome: list[BaseException] = []

    def hand_over() -> None:
        try:
            pipeline.submit(1, [], lambda: None)
        except RuntimeError as error:
            outcome.append(error)

    time.sleep(0.05)
    thread = blocked(hand_over)
    assert thread.is_alive()  # the slow batch is still being written
    slow.opened.set()
    thread.join(5)
    assert [str(error) for error in outcome] == ["quota"]
    assert pipeline.busy  # the failure is still there for the drain before STATE
    with pytest.raises(RuntimeError, match="quota"):
        pipeline.drain()
    pipeline.settle()  # never raises


def test_a_failure_stops_waits_for_prospects() -> None:
    pipeline = Pipeline(capacity=100)

    def fail() -> None:
        raise RuntimeError("stop")

    pipeline.submit(1, ["a"], fail)
    with pytest.raises(RuntimeError, match="stop"):
        pipeline.wait_for(["a"])
