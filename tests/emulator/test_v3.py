"""API v3 on a non-AMPSEA business unit: one prospect per email."""

from __future__ import annotations

from .helpers import Api, err_code


def test_create_read_and_duplicate(api3: Api) -> None:
    created = api3.v34(3, "create", "email", "Ann+tag@example.com", first_name="Ann")
    assert created.status_code == 201
    prospect = created.json()["prospect"]
    assert prospect["id"] >= 1000
    assert prospect["email"] == "Ann+tag@example.com"
    assert prospect["first_name"] == "Ann"
    assert prospect["campaign_id"] == 1
    assert prospect["last_name"] is None
    assert "password" not in prospect

    again = api3.v34(3, "create", "email", "ann+TAG@example.com")
    assert (again.status_code, err_code(again)) == (400, 9)
    assert again.json()["err"] == "A prospect with the specified email address already exists"

    by_email = api3.v34(3, "read", "email", "ANN+tag@example.com", method="GET")
    assert by_email.status_code == 200
    assert by_email.json()["prospect"]["id"] == prospect["id"]
    by_id = api3.v34(3, "read", "id", prospect["id"])
    assert by_id.json()["prospect"]["first_name"] == "Ann"


def test_read_errors(api3: Api) -> None:
    missing = api3.v34(3, "read", "email", "nobody@example.com")
    assert (missing.status_code, err_code(missing)) == (400, 4)
    assert missing.json()["err"] == "Invalid prospect email address"
    assert err_code(api3.v34(3, "read", "id", 424242)) == 3
    assert err_code(api3.v34(3, "read", "fid", "00Q000000000001AAA")) == 2  # v3 has no fid


def test_invalid_emails_are_4(api3: Api) -> None:
    assert err_code(api3.v34(3, "create", "email", "not-an-email")) == 4
    too_long = "a" * 250 + "@example.com"
    assert err_code(api3.v34(3, "create", "email", too_long)) == 4
    assert err_code(api3.v34(3, "upsert", "email", "still wrong@example.com")) == 4
    assert api3.emu.prospects() == []


def test_update_by_email_and_id(api3: Api) -> None:
    emu = api3.emu
    seeded = emu.add_prospect(
        "bo@example.com", first_name="Bo", phone="123", updated_at="2020-01-01 00:00:00"
    )
    updated = api3.v34(
        3, "update", "email", "bo@example.com", company="Acme", phone="", email="other@example.com"
    )
    assert updated.status_code == 200
    body = updated.json()["prospect"]
    assert body["company"] == "Acme"
    assert body["phone"] is None  # an empty value clears the field
    assert body["email"] == "bo@example.com"  # v3 update cannot change the email
    assert body["updated_at"] > "2020-01-01 00:00:00"
    assert body["last_activity_at"] == body["updated_at"]

    by_id = api3.v34(3, "update", "id", seeded["id"], job_title="CTO")
    assert by_id.json()["prospect"]["job_title"] == "CTO"
    assert err_code(api3.v34(3, "update", "id", 999999, job_title="x")) == 3
    assert err_code(api3.v34(3, "update", "email", "ghost@example.com", job_title="x")) == 4


def test_upsert_by_email_updates_or_creates(api3: Api) -> None:
    first = api3.v34(3, "upsert", "email", "cy@example.com", first_name="Cy")
    assert first.status_code == 201
    second = api3.v34(3, "upsert", "email", "cy@example.com", last_name="Young")
    assert second.status_code == 200
    assert second.json()["prospect"]["id"] == first.json()["prospect"]["id"]
    assert second.json()["prospect"]["first_name"] == "Cy"
    assert len(api3.emu.prospects()) == 1


def test_upsert_by_id(api3: Api) -> None:
    emu = api3.emu
    dee = emu.add_prospect("dee@example.com")
    emu.add_prospect("taken@example.com")
    renamed = api3.v34(3, "upsert", "id", dee["id"], email="dee.new@example.com")
    assert renamed.status_code == 200
    assert emu.prospect(dee["id"])["email"] == "dee.new@example.com"

    clash = api3.v34(3, "upsert", "id", dee["id"], email="taken@example.com")
    assert (clash.status_code, err_code(clash)) == (400, 54)
    assert emu.prospect(dee["id"])["email"] == "dee.new@example.com"

    no_email = api3.v34(3, "upsert", "id", 999999, first_name="X")
    assert err_code(no_email) == 14
    fallback = api3.v34(3, "upsert", "id", 999999, email="fresh@example.com")
    assert fallback.status_code == 201
    assert fallback.json()["prospect"]["email"] == "fresh@example.com"


def test_field_rules(api3: Api) -> None:
    emu = api3.emu
    emu.add_custom_field("seats", type="Number")
    emu.add_custom_field("renewal", type="Date")
    emu.add_custom_field("products", type="Checkbox", multi=True)
    response = api3.v34(
        3,
        "create",
        "email",
        "ed@example.com",
        seats="12",
        renewal="03/04/2025",
        products_0="A",
        products_1="B",
        bogus_field="ignored",
        crm_lead_fid="00QIGNORED",
        id="5",
        score="7",
    )
    assert response.status_code == 201
    prospect = response.json()["prospect"]
    assert prospect["seats"] == 12  # a Number field reads back as a JSON number
    assert prospect["renewal"] == "2025-03-04"
    assert prospect["products"] == {"value": ["A", "B"]}
    assert prospect["score"] == 7
    assert prospect["crm_lead_fid"] is None
    assert prospect["id"] != 5
    assert "bogus_field" not in prospect

    pid = prospect["id"]
    bad_number = api3.v34(3, "update", "id", pid, seats="a dozen")
    assert (err_code(bad_number), bad_number.json()["err"]) == (
        56,
        "Invalid number entered for field seats",
    )
    bad_date = api3.v34(3, "update", "id", pid, renewal="someday")
    assert (err_code(bad_date), bad_date.json()["err"]) == (
        57,
        "Invalid date entered for field renewal",
    )
    assert bad_date.status_code == 400
    assert err_code(api3.v34(3, "update", "id", pid, score="high")) == 56
    assert emu.prospect(pid)["seats"] == 12

    one = api3.v34(3, "update", "id", pid, products_0="C")
    assert one.json()["prospect"]["products"] == {"value": "C"}  # one value -> not a list
    kept = api3.v34(3, "update", "id", pid, products="")  # cannot clear this way
    assert kept.json()["prospect"]["products"] == {"value": "C"}
    cleared = api3.v34(3, "update", "id", pid, products_0="")
    assert "products" not in cleared.json()["prospect"]  # no value -> not rendered
    assert emu.prospect(pid)["products"] == []


def test_path_values_are_url_decoded(api3: Api) -> None:
    api3.emu.add_prospect("odd/addr+x@example.com")
    response = api3.v34(3, "read", "email", "odd/addr+x@example.com", method="GET")
    assert response.status_code == 200, response.text
