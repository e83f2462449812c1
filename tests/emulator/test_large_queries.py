"""Query pages over a business unit of thousands of prospects: right pages, and no walk over
the whole unit for the orders the target pages by (v3/v4 sort_by=id, v5 id asc, v5 email=)."""

from __future__ import annotations

from typing import Any

import pytest

from pardot_emulator import PardotEmulator
from pardot_emulator.clock import Clock
from pardot_emulator.store import Store

from .helpers import Api

SIZE = 2_500
ARCHIVED_EVERY = 7  # archived prospects sit between active ones, not in one block


class Unit:
    def __init__(self, emu: PardotEmulator) -> None:
        self.everyone: list[int] = []
        self.archived: list[int] = []
        for n in range(SIZE):
            archived = n % ARCHIVED_EVERY == 3
            # Every 100th email is shared by two prospects (AMPSEA), one of them archived.
            email = f"p{n % 100 if n % 100 == 5 else n}@example.com"
            prospect = emu.add_prospect(email, is_archived=archived)
            self.everyone.append(prospect["id"])
            if archived:
                self.archived.append(prospect["id"])
        archived_ids = set(self.archived)
        self.active = [i for i in self.everyone if i not in archived_ids]


@pytest.fixture
def unit(emu: PardotEmulator) -> Unit:
    return Unit(emu)


def v4_ids(api: Api, **params: Any) -> tuple[list[int], int | None]:
    response = api.v34(4, "query", fields="email", **params)
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    prospects = result.get("prospect", [])
    prospects = prospects if isinstance(prospects, list) else [prospects]
    return [p["id"] for p in prospects], result.get("total_results")


def v5_page(api: Api, **params: Any) -> dict[str, Any]:
    response = api.v5("GET", "prospects", params={"fields": "id,email", **params})
    assert response.status_code == 200, response.text
    return response.json()


def v5_ids(page: dict[str, Any]) -> list[int]:
    return [value["id"] for value in page["values"]]


def test_v4_scan_by_id_pages_first_middle_last(api: Api, unit: Unit) -> None:
    pages: list[list[int]] = []
    totals: list[int | None] = []
    after = 0
    while True:
        ids, total = v4_ids(api, sort_by="id", id_greater_than=after, limit=200)
        if not ids:
            break
        pages.append(ids)
        totals.append(total)
        after = ids[-1]
    assert pages[0] == unit.active[:200]
    assert pages[5] == unit.active[1000:1200]
    assert pages[-1] == unit.active[200 * (len(pages) - 1) :]
    assert [i for page in pages for i in page] == unit.active
    # total_results counts what is left above the bound, as Pardot's does.
    assert totals == [len(unit.active) - 200 * n for n in range(len(pages))]


def test_v4_archived_offsets_bounds_and_descending(api: Api, unit: Unit) -> None:
    archived, total = v4_ids(api, deleted="true", id_greater_than=unit.archived[10], limit=5)
    assert archived == unit.archived[11:16]
    assert total == len(unit.archived) - 11
    middle, total = v4_ids(api, offset=1300, limit=200)
    assert middle == unit.active[1300:1500]
    assert total == len(unit.active)
    low, high = unit.everyone[100], unit.everyone[400]
    window = [i for i in unit.active if low < i < high]
    ids, total = v4_ids(api, id_greater_than=low, id_less_than=high, limit=200)
    assert (ids, total) == (window[:200], len(window))
    newest, _ = v4_ids(api, sort_by="id", sort_order="descending", offset=10, limit=20)
    assert newest == unit.active[::-1][10:30]
    oldest_tail, _ = v4_ids(
        api, sort_by="id", sort_order="descending", offset=len(unit.active) - 3, limit=20
    )
    assert oldest_tail == unit.active[2::-1]
    assert v4_ids(api, offset=len(unit.active), limit=5) == ([], len(unit.active))
    assert v4_ids(api, sort_order="descending", offset=len(unit.active) + 5, limit=5)[0] == []


def test_v5_default_order_pages_by_token(api: Api, unit: Unit) -> None:
    page = v5_page(api, limit=1000)
    pages = [v5_ids(page)]
    while page["nextPageToken"] is not None:
        page = v5_page(api, nextPageToken=page["nextPageToken"])
        pages.append(v5_ids(page))
    assert pages[0] == unit.active[:1000]
    assert pages[1] == unit.active[1000:2000]
    assert pages[-1] == unit.active[2000:]
    assert len(pages) == 3
    every = v5_page(api, deleted="all", limit=1000, idGreaterThan=unit.everyone[1499])
    assert v5_ids(every) == unit.everyone[1500:2500]
    assert every["nextPageToken"] is None
    archived = v5_page(api, deleted="true", limit=1000)
    assert v5_ids(archived) == unit.archived
    newest = v5_page(api, orderBy="id desc", limit=3, idLessThan=unit.everyone[-1])
    assert v5_ids(newest) == [i for i in unit.active if i < unit.everyone[-1]][::-1][:3]


def test_v5_email_filter_uses_the_email_index(api: Api, unit: Unit) -> None:
    shared = [unit.everyone[n] for n in range(SIZE) if n % 100 == 5]
    assert v5_ids(v5_page(api, email="P5@Example.com", deleted="all", limit=1000)) == shared
    active = [i for i in shared if i not in set(unit.archived)]
    assert v5_ids(v5_page(api, email="p5@example.com", limit=1000)) == active
    assert (
        v5_ids(v5_page(api, email="p5@example.com", orderBy="id desc", limit=2))
        == (active[::-1][:2])
    )
    assert v5_ids(v5_page(api, email="nobody@example.com")) == []


def test_an_upsert_restoring_an_archived_prospect_moves_it_in_the_pages(
    api: Api, unit: Unit
) -> None:
    restored = unit.archived[100]
    response = api.v34(4, "upsert", "id", restored, city="Oslo")
    assert response.status_code == 200, response.text
    active = sorted([*unit.active, restored])
    at = active.index(restored)
    ids, total = v4_ids(api, id_greater_than=active[at - 50], limit=200)
    assert (ids, total) == (active[at - 49 : at + 151], len(active) - at + 49)
    assert restored in ids
    archived = [i for i in unit.archived if i != restored]
    assert v5_ids(v5_page(api, deleted="true", limit=1000)) == archived


def test_id_ordered_pages_never_list_the_whole_unit(
    api: Api, unit: Unit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listing (and sorting) every prospect per page is what made a 100k scan take minutes."""

    def listing_everyone(self: Store, *, include_archived: bool = False) -> list[Any]:
        raise AssertionError("a query page listed every prospect of the business unit")

    monkeypatch.setattr(Store, "all", listing_everyone)
    assert (
        v4_ids(api, sort_by="id", id_greater_than=unit.active[999], limit=200)[0]
        == (unit.active[1000:1200])
    )
    first = v5_page(api, limit=1000)
    assert v5_ids(v5_page(api, nextPageToken=first["nextPageToken"])) == unit.active[1000:2000]
    assert len(v5_ids(v5_page(api, email="p5@example.com", deleted="all"))) == SIZE // 100


def test_page_by_id_edges() -> None:
    store = Store(Clock(), ampsea=True)
    ids = [store.seed(f"s{n}@example.com", {}).id for n in range(10)]
    assert store.page_by_id(archived=False, limit=3) == (
        [store.get(i) for i in ids[:3]],
        10,
    )
    # Bounds that cross, offsets past the end, descending past the start: empty, not wrapped.
    assert store.page_by_id(archived=None, above=ids[5], below=ids[3], limit=5) == ([], 0)
    assert store.page_by_id(archived=None, offset=10, limit=5) == ([], 10)
    assert store.page_by_id(archived=None, offset=12, limit=5, descending=True) == ([], 10)
    tail = store.page_by_id(archived=None, offset=8, limit=5, descending=True)[0]
    assert [p.id for p in tail] == [ids[1], ids[0]]
    assert store.page_by_id(archived=True, limit=5) == ([], 0)


def test_fid_lookups_use_the_fid_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes by fid find their prospect without a walk over the unit: lowest id first,
    active before archived, and a fid nobody holds finds nobody."""
    store = Store(Clock(), ampsea=True)
    archived = store.seed("a@example.com", {"crm_lead_fid": "00Q1", "is_archived": True})
    first = store.seed("b@example.com", {"crm_lead_fid": "00Q1"})
    store.seed("c@example.com", {"crm_lead_fid": "00Q1"})
    contact = store.create({"email": "d@example.com"}, fid="0031")
    only_archived = store.seed("e@example.com", {"crm_lead_fid": "00Q2", "is_archived": True})

    def listing_everyone(self: Store, *, include_archived: bool = False) -> list[Any]:
        raise AssertionError("a fid lookup listed every prospect of the business unit")

    monkeypatch.setattr(Store, "all", listing_everyone)
    assert store.by_fid("00Q1") is first
    assert store.by_fid("0031") is contact
    assert store.by_fid("00Q2") is only_archived
    assert store.by_fid("00Q9") is None
    assert archived.is_archived
