"""The compact scan index: the same answers as one object per prospect, in a table."""

from __future__ import annotations

from target_pardot.scanindex import NEWEST, ScanIndex, recency_key


def ids(index: ScanIndex, rows: list[int]) -> set[int]:
    return {index.prospect_id(row) for row in rows}


def test_prospects_are_found_by_email_whatever_its_case_and_by_lookup_value() -> None:
    index = ScanIndex()
    index.put(10, "Ann@X.com", "org-1", recency_key("2024-01-01 00:00:00"))
    index.put(11, "ann@x.com", None, recency_key("2024-06-01 00:00:00"))
    index.put(12, "bob@x.com", "org-2", recency_key("2024-01-01 00:00:00"))
    assert ids(index, index.rows_for_email("ANN@x.com")) == {10, 11}
    assert index.latest(index.rows_for_email("ann@x.com")) == 11  # the most recent
    assert ids(index, index.rows_for_lookup("org-2")) == {12}
    assert index.rows_for_lookup("org-3") == []
    assert [index.has_lookup(row) for row in index.rows_for_email("ann@x.com")] == [True, False]


def test_putting_a_known_prospect_again_moves_it_to_its_new_email_and_lookup() -> None:
    index = ScanIndex()
    index.put(1, "a@x.com", "org-1", 1)
    index.put(2, "a@x.com", "org-2", 1)
    index.put(1, "new@x.com", "org-9", 2)
    assert ids(index, index.rows_for_email("a@x.com")) == {2}
    assert ids(index, index.rows_for_email("new@x.com")) == {1}
    assert index.rows_for_lookup("org-1") == []
    assert ids(index, index.rows_for_lookup("org-9")) == {1}
    assert len(index) == 2


def test_keep_missing_keeps_the_email_and_lookup_an_update_did_not_give() -> None:
    index = ScanIndex()
    index.put(1, "a@x.com", "org-1", 1)
    index.put(1, None, None, NEWEST, keep_missing=True)
    assert ids(index, index.rows_for_email("a@x.com")) == {1}
    assert ids(index, index.rows_for_lookup("org-1")) == {1}
    index.put(2, "a@x.com", None, 5)
    assert index.latest(index.rows_for_email("a@x.com")) == 1  # written now beats any time


def test_a_row_this_run_wrote_is_kept_against_a_page_and_keeps_its_place_among_writes() -> None:
    index = ScanIndex()
    index.put(1, "old@x.com", None, 5)
    index.put(2, "shared@x.com", None, NEWEST + 1, keep_missing=True)  # written last
    index.put(1, "shared@x.com", None, NEWEST, keep_missing=True)  # written first
    index.put(1, "old@x.com", None, 9, keep_written=True)  # a page read before the write
    assert ids(index, index.rows_for_email("shared@x.com")) == {1, 2}
    assert index.rows_for_email("old@x.com") == []
    assert index.latest(index.rows_for_email("shared@x.com")) == 2
    index.put(3, "shared@x.com", None, 9, keep_written=True)  # not written: added
    assert ids(index, index.rows_for_email("shared@x.com")) == {1, 2, 3}


def test_an_id_that_arrives_out_of_order_is_still_found_and_replaced() -> None:
    index = ScanIndex()
    for prospect_id in (5, 7, 9):
        index.put(prospect_id, f"p{prospect_id}@x.com", None, 1)
    index.put(3, "p3@x.com", None, 1)  # below the others
    index.put(11, "p11@x.com", None, 1)
    index.put(3, "moved@x.com", None, 2)
    index.put(7, "seven@x.com", None, 2)
    assert ids(index, index.rows_for_email("moved@x.com")) == {3}
    assert index.rows_for_email("p3@x.com") == []
    assert ids(index, index.rows_for_email("seven@x.com")) == {7}
    assert len(index) == 5


def test_latest_can_look_only_above_an_id() -> None:
    index = ScanIndex()
    index.put(1, "a@x.com", None, 9)
    index.put(2, "a@x.com", None, 1)
    rows = index.rows_for_email("a@x.com")
    assert index.latest(rows) == 1
    assert index.latest(rows, above=1) == 2
    assert index.latest(rows, above=2) is None


def test_update_times_sort_as_pardot_writes_them() -> None:
    assert recency_key("2024-01-02 00:00:00") > recency_key("2024-01-01 23:59:59")
    assert recency_key("2024-01-01T10:00:00+00:00") == recency_key("2024-01-01 10:00:00")
    assert recency_key("2024-01-01") < recency_key("2024-01-01 00:00:01")
    assert recency_key("") == recency_key("not a time") == 0
    assert recency_key("9998-12-31 23:59:59") < NEWEST
