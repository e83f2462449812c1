"""batchCreate / batchUpdate / batchUpsert in v3 (keyed object) and v4 (flat array)."""

from __future__ import annotations

import json
from typing import Any

from .helpers import Api, err_code

LEAD = "00Q000000000001AAA"
CONTACT = "003000000000001AAA"


def _batch(api: Api, version: int, op: str, prospects: Any) -> Any:
    return api.v34(version, op, prospects=json.dumps({"prospects": prospects}))


def test_v4_batch_upsert_applies_good_items_and_reports_bad_ones(api: Api) -> None:
    emu = api.emu
    by_id = emu.add_prospect("id@example.com")
    by_fid = emu.add_prospect("fid@example.com", crm_lead_fid=LEAD)
    emu.add_prospect("contact@example.com", crm_contact_fid=CONTACT)
    response = _batch(
        api,
        4,
        "batchUpsert",
        [
            {"id": str(by_id["id"]), "company": "ById"},
            {"fid": LEAD, "company": "ByFid"},
            {"email": "id@example.com", "company": "Fresh"},
            {"id": by_id["id"], "score": "lots"},
            {"id": by_id["id"], "fid": CONTACT, "company": "Mismatch"},
            {"id": 999999, "company": "Nobody"},
        ],
    )
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "@attributes": {"stat": "fail", "version": 1},
        "errors": {
            "3": "Invalid number entered for field score",
            "4": "Prospect ID and FID do not match",
            "5": "Non-existent prospect ID; No email address provided",
        },
    }
    assert "prospect" not in body  # batches never return ids
    assert emu.prospect(by_id["id"])["company"] == "ById"
    assert emu.prospect(by_fid["id"])["company"] == "ByFid"
    created = [p for p in emu.prospects() if p["company"] == "Fresh"]
    assert len(created) == 1
    assert created[0]["id"] not in (by_id["id"], by_fid["id"])  # email-only items create


def test_v4_batch_status_201_only_when_something_was_created(api: Api) -> None:
    emu = api.emu
    first = emu.add_prospect("a@example.com")
    created = _batch(api, 4, "batchUpsert", [{"email": "new@example.com", "tags": ["x"]}])
    assert created.status_code == 201
    assert created.json() == {"@attributes": {"stat": "ok", "version": 1}, "errors": {}}
    updated = _batch(api, 4, "batchUpdate", [{"id": first["id"], "city": "Rome"}])
    assert updated.status_code == 200
    assert updated.json()["errors"] == {}
    assert emu.prospect(first["id"])["city"] == "Rome"


def test_v4_batch_create_and_update_item_rules(api: Api) -> None:
    emu = api.emu
    emu.add_custom_field("tags", multi=True)
    response = _batch(
        api,
        4,
        "batchCreate",
        [
            {"email": "ok@example.com", "tags": ["a", "b"]},
            {"first_name": "No Email"},
            {"email": "bad address"},
            "not an object",
        ],
    )
    assert response.status_code == 200
    assert response.json()["errors"] == {
        "1": "Invalid prospect email address",
        "2": "Invalid prospect email address",
        "3": "Prospect array should be a flat array of attributes",
    }
    assert [p["tags"] for p in emu.prospects()] == [["a", "b"]]
    update = _batch(api, 4, "batchUpdate", [{"email": "ok@example.com", "city": "x"}])
    assert update.json()["errors"] == {"0": "Invalid prospect ID"}
    update = _batch(api, 4, "batchUpdate", [{"fid": "00Q999999999999AAA", "city": "x"}])
    assert update.json()["errors"] == {"0": "Invalid prospect fid"}


def test_whole_batch_errors(api: Api, api3: Api) -> None:
    too_many = [{"email": f"p{n}@example.com"} for n in range(51)]
    response = _batch(api, 4, "batchCreate", too_many)
    assert (response.status_code, err_code(response)) == (400, 70)
    assert response.json()["err"] == "Batch processing is limited to 50 prospects at once."
    assert api.emu.prospects() == []
    assert _batch(api, 4, "batchCreate", too_many[:50]).status_code == 201

    assert err_code(api.v34(4, "batchUpsert", prospects="{not json")) == 71
    assert err_code(api.v34(4, "batchUpsert")) == 71
    assert err_code(_batch(api, 4, "batchUpsert", {"a@example.com": {}})) == 90
    assert err_code(_batch(api3, 3, "batchUpsert", [{"email": "a@example.com"}])) == 91


def test_half_a_surrogate_pair_makes_the_whole_batch_bad_json(api: Api, api3: Api) -> None:
    # Python's json takes "\udcfc" alone; a strict parser (PHP's json_decode, behind Pardot's
    # API) refuses the whole body. A valid pair (an emoji as ASCII-escaped JSON) is text.
    lone = [{"email": "a@example.com", "first_name": "M\udcfcller"}, {"email": "b@example.com"}]
    assert err_code(_batch(api, 4, "batchUpsert", lone)) == 71
    keyed = {"a@example.com": {"company": "Smile \ud83d"}}
    assert err_code(_batch(api3, 3, "batchUpsert", keyed)) == 71
    assert api.emu.prospects() == [] and api3.emu.prospects() == []

    emoji = {"a@example.com": {"company": "Smile \ud83d\ude00"}}
    assert _batch(api3, 3, "batchUpsert", emoji).status_code == 201
    assert [p["company"] for p in api3.emu.prospects()] == ["Smile \U0001f600"]


def test_v3_batches_are_keyed_by_email_or_id(api3: Api) -> None:
    emu = api3.emu
    existing = emu.add_prospect("have@example.com")
    create = _batch(
        api3,
        3,
        "batchCreate",
        {
            "new@example.com": {"first_name": "New"},
            "have@example.com": {"first_name": "Dup"},
            str(existing["id"]): {"first_name": "ById"},
        },
    )
    assert create.status_code == 200
    assert create.json()["errors"] == {
        "have@example.com": "A prospect with the specified email address already exists",
        str(existing["id"]): "Invalid prospect email address",
    }
    update = _batch(
        api3,
        3,
        "batchUpdate",
        {
            str(existing["id"]): {"city": "Lima"},
            "new@example.com": {"city": "Quito"},
            "ghost@example.com": {"city": "x"},
            "999999": {"city": "x"},
        },
    )
    assert update.status_code == 200
    assert update.json()["errors"] == {
        "ghost@example.com": "Invalid prospect email address",
        "999999": "Invalid prospect ID",
    }
    cities = {p["email"]: p["city"] for p in emu.prospects()}
    assert cities == {"have@example.com": "Lima", "new@example.com": "Quito"}

    upsert = _batch(
        api3,
        3,
        "batchUpsert",
        {
            "new@example.com": {"city": "Cusco"},
            "third@example.com": {"city": "Lima"},
        },
    )
    assert upsert.status_code == 201
    assert upsert.json() == {"@attributes": {"stat": "ok", "version": 1}, "errors": {}}
    assert len(emu.prospects()) == 3


def test_v4_drops_what_a_number_or_date_custom_field_cannot_take_and_applies_the_rest(
    api: Api,
) -> None:
    """Recorded real v4 traffic (the notes): 200 with `errors:{}`, the bad value not written,
    the item's other fields written; a Number field reads back as a JSON number."""
    emu = api.emu
    emu.add_custom_field("seats", type="Number")
    emu.add_custom_field("renewal", type="Date")
    held = emu.add_prospect("a@example.com", seats="3", renewal="2025-01-01")
    response = _batch(
        api,
        4,
        "batchUpdate",
        [{"id": held["id"], "seats": "a dozen", "renewal": "someday", "city": "Oslo"}],
    )
    assert (response.status_code, response.json()["errors"]) == (200, {})
    after = emu.prospect(held["id"])
    assert (after["seats"], after["renewal"], after["city"]) == (3, "2025-01-01", "Oslo")

    for sent, kept in (("00123", 123), ("12.50", 12.5), (" 7 ", 7), ("1e3", 1000), (-2, -2)):
        _batch(api, 4, "batchUpdate", [{"id": held["id"], "seats": sent}])
        read = api.v34(4, "read", "id", held["id"]).json()["prospect"]
        assert read["seats"] == kept, sent
    # Digit separators and other scripts' digits are not numbers to Pardot's (PHP) check.
    for refused in ("1_000", "1,000", "١٢٣", "NaN", "Infinity"):
        _batch(api, 4, "batchUpdate", [{"id": held["id"], "seats": refused}])
        assert emu.prospect(held["id"])["seats"] == -2, refused
    # (v3, not seen in real traffic either way, still answers 56: tests/emulator/test_v3.py.)
