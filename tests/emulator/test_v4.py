"""API v4 on an AMPSEA business unit: several prospects may share an email."""

from __future__ import annotations

from .helpers import Api, err_code

LEAD = "00Q000000000001AAA"
CONTACT = "003000000000001AAA"


def test_create_always_creates(api: Api) -> None:
    first = api.v34(4, "create", "email", "same@example.com")
    second = api.v34(4, "create", "email", "same@example.com")
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["prospect"]["id"] < second.json()["prospect"]["id"]
    assert len(api.emu.prospects()) == 2


def test_read_by_email_is_an_object_for_one_and_a_list_for_many(api: Api) -> None:
    emu = api.emu
    one = emu.add_prospect("solo@example.com", first_name="Solo")
    single = api.v34(4, "read", "email", "solo@example.com").json()["prospect"]
    assert isinstance(single, dict)
    assert single["id"] == one["id"]

    a = emu.add_prospect("twin@example.com")
    b = emu.add_prospect("TWIN@example.com")
    emu.add_prospect("twin@example.com", is_archived=True)
    many = api.v34(4, "read", "email", "twin@example.com").json()["prospect"]
    assert isinstance(many, list)
    assert [p["id"] for p in many] == [a["id"], b["id"]]  # archived ones excluded

    missing = api.v34(4, "read", "email", "none@example.com")
    assert (missing.status_code, err_code(missing)) == (400, 4)


def test_read_by_id_and_fid(api: Api) -> None:
    emu = api.emu
    lead = emu.add_prospect("lead@example.com", crm_lead_fid=LEAD)
    contact = emu.add_prospect("contact@example.com", crm_contact_fid=CONTACT)
    archived = emu.add_prospect("gone@example.com", is_archived=True)
    assert api.v34(4, "read", "fid", LEAD).json()["prospect"]["id"] == lead["id"]
    by_contact = api.v34(4, "read", "fid", CONTACT).json()["prospect"]
    assert by_contact["id"] == contact["id"]
    assert by_contact["crm_contact_fid"] == CONTACT
    assert api.v34(4, "read", "id", lead["id"]).json()["prospect"]["crm_lead_fid"] == LEAD
    assert err_code(api.v34(4, "read", "fid", "00Q999999999999AAA")) == 77
    assert err_code(api.v34(4, "read", "id", 5)) == 3
    assert err_code(api.v34(4, "read", "id", archived["id"])) == 132


def test_update_by_id_or_fid_only(api: Api) -> None:
    emu = api.emu
    lead = emu.add_prospect("lead@example.com", crm_lead_fid=LEAD)
    other = emu.add_prospect("other@example.com", crm_contact_fid=CONTACT)
    by_fid = api.v34(4, "update", "fid", LEAD, city="Oslo", email="moved@example.com")
    assert by_fid.status_code == 200
    assert by_fid.json()["prospect"]["city"] == "Oslo"
    assert emu.prospect(lead["id"])["email"] == "moved@example.com"  # v4 may change email
    assert api.v34(4, "update", "id", lead["id"], city="Bergen").status_code == 200
    assert emu.prospect(lead["id"])["city"] == "Bergen"
    assert err_code(api.v34(4, "update", "email", "moved@example.com", city="x")) == 2
    mismatch = api.v34(4, "update", "id", lead["id"], fid=CONTACT, city="Nowhere")
    assert (mismatch.status_code, err_code(mismatch)) == (400, 81)
    assert mismatch.json()["err"] == "Prospect ID and FID do not match"
    assert emu.prospect(lead["id"])["city"] == "Bergen"
    assert emu.prospect(other["id"])["city"] is None


def test_upsert_by_email_always_creates(api: Api) -> None:
    api.emu.add_prospect("dup@example.com", first_name="Old")
    response = api.v34(4, "upsert", "email", "dup@example.com", first_name="New")
    assert response.status_code == 201
    assert [p["first_name"] for p in api.emu.prospects()] == ["Old", "New"]


def test_upsert_by_id_and_fid(api: Api) -> None:
    emu = api.emu
    lead = emu.add_prospect("lead@example.com", crm_lead_fid=LEAD)
    contact = emu.add_prospect("contact@example.com", crm_contact_fid=CONTACT)
    archived = emu.add_prospect("archived@example.com", is_archived=True)

    by_id = api.v34(4, "upsert", "id", lead["id"], first_name="Lee")
    assert by_id.status_code == 200
    assert by_id.json()["prospect"]["first_name"] == "Lee"
    by_fid = api.v34(4, "upsert", "fid", CONTACT, first_name="Cat")
    assert (by_fid.status_code, by_fid.json()["prospect"]["id"]) == (200, contact["id"])

    restored = api.v34(4, "upsert", "id", archived["id"], company="Back")
    assert restored.status_code == 200
    assert emu.prospect(archived["id"])["is_archived"] is False

    assert err_code(api.v34(4, "upsert", "id", lead["id"], fid=CONTACT)) == 81
    assert err_code(api.v34(4, "upsert", "id", 999999, first_name="x")) == 14
    assert err_code(api.v34(4, "upsert", "fid", "00Q999999999999AAA", first_name="x")) == 77

    new_fid = "00Q000000000777AAA"
    created = api.v34(4, "upsert", "fid", new_fid, email="new@example.com")
    assert created.status_code == 201
    assert created.json()["prospect"]["crm_lead_fid"] == new_fid
    assert api.v34(4, "read", "fid", new_fid).json()["prospect"]["email"] == "new@example.com"


def test_writes_touch_timestamps_and_campaign(api: Api) -> None:
    emu = api.emu
    old = emu.add_prospect(
        "old@example.com", created_at="2020-01-01 00:00:00", updated_at="2020-01-02 00:00:00"
    )
    assert old["last_activity_at"] is None
    assert old["campaign_id"] == 1
    response = api.v34(4, "update", "id", old["id"], campaign_id="42")
    prospect = response.json()["prospect"]
    assert prospect["created_at"] == "2020-01-01 00:00:00"
    assert prospect["updated_at"] > "2020-01-02 00:00:00"
    assert prospect["last_activity_at"] == prospect["updated_at"]
    assert prospect["campaign_id"] == 42
    assert err_code(api.v34(4, "update", "id", old["id"], campaign_id="spring")) == 38
    created = api.v34(4, "create", "email", "c@example.com", campaign_id="7").json()["prospect"]
    assert created["campaign_id"] == 7


def test_booleans(api: Api) -> None:
    response = api.v34(
        4, "create", "email", "b@example.com", is_do_not_email="1", is_do_not_call="false"
    )
    prospect = response.json()["prospect"]
    assert prospect["is_do_not_email"] is True
    assert prospect["is_do_not_call"] is False
    assert prospect["opted_out"] is None
