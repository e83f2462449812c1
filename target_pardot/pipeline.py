"""Writing batches in the background while the next ones are read and prepared.

The SDK hands a sink's records over one batch at a time, from the thread that reads the input,
and reads nothing more until `process_batch` returns. Waiting there for a batch's Pardot calls
(10 calls of 50 for 500 records, `max_concurrency` at a time) leaves the workers idle while the
next batch is read, prepared and matched, and idle again at the end of each batch while its
last calls finish. So a planned batch is handed over here instead: it runs on a thread of its
own (its calls queue behind the earlier batches' in the run's worker pool, which keeps
`max_concurrency` calls in flight as long as work is queued), and `process_batch` returns to
read the next one.

What makes this safe:

- Bounded: at most `capacity` records, or two batches if that is more, are handed over and
  not yet applied; `submit` waits for room. Memory stays bounded whatever the input's size.
- Order per prospect: each batch holds its identities, emails and the prospect ids its plan
  writes (its `keys`) until it is done, and `wait_for` keeps the next batch from matching (by
  identity or email) or writing (by prospect id) a prospect that an earlier batch is still
  writing: it could otherwise create it twice, or write older values last. The run hands a
  batch over in layers (matching.first_layer) for the same reason within a batch.
- STATE: the SDK relays STATE only after it drained every sink; the sink then waits here
  (`drain`) until everything handed over was applied, so STATE never gets ahead of Pardot.
- Failures: the first error of a batch in the background is raised at the next hand-over or
  drain, after every batch still running has finished, so the run's counts are complete
  when it reports why it stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable

from target_pardot.errors import stopping_error

# The reading (main) thread waits here for the background batches. A stop signal may be
# delivered to any thread, and Python runs its handler in the main thread only once that
# thread runs again: waits are bounded so the handler runs within this time, even while a
# batch's calls are failing and backing off.
_SIGNAL_POLL_SECONDS = 0.25


class Pipeline:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._changed = threading.Condition()
        self._records = 0  # handed over, not finished
        self._batches = 0
        self._held: dict[Hashable, int] = {}  # key -> batches holding it
        # Keys of the batches that finished since `watch`: what the reading thread found
        # meanwhile may be out of date for them.
        self._released: set[Hashable] = set()
        self._error: BaseException | None = None

    @property
    def busy(self) -> bool:
        """Work handed over is unfinished, or a failure is waiting to be raised."""
        with self._changed:
            return self._batches > 0 or self._error is not None

    def submit(self, size: int, keys: Iterable[Hashable], work: Callable[[], None]) -> None:
        """Run `work` in the background once there is room; raise an earlier failure instead."""
        held = list(keys)
        with self._changed:
            while self._no_room_for(size):
                self._changed.wait(_SIGNAL_POLL_SECONDS)
            self._raise_failure()
            self._records += size
            self._batches += 1
            for key in held:
                self._held[key] = self._held.get(key, 0) + 1
        thread = threading.Thread(
            target=self._run, args=(size, held, work), name="pardot-batch", daemon=True
        )
        thread.start()

    def wait_for_room(self, size: int) -> None:
        """Until `submit` would take `size` records at once (or a failure waits to be raised:
        submit raises it). Called before reading a large batch, so that it is not read and
        prepared only to wait in memory behind the batches being written."""
        with self._changed:
            while self._no_room_for(size):
                self._changed.wait(_SIGNAL_POLL_SECONDS)

    def _no_room_for(self, size: int) -> bool:
        # Called holding the condition. Room for two batches of this size at least, so that
        # one is written while the next waits ready behind it.
        limit = max(self.capacity, 2 * size)
        return self._error is None and self._batches > 0 and self._records + size > limit

    def watch(self) -> None:
        """Note, from now on, the keys of the batches that finish (see `wait_for`)."""
        with self._changed:
            self._released = set()

    def wait_for(self, keys: Iterable[Hashable]) -> bool:
        """Until no batch in the background holds any of these keys.

        Whether a batch holding one of them finished since `watch`: what was read of those
        prospects since then may be from before that batch wrote them.
        """
        wanted = list(keys)
        with self._changed:
            while self._error is None and self._held and any(k in self._held for k in wanted):
                self._changed.wait(_SIGNAL_POLL_SECONDS)
            self._raise_failure()
            released = self._released
            return bool(released) and any(key in released for key in wanted)

    def drain(self) -> None:
        """Until everything handed over is applied; raises the first failure, if any."""
        with self._changed:
            while self._batches:
                self._changed.wait(_SIGNAL_POLL_SECONDS)
            self._raise_failure()

    def settle(self) -> None:
        """Until nothing runs in the background, without raising: the run is ending anyway."""
        with self._changed:
            while self._batches:
                self._changed.wait(_SIGNAL_POLL_SECONDS)

    def _run(self, size: int, keys: list[Hashable], work: Callable[[], None]) -> None:
        error: BaseException | None = None
        try:
            work()
        except BaseException as exc:  # raised in the reading thread, see _raise_failure
            error = exc
        with self._changed:
            # The failure that stopped the run, not a call it halted (PardotClient.halt).
            self._error = stopping_error((self._error, error))
            self._records -= size
            self._batches -= 1
            self._released.update(keys)
            for key in keys:
                left = self._held[key] - 1
                if left:
                    self._held[key] = left
                else:
                    del self._held[key]
            self._changed.notify_all()

    def _raise_failure(self) -> None:
        # Called holding the condition.
        if self._error is None:
            return
        while self._batches:
            self._changed.wait(_SIGNAL_POLL_SECONDS)
        raise self._error
