"""API v5: JSON, camelCase names, upsertLatestByEmail."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests

from .helpers import TIMEOUT, Api

LEAD = "00Q000000000001AAA"
CONTACT = "003000000000001AAA"


def test_create(api: Api) -> None:
    api.emu.add_custom_field("org_id")
    body = {
        "email": "v5@example.com",
        "firstName": "Vee",
        "isDoNotEmail": True,
        "score": 10,
        "org_id__c": "o-1",
    }
    response = api.v5("POST", "prospects", body=body)
    assert response.status_code == 201
    created = response.json()
    assert created == {
        "id": created["id"],
        "email": "v5@example.com",
        "firstName": "Vee",
        "isDoNotEmail": True,
        "score": 10,
        "org_id__c": "o-1",
    }
    stored = api.emu.prospect(created["id"])
    assert stored["first_name"] == "Vee"
    assert stored["is_do_not_email"] is True
    assert stored["org_id"] == "o-1"
    assert stored["campaign_id"] == 1

    chosen = api.v5(
        "POST", "prospects", params={"fields": "id,createdAt"}, body={"email": "w@example.com"}
    )
    assert set(chosen.json()) == {"id", "createdAt"}
    assert "T" in chosen.json()["createdAt"]


def test_create_errors_apply_nothing(api: Api) -> None:
    unknown = api.v5("POST", "prospects", body={"email": "x@example.com", "nickname": "X"})
    assert (unknown.status_code, unknown.json()) == (
        400,
        {"code": 154, "message": "Invalid property in request: nickname"},
    )
    read_only = api.v5(
        "POST", "prospects", body={"email": "x@example.com", "salesforceLeadId": LEAD}
    )
    assert (read_only.status_code, read_only.json()["code"]) == (400, 180)
    assert "salesforceLeadId" in read_only.json()["message"]
    missing = api.v5("POST", "prospects", body={"firstName": "No Email"})
    assert missing.status_code == 400
    assert "email" in missing.json()["message"]
    bad = api.v5("POST", "prospects", body={"email": "nope"})
    assert bad.status_code == 400
    assert "email" in bad.json()["message"]
    flag = api.v5("POST", "prospects", body={"email": "f@example.com", "isDoNotEmail": "yes"})
    assert flag.status_code == 400
    not_json = requests.post(
        f"{api.emu.url}/api/v5/objects/prospects",
        data="{oops",
        headers=api.headers(),
        timeout=TIMEOUT,
    )
    assert (not_json.status_code, not_json.json()["code"]) == (400, 150)
    # Half a surrogate pair is no text: a strict parser refuses the body (see strict_json).
    lone = api.v5("POST", "prospects", body={"email": "s@example.com", "firstName": "M\udcfc"})
    assert (lone.status_code, lone.json()["code"]) == (400, 150)
    assert api.emu.prospects() == []


def test_read(api: Api) -> None:
    emu = api.emu
    both = emu.add_prospect(
        "both@example.com",
        first_name="B",
        crm_lead_fid=LEAD,
        crm_contact_fid=CONTACT,
        updated_at="2024-05-06 07:08:09",
    )
    response = api.v5(
        "GET",
        f"prospects/{both['id']}",
        params={
            "fields": "email,firstName,salesforceId,salesforceLeadId,updatedAt,isDoNotCall,lastName"
        },
    )
    assert response.status_code == 200
    assert response.json() == {
        "id": both["id"],
        "email": "both@example.com",
        "firstName": "B",
        "salesforceId": CONTACT,
        "salesforceLeadId": LEAD,
        "updatedAt": "2024-05-06T07:08:09+00:00",
        "isDoNotCall": False,
        "lastName": None,
    }
    no_fields = api.v5("GET", f"prospects/{both['id']}")
    assert (no_fields.status_code, no_fields.json()["code"]) == (400, 31)
    bad_field = api.v5("GET", f"prospects/{both['id']}", params={"fields": "email,shoeSize"})
    assert (bad_field.status_code, bad_field.json()) == (
        400,
        {
            "code": 51,
            "message": "Invalid parameter: fields. It contains an invalid or unknown field: "
            "shoeSize.",
        },
    )
    missing = api.v5("GET", "prospects/999999", params={"fields": "email"})
    assert missing.status_code == 404
    assert missing.json()["message"] == "Object not found"
    archived = emu.add_prospect("gone@example.com", is_archived=True)
    assert api.v5("GET", f"prospects/{archived['id']}", params={"fields": "id"}).status_code == 404


def test_patch(api: Api) -> None:
    emu = api.emu
    target = emu.add_prospect("p@example.com", updated_at="2020-01-01 00:00:00")
    response = api.v5(
        "PATCH",
        f"prospects/{target['id']}",
        body={"jobTitle": "CEO", "isDoNotEmail": False, "phone": None},
    )
    assert response.status_code == 200
    assert response.json() == {
        "id": target["id"],
        "email": "p@example.com",
        "jobTitle": "CEO",
        "isDoNotEmail": False,
        "phone": None,
    }
    stored = emu.prospect(target["id"])
    assert stored["job_title"] == "CEO"
    assert stored["updated_at"] > "2020-01-01 00:00:00"

    rejected = api.v5("PATCH", f"prospects/{target['id']}", body={"jobTitle": "X", "id": 5})
    assert (rejected.status_code, rejected.json()["code"]) == (400, 180)
    assert emu.prospect(target["id"])["job_title"] == "CEO"
    assert api.v5("PATCH", "prospects/999999", body={"jobTitle": "X"}).status_code == 404
    wrong_method = api.v5("DELETE", f"prospects/{target['id']}")
    assert (wrong_method.status_code, wrong_method.json()["code"]) == (405, 60)


def test_query_filters_and_paging(api: Api) -> None:
    emu = api.emu
    ids = [
        emu.add_prospect(f"q{n}@example.com", updated_at=f"2024-01-0{n + 1} 00:00:00")["id"]
        for n in range(5)
    ]
    emu.add_prospect("q0@example.com", is_archived=True)

    def query(**params: object) -> dict:
        response = api.v5("GET", "prospects", params={"fields": "id,email", **params})
        assert response.status_code == 200, response.text
        return response.json()

    everyone = query()
    assert [v["id"] for v in everyone["values"]] == ids
    assert everyone["nextPageToken"] is None and everyone["nextPageUrl"] is None
    assert [v["id"] for v in query(email="Q3@example.com")["values"]] == [ids[3]]
    assert [v["id"] for v in query(idGreaterThan=ids[2])["values"]] == ids[3:]
    assert [v["id"] for v in query(idLessThan=ids[1])["values"]] == ids[:1]
    after = query(updatedAtAfter="2024-01-03T00:00:00+00:00")
    assert [v["id"] for v in after["values"]] == ids[3:]
    newest = query(orderBy="updatedAt desc", limit=1)
    assert newest["values"] == [{"id": ids[4], "email": "q4@example.com"}]
    assert len(query(deleted="all")["values"]) == 6

    pages, params = [], {"limit": 2, "idGreaterThan": ids[0]}
    while True:
        page = query(**params)
        pages.append([v["id"] for v in page["values"]])
        if page["nextPageToken"] is None:
            break
        params = {"nextPageToken": page["nextPageToken"]}
    assert pages == [ids[1:3], ids[3:5]]

    first = query(limit=3)
    link = urlsplit(first["nextPageUrl"])
    assert f"{link.scheme}://{link.netloc}" == emu.url
    followed = requests.get(first["nextPageUrl"], headers=api.headers(), timeout=TIMEOUT).json()
    assert [v["id"] for v in followed["values"]] == ids[3:]
    assert parse_qs(link.query)["fields"] == ["id,email"]

    assert api.v5("GET", "prospects", params={"fields": "id", "limit": 1001}).status_code == 400
    assert api.v5("GET", "prospects").json()["code"] == 31


def test_upsert_latest_by_email(api: Api) -> None:
    emu = api.emu
    older = emu.add_prospect("u@example.com", last_activity_at="2024-01-01 00:00:00")
    latest = emu.add_prospect("u@example.com", last_activity_at="2024-02-01 00:00:00")
    emu.add_prospect("u@example.com")  # never active: loses

    def upsert(email: str, prospect: dict, **extra: object) -> requests.Response:
        body = {"matchEmail": email, "prospect": prospect, "secondaryDeletedSearch": False, **extra}
        return api.v5("POST", "prospects/do/upsertLatestByEmail", body=body)

    updated = upsert("U@example.com", {"email": "u@example.com", "company": "Latest"})
    assert updated.status_code == 200
    assert updated.json() == {"id": latest["id"], "email": "u@example.com"}
    assert emu.prospect(latest["id"])["company"] == "Latest"
    assert emu.prospect(older["id"])["company"] is None
    # The write made it the most recently active one, so it is chosen again.
    again = upsert("u@example.com", {"city": "Paris"}, fields=["city", "company"])
    assert again.json() == {
        "id": latest["id"],
        "email": "u@example.com",
        "city": "Paris",
        "company": "Latest",
    }

    created = upsert("fresh@example.com", {"firstName": "Fresh"})
    # Production clients see 200 for a create as well as for an update.
    assert created.status_code == 200
    assert emu.prospect(created.json()["id"])["email"] == "fresh@example.com"

    rejected = upsert("u@example.com", {"salesforceId": LEAD})
    assert (rejected.status_code, rejected.json()["code"]) == (400, 180)


def test_upsert_latest_ties_and_archived(api: Api) -> None:
    emu = api.emu
    stamp = "2024-03-03 03:03:03"
    emu.add_prospect("tie@example.com", last_activity_at=stamp)
    higher = emu.add_prospect("tie@example.com", last_activity_at=stamp)
    path = "prospects/do/upsertLatestByEmail"
    tie = api.v5("POST", path, body={"matchEmail": "tie@example.com", "prospect": {}})
    assert tie.json()["id"] == higher["id"]

    gone = emu.add_prospect("gone@example.com", is_archived=True)
    body = {
        "matchEmail": "gone@example.com",
        "prospect": {"city": "Back"},
        "secondaryDeletedSearch": True,
    }
    restored = api.v5("POST", path, body=body)
    assert (restored.status_code, restored.json()["id"]) == (200, gone["id"])
    assert emu.prospect(gone["id"])["is_archived"] is False

    emu.add_prospect("gone2@example.com", is_archived=True)
    body = {"matchEmail": "gone2@example.com", "prospect": {}, "secondaryDeletedSearch": False}
    made = api.v5("POST", path, body=body)
    assert made.status_code == 200
    assert made.json()["id"] != gone["id"]


def test_an_unknown_property_in_an_upsert_latest_body_is_refused_with_154(api: Api) -> None:
    path = "prospects/do/upsertLatestByEmail"
    body = {
        "matchEmail": "new@example.com",
        "prospect": {"firstName": "New"},
        "secondaryDeletedSearch": True,
        "matchFid": "00Q000000000001AAA",
    }
    refused = api.v5("POST", path, body=body)
    assert refused.status_code == 400
    assert refused.json() == {"code": 154, "message": "Invalid property in request: matchFid"}
    assert api.emu.prospects() == []  # nothing was written

    # The documented properties, all of them, are accepted.
    body.pop("matchFid")
    accepted = api.v5("POST", path, body={**body, "fields": ["id", "email"]})
    assert accepted.status_code == 200, accepted.text


def test_upsert_latest_created_status_is_an_option(api: Api) -> None:
    api.emu.upsert_created_status = 201
    path = "prospects/do/upsertLatestByEmail"
    body = {"matchEmail": "new@example.com", "prospect": {}, "fields": ["id", "createdAt"]}
    created = api.v5("POST", path, body=body)
    assert created.status_code == 201
    assert "T" in created.json()["createdAt"]
    assert api.v5("POST", path, body=body).status_code == 200


def test_custom_fields_endpoint(api: Api) -> None:
    api.emu.add_custom_field("org_id", name="Org")
    api.emu.add_custom_field("tags", type="Multi-Select", multi=True)
    fields = "id,name,fieldId,apiFieldId,type,isRecordMultipleResponses"
    response = api.v5("GET", "custom-fields", params={"fields": fields})
    assert response.status_code == 200
    body = response.json()
    assert body["nextPageToken"] is None
    assert [
        (v["fieldId"], v["apiFieldId"], v["name"], v["type"], v["isRecordMultipleResponses"])
        for v in body["values"]
    ] == [
        ("org_id", "org_id__c", "Org", "Text", False),
        ("tags", "tags__c", "tags", "Multi-Select", True),
    ]
    assert api.v5("GET", "custom-fields").status_code == 400
    unknown = api.v5("GET", "custom-fields", params={"fields": "id,apiName"})
    assert (unknown.status_code, unknown.json()["code"]) == (400, 51)


def test_multi_value_custom_fields(api: Api) -> None:
    api.emu.add_custom_field("tags", multi=True)
    created = api.v5(
        "POST",
        "prospects",
        params={"fields": "tags__c"},
        body={"email": "m@example.com", "tags__c": ["a", "b"]},
    )
    assert created.json()["tags__c"] == ["a", "b"]
    assert api.emu.prospect(created.json()["id"])["tags"] == ["a", "b"]


def test_custom_fields_go_by_their_api_name(api: Api) -> None:
    """Real v5 names custom fields `<fieldId>__c` and refuses the bare fieldId."""
    emu = api.emu
    emu.add_custom_field("org_id")
    emu.add_custom_field("tags", type="Multi-Select", multi=True)
    bare = api.v5("POST", "prospects", body={"email": "b@example.com", "org_id": "o-1"})
    assert (bare.status_code, bare.json()) == (
        400,
        {"code": 154, "message": "Invalid property in request: org_id"},
    )
    assert emu.prospects() == []
    empty = emu.add_prospect("e@example.com")
    read = api.v5("GET", f"prospects/{empty['id']}", params={"fields": "org_id__c,tags__c"})
    assert read.json() == {"id": empty["id"], "org_id__c": None, "tags__c": None}
    bare_fields = api.v5("GET", f"prospects/{empty['id']}", params={"fields": "org_id"})
    assert (bare_fields.status_code, bare_fields.json()["code"]) == (400, 51)
    assert bare_fields.json()["message"].endswith("unknown field: org_id.")
    patched = api.v5("PATCH", f"prospects/{empty['id']}", body={"org_id__c": "o-2"})
    assert patched.status_code == 200
    assert emu.prospect(empty["id"])["org_id"] == "o-2"
    query = api.v5(
        "GET", "prospects", params={"fields": "email,org_id__c", "email": "e@example.com"}
    )
    assert [v["org_id__c"] for v in query.json()["values"]] == ["o-2"]
    upsert = api.v5(
        "POST",
        "prospects/do/upsertLatestByEmail",
        body={"matchEmail": "e@example.com", "prospect": {"org_id": "x"}},
    )
    assert (upsert.status_code, upsert.json()["code"]) == (400, 154)
    assert emu.prospect(empty["id"])["org_id"] == "o-2"


def test_unique_emails_without_ampsea(api3: Api) -> None:
    assert api3.v5("POST", "prospects", body={"email": "one@example.com"}).status_code == 201
    duplicate = api3.v5("POST", "prospects", body={"email": "ONE@example.com"})
    assert (duplicate.status_code, duplicate.json()["code"]) == (400, 9)
    other = api3.v5("POST", "prospects", body={"email": "two@example.com"}).json()
    clash = api3.v5("PATCH", f"prospects/{other['id']}", body={"email": "one@example.com"})
    assert (clash.status_code, clash.json()["code"]) == (400, 54)
