"""The finder: read by email, scan, and auto choosing between them by cost."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from target_pardot.finder import Candidate, ProspectFinder
from target_pardot.matching import Group, Identity
from target_pardot.outcomes import RejectFile, RunReport


class FakeSource:
    page_size = 2

    def __init__(self, prospects: list[Candidate]) -> None:
        self.prospects = prospects
        self.reads: list[str] = []
        self.pages = 0

    def read_by_email(self, email: str) -> list[Candidate]:
        self.reads.append(email)
        return [p for p in self.prospects if (p.email or "").lower() == email.lower()]

    def scan(self) -> Iterator[tuple[int | None, list[Candidate]]]:
        for start in range(0, len(self.prospects), self.page_size):
            self.pages += 1
            yield len(self.prospects), self.prospects[start : start + self.page_size]


PROSPECTS = [
    Candidate(1, "ann@x.com", "org-1", "2024-01-01 00:00:00"),
    Candidate(2, "ann@x.com", None, "2024-06-01 00:00:00"),
    Candidate(3, "bob@x.com", "org-2", "2024-01-01 00:00:00"),
    Candidate(4, "new-bob@x.com", "org-3", "2024-01-01 00:00:00"),
    Candidate(5, "eve@x.com", None, "2023-01-01 00:00:00"),
    Candidate(6, "eve@x.com", None, "2025-01-01 00:00:00"),
]


@pytest.fixture
def report(tmp_path: Path) -> RunReport:
    return RunReport(RejectFile(str(tmp_path / "r.jsonl")), 1)


class FakeClock:
    """Time that passes only when the finder pauses: waits cost the tests nothing."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []
        self.on_pause: list[Any] = []  # callables run at each pause: Pardot catching up

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds
        for event in self.on_pause:
            event(self.now)

    def monotonic(self) -> float:
        return self.now


def finder(
    source: FakeSource, strategy: str, report: RunReport, clock: FakeClock | None = None
) -> ProspectFinder:
    clock = clock or FakeClock()
    return ProspectFinder(
        source,
        lookup_field="org_id",
        strategy=strategy,
        report=report,
        executor=ThreadPoolExecutor(2),
        pause=clock.pause,
        monotonic=clock.monotonic,
    )


def lookup(value: str, email: str | None) -> Group:
    return Group(Identity("lookup", value), [], email=email, lookup_value=value)


def by_email(email: str) -> Group:
    return Group(Identity("email", email.lower()), [], email=email)


@pytest.mark.parametrize("strategy", ["read", "scan", "auto"])
def test_every_strategy_finds_the_same_prospects(strategy: str, report: RunReport) -> None:
    found = finder(FakeSource(PROSPECTS), strategy, report).find(
        [lookup("org-1", "ann@x.com"), lookup("org-9", "ann@x.com"), by_email("eve@x.com")]
    )
    assert found == {
        Identity("lookup", "org-1"): 1,
        Identity("lookup", "org-9"): None,
        Identity("email", "eve@x.com"): 6,  # the most recently updated of the two
    }


def test_read_costs_one_call_per_distinct_email(report: RunReport) -> None:
    source = FakeSource(PROSPECTS)
    finder(source, "read", report).find([lookup("org-1", "ann@x.com"), by_email("ANN@x.com")])
    assert source.reads == ["ann@x.com"]
    assert source.pages == 0


def test_scan_finds_a_prospect_whose_email_changed(report: RunReport) -> None:
    source = FakeSource(PROSPECTS)
    found = finder(source, "scan", report).find([lookup("org-3", "newest-bob@x.com")])
    assert found[Identity("lookup", "org-3")] == 4
    assert source.reads == []
    assert source.pages == 3


def test_auto_reads_while_reads_are_cheaper_than_the_rest_of_the_scan(report: RunReport) -> None:
    source = FakeSource(PROSPECTS)
    auto = finder(source, "auto", report)
    auto.find([lookup("org-1", "ann@x.com")])  # 1 read < 2 pages left
    assert (source.pages, len(source.reads)) == (1, 1)
    auto.find([lookup("org-2", "bob@x.com"), lookup("org-3", "new-bob@x.com")])  # 1 + 2 > 2
    assert (source.pages, len(source.reads)) == (3, 1)


def test_a_prospect_created_this_run_is_found_by_its_creation_email(report: RunReport) -> None:
    source = FakeSource([])
    scan = finder(source, "scan", report)
    group = lookup("org-7", "kim@x.com")
    scan.remember_created(group)
    source.prospects.append(Candidate(9, "kim@x.com", "org-7", "2026-01-01 00:00:00"))
    assert scan.find([lookup("org-7", "kim@x.com")])[Identity("lookup", "org-7")] == 9
    assert source.reads == ["kim@x.com"]


@pytest.mark.parametrize("strategy", ["read", "scan"])
def test_prospects_with_the_email_but_an_empty_lookup_field_are_found_latest_first(
    strategy: str, report: RunReport
) -> None:
    found = finder(FakeSource(PROSPECTS), strategy, report).find(
        [lookup("org-5", "eve@x.com"), lookup("org-1", "ann@x.com")]
    )
    assert found == {Identity("lookup", "org-5"): None, Identity("lookup", "org-1"): 1}
    # What the plan may claim (on_empty_lookup): only for the value no prospect has.
    assert found.empty_lookup == {Identity("lookup", "org-5"): [6, 5]}


@pytest.mark.parametrize("strategy", ["read", "scan"])
def test_a_prospect_this_run_gave_a_lookup_value_is_not_offered_again(
    strategy: str, report: RunReport
) -> None:
    # Reads may lag writes: the claimed prospect can still read back with the field empty.
    search = finder(FakeSource(PROSPECTS), strategy, report)
    search.find([lookup("org-5", "eve@x.com")])
    search.remember_updated(6, lookup("org-5", "eve@x.com"))
    found = search.find([lookup("org-6", "eve@x.com")])
    assert found.empty_lookup == {Identity("lookup", "org-6"): [5]}


def scanned(report: RunReport, prospects: list[Candidate]) -> ProspectFinder:
    """A finder whose scan of `prospects` has ended, so updates are kept in its index."""
    scan = finder(FakeSource(prospects), "scan", report)
    scan.finish_scan()
    return scan


def test_an_update_moves_the_prospect_to_its_new_email_and_lookup(report: RunReport) -> None:
    scan = scanned(report, list(PROSPECTS))
    scan.remember_updated(3, lookup("org-22", "robert@x.com"))
    found = scan.find(
        [
            lookup("org-2", "bob@x.com"),
            lookup("org-22", "robert@x.com"),
            by_email("bob@x.com"),
            by_email("Robert@x.com"),
        ]
    )
    assert found == {
        Identity("lookup", "org-2"): None,
        Identity("lookup", "org-22"): 3,
        Identity("email", "bob@x.com"): None,
        Identity("email", "robert@x.com"): 3,
    }


def test_an_update_made_while_the_scan_is_under_way_is_in_the_index_when_it_ends(
    report: RunReport,
) -> None:
    """auto reads a few pages, then a batch writes prospect 1 (on a page already read) while
    the scan is not complete; the page that held it is not read again."""
    source = FakeSource(list(PROSPECTS))
    auto = finder(source, "auto", report)
    auto.find([lookup("org-1", "ann@x.com")])  # one page read, then a read: cheaper
    assert source.pages == 1
    auto.remember_updated(1, lookup("org-11", "annie@x.com"))
    source.prospects[0] = Candidate(1, "annie@x.com", "org-11", "2026-01-01 00:00:00")
    auto.finish_scan()
    found = auto.find(
        [lookup("org-1", "ann@x.com"), lookup("org-11", "annie@x.com"), by_email("ann@x.com")]
    )
    assert found == {
        Identity("lookup", "org-1"): None,
        Identity("lookup", "org-11"): 1,
        Identity("email", "ann@x.com"): 2,
    }


def test_a_page_read_while_a_write_was_in_flight_does_not_undo_the_write(
    report: RunReport,
) -> None:
    """The last page, holding prospect 5, was answered before the batch writing it was
    applied, and reaches the index after the write's answer: what the write left stands."""
    source = FakeSource(list(PROSPECTS))  # still what prospect 5 was before the write
    auto = finder(source, "auto", report)
    auto.find([lookup("org-2", "bob@x.com")])  # one page, then a read: the scan has begun
    assert source.pages == 1
    auto.remember_updated(5, lookup("org-5", "eve5@x.com"))
    auto.finish_scan()
    found = auto.find([lookup("org-5", "eve5@x.com"), by_email("eve@x.com")])
    assert found == {Identity("lookup", "org-5"): 5, Identity("email", "eve@x.com"): 6}


def test_after_a_v4_write_by_fid_finds_of_its_email_read_again(report: RunReport) -> None:
    """The write's answer names no prospect: the index cannot know that prospect 2 now holds
    org-20, so a lookup record of that email is read, not taken from the index."""
    source = FakeSource(list(PROSPECTS))
    scan = finder(source, "scan", report)
    scan.finish_scan()
    written_by_fid = Group(Identity("fid", "00Q2"), [], email="Ann@x.com", lookup_value="org-20")
    scan.remember_written_by_fid(written_by_fid)
    source.prospects[1] = Candidate(2, "ann@x.com", "org-20", "2026-01-01 00:00:00")
    found = scan.find([lookup("org-20", "ann@x.com"), lookup("org-3", "new-bob@x.com")])
    assert found == {Identity("lookup", "org-20"): 2, Identity("lookup", "org-3"): 4}
    assert found.empty_lookup == {}  # prospect 2 is not offered as empty any more
    assert source.reads == ["ann@x.com"]  # only the email the write by fid had


def test_a_write_by_fid_before_any_scan_costs_no_read(report: RunReport) -> None:
    source = FakeSource(list(PROSPECTS))
    scan = finder(source, "scan", report)
    scan.remember_written_by_fid(Group(Identity("fid", "00Q2"), [], email="ann@x.com"))
    scan.find([lookup("org-1", "ann@x.com")])  # the scan reads what the write left
    assert source.reads == []


def test_an_update_without_email_or_lookup_keeps_the_ones_it_had(report: RunReport) -> None:
    scan = scanned(report, list(PROSPECTS))
    scan.remember_updated(5, by_email("eve@x.com"))  # now the latest of the two eves
    scan.remember_updated(4, Group(Identity("id", "4"), [], email=None))
    found = scan.find([by_email("eve@x.com"), lookup("org-3", None), by_email("new-bob@x.com")])
    assert found == {
        Identity("email", "eve@x.com"): 5,
        Identity("lookup", "org-3"): 4,
        Identity("email", "new-bob@x.com"): 4,
    }


def test_of_two_prospects_this_run_moved_to_one_email_the_one_written_last_is_the_latest(
    report: RunReport,
) -> None:
    """Pardot's "most recently updated" is the last write: not the higher id, whichever of
    the two was written first (the lower-id one too)."""
    for first, last in ((3, 4), (4, 3)):
        scan = scanned(report, list(PROSPECTS))
        scan.remember_updated(first, by_email("shared@x.com"))
        scan.remember_updated(last, by_email("shared@x.com"))
        assert scan.find([by_email("shared@x.com")]) == {Identity("email", "shared@x.com"): last}


class CountingMap(dict):  # type: ignore[type-arg]
    """One of the index's maps, counting every time it is walked or has an entry removed."""

    walks = 0
    removals = 0

    def values(self) -> Any:
        CountingMap.walks += 1
        return super().values()

    def items(self) -> Any:
        CountingMap.walks += 1
        return super().items()

    def __iter__(self) -> Any:
        CountingMap.walks += 1
        return super().__iter__()

    def __delitem__(self, key: Any) -> None:
        CountingMap.removals += 1
        super().__delitem__(key)


@pytest.mark.parametrize("size", [100, 2_000])
def test_an_update_costs_the_same_whatever_the_size_of_the_index(
    size: int, report: RunReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(CountingMap, "walks", 0)
    monkeypatch.setattr(CountingMap, "removals", 0)
    prospects = [Candidate(n, f"p{n}@x.com", f"org-{n}", "2024-01-01") for n in range(size)]
    scan = finder(FakeSource(prospects), "scan", report)
    # Instrument the index before the scan fills it, so every entry counts.
    scan._table._by_email = CountingMap()
    scan._table._by_lookup = CountingMap()
    scan.finish_scan()
    updates = 50
    for n in range(updates):
        scan.remember_updated(n, lookup(f"org-new-{n}", f"new-{n}@x.com"))
    assert CountingMap.walks == 0
    # Each update drops one email and one lookup entry: a fixed number of removals per
    # update, not one per prospect in the business unit.
    assert CountingMap.removals == 2 * updates
    assert scan.find([lookup("org-new-7", "new-7@x.com"), lookup("org-7", "p7@x.com")]) == {
        Identity("lookup", "org-new-7"): 7,
        Identity("lookup", "org-7"): None,
    }


def test_auto_says_why_it_scans_when_the_first_page_held_every_prospect(
    report: RunReport, caplog: pytest.LogCaptureFixture
) -> None:
    source = FakeSource(PROSPECTS[:2])  # one page holds them all
    with caplog.at_level("INFO", logger="target_pardot.finder"):
        finder(source, "auto", report).find([by_email("ann@x.com")])
    assert source.reads == []
    [message] = caplog.messages
    assert message == (
        "lookup_strategy auto: the query pages read so far hold all 2 prospects of the "
        "business unit; using them instead of 1 read by email"
    )


def test_auto_says_how_many_calls_the_rest_of_the_scan_costs(
    report: RunReport, caplog: pytest.LogCaptureFixture
) -> None:
    source = FakeSource(PROSPECTS)
    with caplog.at_level("INFO", logger="target_pardot.finder"):
        finder(source, "auto", report).find(
            [by_email("ann@x.com"), by_email("bob@x.com"), by_email("eve@x.com")]
        )
    [message] = caplog.messages
    assert message == (
        "lookup_strategy auto: 3 reads by email would cost more than the 2 query calls that "
        "finish the scan of all 6 prospects; scanning"
    )


class GrowingSource(FakeSource):
    """A source whose scan can start after an id, as the catch-up after a lost answer asks."""

    def scan(self, after_id: int = 0) -> Iterator[tuple[int | None, list[Candidate]]]:
        newer = [p for p in self.prospects if p.id > after_id]
        for start in range(0, max(len(newer), 1), self.page_size):
            self.pages += 1
            yield len(newer), newer[start : start + self.page_size]


def test_lost_creates_of_batches_in_flight_together_are_each_found(report: RunReport) -> None:
    source = GrowingSource(list(PROSPECTS))
    found_by = finder(source, "scan", report)
    found_by.finish_scan()
    # Two batches are sent before either answer is lost; both note the same watermark.
    first_since = found_by.watermark()
    second_since = found_by.watermark()
    source.prospects += [
        Candidate(7, "first@x.com", None, "2026-01-01 00:00:00"),
        Candidate(8, "second@x.com", None, "2026-01-01 00:00:00"),
    ]
    assert found_by.find_lost_creates([by_email("first@x.com")], since=first_since) == {
        Identity("email", "first@x.com"): 7
    }
    # The first batch's catch-up already indexed what the second one made.
    assert found_by.find_lost_creates([by_email("second@x.com")], since=second_since) == {
        Identity("email", "second@x.com"): 8
    }


def test_a_lost_create_is_never_matched_to_a_prospect_older_than_the_batch(
    report: RunReport,
) -> None:
    source = GrowingSource(list(PROSPECTS))
    found_by = finder(source, "scan", report)
    found_by.finish_scan()
    since = found_by.watermark()
    # eve@x.com has prospects 5 and 6 from before: the create was not applied.
    assert found_by.find_lost_creates([by_email("eve@x.com")], since=since) == {
        Identity("email", "eve@x.com"): None
    }


class LaggingSource(GrowingSource):
    """Reads and queries show a prospect only once `shown_at` (fake seconds) has passed."""

    def __init__(self, prospects: list[Candidate]) -> None:
        super().__init__(prospects)
        self.now = 0.0
        self.shown_at: dict[int, float] = {}

    def _shown(self, prospects: list[Candidate]) -> list[Candidate]:
        return [p for p in prospects if self.shown_at.get(p.id, 0.0) <= self.now]

    def read_by_email(self, email: str) -> list[Candidate]:
        return self._shown(super().read_by_email(email))

    def scan(self, after_id: int = 0) -> Iterator[tuple[int | None, list[Candidate]]]:
        for total, page in super().scan(after_id):
            yield total, self._shown(page)


@pytest.mark.parametrize("identity", ["lookup", "email"])
def test_a_prospect_this_run_created_is_read_again_until_pardot_shows_it(
    report: RunReport, identity: str
) -> None:
    """Pardot's reads may lag writes by up to a minute. Before: the read that did not show
    it yet was taken for 'no such prospect', and a second one was created."""
    clock = FakeClock()
    source = LaggingSource(list(PROSPECTS))
    clock.on_pause.append(lambda now: setattr(source, "now", now))
    found_by = finder(source, "read", report, clock)
    group = lookup("org-9", "zed@x.com") if identity == "lookup" else by_email("zed@x.com")
    found_by.remember_created(group)  # its batch made it; the answer carries no id
    source.prospects.append(Candidate(9, "zed@x.com", "org-9", "2026-01-01 00:00:00"))
    source.shown_at[9] = 5.0  # reads show it 5 seconds after the create

    assert found_by.find([group])[group.identity] == 9
    assert clock.pauses == [1.0, 2.0, 4.0]  # read again at 1, 3 and 7 seconds
    assert source.reads == ["zed@x.com"] * 4


def test_reads_stop_waiting_once_the_lag_has_passed(report: RunReport) -> None:
    clock = FakeClock()
    source = LaggingSource(list(PROSPECTS))
    found_by = finder(source, "read", report, clock)
    group = by_email("gone@x.com")
    found_by.remember_created(group)
    clock.now = 50.0  # created 50 seconds ago: at most 10 seconds more
    assert found_by.find([group])[group.identity] is None
    assert sum(clock.pauses) == pytest.approx(10.0)
    # A prospect the run did not create is not waited for.
    clock.pauses.clear()
    assert found_by.find([by_email("nobody@x.com")])[Identity("email", "nobody@x.com")] is None
    assert clock.pauses == []
