"""v3/v4 query paging, filters, sorting, output shapes; and the custom field list."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pardot_emulator import PardotEmulator

from .helpers import Api, err_code


def _result(api: Api, **params: Any) -> dict[str, Any]:
    response = api.v34(4, "query", **params)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def _ids(result: dict[str, Any]) -> list[int]:
    prospects = result.get("prospect", [])
    return [p["id"] for p in (prospects if isinstance(prospects, list) else [prospects])]


@pytest.fixture
def seeded(emu: PardotEmulator) -> list[int]:
    stamps = [
        "2024-01-01 00:00:00",
        "2024-06-01 12:00:00",
        "2024-06-01 12:00:00",
        "2024-09-01 08:30:00",
        "2024-12-31 23:59:59",
    ]
    ids = [
        emu.add_prospect(
            f"p{n}@example.com", first_name=f"P{n}", created_at=stamp, updated_at=stamp
        )["id"]
        for n, stamp in enumerate(stamps)
    ]
    emu.add_prospect("archived@example.com", is_archived=True)
    return ids


def test_default_query_lists_active_prospects_by_id(api: Api, seeded: list[int]) -> None:
    result = _result(api)
    assert result["total_results"] == 5
    assert _ids(result) == seeded
    assert isinstance(result["prospect"], list)


def test_one_result_is_an_object_and_none_has_no_key(api: Api, seeded: list[int]) -> None:
    one = _result(api, id_greater_than=seeded[3], id_less_than=seeded[4] + 1, sort_by="id", limit=1)
    assert one["total_results"] == 1
    assert isinstance(one["prospect"], dict)
    none = _result(api, id_greater_than=seeded[4])
    assert none == {"total_results": 0}


def test_paging(api: Api, seeded: list[int]) -> None:
    first = _result(api, limit=2, sort_by="id", sort_order="ascending")
    second = _result(api, limit=2, offset=2, sort_by="id")
    third = _result(api, limit=2, offset=4)
    assert _ids(first) + _ids(second) + _ids(third) == seeded
    assert first["total_results"] == 5
    assert err_code(api.v34(4, "query", limit=201)) == 23
    assert err_code(api.v34(4, "query", limit=0)) == 23
    assert err_code(api.v34(4, "query", offset="x")) == 21
    assert _result(api, limit=200)["total_results"] == 5


def test_time_filters_compare_whole_seconds(api: Api, seeded: list[int]) -> None:
    assert _ids(_result(api, updated_after="2024-06-01 12:00:00")) == seeded[3:]
    assert _ids(_result(api, updated_after="2024-06-01 11:59:59")) == seeded[1:]
    assert _ids(_result(api, updated_after="2024-03-01T00:00:00Z")) == seeded[1:]
    assert _ids(_result(api, created_after="2024-09-01 08:30:00")) == seeded[4:]
    assert _ids(_result(api, updated_before="2024-06-01 12:00:00")) == seeded[:1]
    assert err_code(api.v34(4, "query", updated_after="the day after tomorrow")) == 7


def test_sorting(api: Api, seeded: list[int]) -> None:
    newest_first = _ids(_result(api, sort_by="updated_at", sort_order="descending"))
    # Equal timestamps keep a stable order by id (descending here).
    assert newest_first == [seeded[4], seeded[3], seeded[2], seeded[1], seeded[0]]
    oldest_first = _ids(_result(api, sort_by="created_at", sort_order="ascending"))
    assert oldest_first == seeded
    assert _ids(_result(api, sort_by="updated_at")) == newest_first  # default: descending
    assert err_code(api.v34(4, "query", sort_by="email")) == 19
    assert err_code(api.v34(4, "query", sort_order="sideways")) == 20


def test_fields_and_bulk_output(api: Api, seeded: list[int]) -> None:
    api.emu.add_custom_field("org_id")
    result = _result(api, fields="email,first_name,org_id,nonsense", limit=1)
    assert result["prospect"] == {
        "id": seeded[0],
        "email": "p0@example.com",
        "first_name": "P0",
        "org_id": None,
    }
    bulk = _result(api, output="bulk", limit=2)
    assert "total_results" not in bulk
    assert _ids(bulk) == seeded[:2]


def test_deleted_filter(api: Api, seeded: list[int]) -> None:
    archived = _result(api, deleted="true")
    assert archived["total_results"] == 1
    assert archived["prospect"]["email"] == "archived@example.com"
    assert err_code(api.v34(4, "query", deleted="maybe")) == 27


def test_v3_query_on_a_v3_unit(api3: Api) -> None:
    api3.emu.add_prospect("only@example.com")
    response = api3.v34(3, "query", method="GET")
    assert response.json()["result"]["prospect"]["email"] == "only@example.com"


def test_custom_field_query(api: Api) -> None:
    emu = api.emu
    none = api.v34(4, "query", obj="customField").json()
    assert none["result"] == {"total_results": 0}
    emu.add_custom_field("org_id", name="Org ID")
    one = api.v34(4, "query", obj="customField").json()["result"]
    assert one["total_results"] == 1
    field = one["customField"]
    assert set(field) == {
        "id",
        "name",
        "field_id",
        "type",
        "is_record_multiple_responses",
        "created_at",
        "updated_at",
    }
    assert (field["name"], field["field_id"], field["type"]) == ("Org ID", "org_id", "Text")
    assert field["is_record_multiple_responses"] is False
    emu.add_custom_field("tags", type="Multi-Select", multi=True)
    many = api.v34(4, "query", obj="customField", method="GET").json()["result"]
    assert [f["field_id"] for f in many["customField"]] == ["org_id", "tags"]
    assert many["customField"][1]["is_record_multiple_responses"] is True


def test_read_lag_keeps_new_prospects_out_of_reads_by_email_and_queries(api: Api) -> None:
    """Pardot's reads may lag writes by up to 60 seconds (the notes): the knob shows it."""
    emu = api.emu
    old = emu.add_prospect("old@example.com", created_at="2024-01-01 00:00:00")
    emu.read_lag = 0.5
    made = api.v34(4, "batchCreate", prospects='{"prospects":[{"email":"new@example.com"}]}')
    assert made.status_code == 201
    [new] = [p for p in emu.prospects() if p["email"] == "new@example.com"]

    assert err_code(api.v34(4, "read", "email", "new@example.com")) == 4
    assert _ids(_result(api, sort_by="id", id_greater_than=0)) == [old["id"]]
    queried = api.v5("GET", "prospects", params={"fields": "id", "email": "new@example.com"})
    assert queried.json()["values"] == []
    # Writes and reads by id see it at once; v4 makes another prospect with that email.
    assert api.v34(4, "read", "id", new["id"]).status_code == 200
    updated = api.v34(
        4, "batchUpdate", prospects=f'{{"prospects":[{{"id":{new["id"]},"city":"Oslo"}}]}}'
    )
    assert updated.json()["errors"] == {}

    time.sleep(0.55)
    assert api.v34(4, "read", "email", "new@example.com").json()["prospect"]["city"] == "Oslo"
    assert _ids(_result(api, sort_by="id", id_greater_than=0)) == [old["id"], new["id"]]
    queried = api.v5("GET", "prospects", params={"fields": "id", "email": "new@example.com"})
    assert [v["id"] for v in queried.json()["values"]] == [new["id"]]
