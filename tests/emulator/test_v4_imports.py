"""The emulated v4 Import API: its endpoints and answers, the CSV rules, and v4's strict
matching (prospect_id / salesforce_fid, never a create)."""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

import pytest
import requests

from pardot_emulator import PardotEmulator

from .helpers import TIMEOUT, Api, err_code

PREFIX = "/api/import/version/4/do"
CREATE = {"operation": "Upsert", "object": "Prospect"}


def csv_bytes(*rows: list[Any]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode()


class Imports:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.url = api.emu.url + PREFIX

    def create(self, spec: dict[str, Any] | None = None, file: bytes | None = None) -> Any:
        body = CREATE if spec is None else spec
        if file is None:
            return requests.post(
                f"{self.url}/create", json=body, headers=self.api.headers(), timeout=TIMEOUT
            )
        files = {
            "importInput": (None, json.dumps(body), "application/json"),
            "importFile": ("batch.csv", file, "text/csv"),
        }
        return requests.post(
            f"{self.url}/create", files=files, headers=self.api.headers(), timeout=TIMEOUT
        )

    def add(self, import_id: int, file: bytes) -> Any:
        return requests.post(
            f"{self.url}/batch/id/{import_id}",
            files={"importFile": ("batch.csv", file, "text/csv")},
            headers=self.api.headers(),
            timeout=TIMEOUT,
        )

    def start(self, import_id: int, body: dict[str, Any] | None = None) -> Any:
        return requests.patch(
            f"{self.url}/update/id/{import_id}",
            json={"state": "Ready"} if body is None else body,
            headers=self.api.headers(),
            timeout=TIMEOUT,
        )

    def read(self, import_id: int) -> Any:
        return requests.get(
            f"{self.url}/read/id/{import_id}", headers=self.api.headers(), timeout=TIMEOUT
        )

    def errors(self, import_id: int) -> Any:
        return requests.get(
            f"{self.url}/downloadErrors/id/{import_id}",
            headers=self.api.headers(),
            timeout=TIMEOUT,
        )

    def run(self, spec: dict[str, Any] | None, *batches: bytes) -> int:
        """Create with the first batch, add the others, start; the import's id."""
        created = self.create(spec, batches[0])
        assert created.status_code == 200, created.text
        import_id = created.json()["id"]
        for batch in batches[1:]:
            added = self.add(import_id, batch)
            assert added.status_code == 204, added.text
        started = self.start(import_id)
        assert started.status_code == 200, started.text
        return import_id

    def error_rows(self, import_id: int) -> list[list[str]]:
        answer = self.errors(import_id)
        assert answer.status_code == 200, answer.text
        assert answer.headers["Content-Type"].startswith("text/csv")
        return list(csv.reader(io.StringIO(answer.text)))


@pytest.fixture
def imports(api: Api) -> Imports:
    return Imports(api)


# -- the calls and their answers --------------------------------------------------------------


def test_create_batch_start_read_answer_as_the_v4_guide_shows(
    emu: PardotEmulator, imports: Imports
) -> None:
    emu.import_delay = 3600.0
    one = emu.add_prospect("one@example.com", first_name="Old")
    two = emu.add_prospect("two@example.com", first_name="Old")
    header = ["prospect_id", "first_name"]

    created = imports.create(CREATE)  # JSON body, no file: batches follow
    assert created.status_code == 200
    import_id = created.json()["id"]
    assert created.json() == {
        "id": import_id,
        "state": "Open",
        "isExpired": False,
        "batchesRef": f"{emu.url}{PREFIX}/batch/id/{import_id}",
    }
    for prospect in (one, two):
        added = imports.add(import_id, csv_bytes(header, [prospect["id"], "New"]))
        assert (added.status_code, added.content) == (204, b"")
    started = imports.start(import_id)
    assert started.status_code == 200
    assert started.json() == {"id": import_id, "state": "Waiting", "isExpired": False}
    assert imports.read(import_id).json() == {
        "id": import_id,
        "state": "Waiting",
        "isExpired": False,
    }

    emu.import_delay = 0.0
    assert imports.read(import_id).json() == {
        "id": import_id,
        "state": "Complete",
        "isExpired": False,
        "createdCount": 0,
        "updatedCount": 2,
    }
    assert {p["first_name"] for p in emu.prospects()} == {"New"}


def test_state_ready_at_create_queues_the_csv_sent_with_it(
    emu: PardotEmulator, imports: Imports
) -> None:
    emu.import_delay = 3600.0
    one = emu.add_prospect("one@example.com")
    ready = imports.create(
        {**CREATE, "state": "Ready"}, csv_bytes(["prospect_id", "city"], [one["id"], "Oslo"])
    )
    assert ready.status_code == 200
    assert ready.json() == {"id": ready.json()["id"], "state": "Waiting", "isExpired": False}
    without_file = imports.create({**CREATE, "state": "Ready"})
    assert (without_file.status_code, err_code(without_file)) == (400, 161)


def test_a_batch_is_taken_only_while_the_import_is_open(
    emu: PardotEmulator, imports: Imports
) -> None:
    one = emu.add_prospect("one@example.com")
    file = csv_bytes(["prospect_id", "city"], [one["id"], "Oslo"])
    import_id = imports.run(CREATE, file)
    late = imports.add(import_id, file)
    assert (late.status_code, err_code(late)) == (400, 161)
    again = imports.start(import_id)
    assert (again.status_code, err_code(again)) == (400, 161)
    empty = imports.create(CREATE).json()["id"]
    assert err_code(imports.start(empty)) == 161  # no batch yet


def test_only_the_state_may_be_set_and_only_to_ready(imports: Imports) -> None:
    import_id = imports.create(CREATE).json()["id"]
    assert err_code(imports.start(import_id, {"state": "Ready", "restoreDeleted": True})) == 154
    assert err_code(imports.start(import_id, {"state": "Complete"})) == 154


def test_create_checks_the_import_description(imports: Imports) -> None:
    assert err_code(imports.create({**CREATE, "operation": "Insert"})) == 154
    assert err_code(imports.create({**CREATE, "object": "Opportunity"})) == 154
    # v4 has no createOnNoMatch: a v5 property is refused, not ignored.
    assert err_code(imports.create({**CREATE, "createOnNoMatch": True})) == 154
    assert err_code(imports.create({**CREATE, "restoreDeleted": "yes"})) == 154
    assert err_code(imports.create({**CREATE, "columns": {"city": {}}})) == 154
    assert err_code(imports.create({**CREATE, "columns": [{"overwrite": True}]})) == 154
    assert err_code(imports.create({**CREATE, "columns": [{"field": "city", "x": 1}]})) == 154


def test_unknown_imports_paths_and_methods(emu: PardotEmulator, imports: Imports) -> None:
    missing = imports.read(424242)
    assert (missing.status_code, err_code(missing)) == (404, 3)
    wrong = requests.get(f"{imports.url}/create", headers=imports.api.headers(), timeout=TIMEOUT)
    assert (wrong.status_code, err_code(wrong)) == (405, 60)
    # An import made through v5 is not a v4 one.
    v5 = requests.post(
        f"{emu.url}/api/v5/imports",
        json={**CREATE, "createOnNoMatch": True},
        headers=imports.api.headers(),
        timeout=TIMEOUT,
    )
    assert v5.status_code == 201
    assert imports.read(v5.json()["id"]).status_code == 404


# -- the CSV ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "name"),
    [
        (["prospect_id", "favourite_colour"], "favourite_colour"),
        (["prospect_id", "firstName"], "firstName"),  # a v5 name
        (["prospect_id", "org_id__c"], "org_id__c"),  # v5's custom field name
        (["prospect_id", "crm_lead_fid"], "crm_lead_fid"),  # read-only
        (["prospect_id", "created_at"], "created_at"),
        (["id", "city"], "id"),
        (["prospect_id", "opted_out"], "opted_out"),
    ],
)
def test_a_column_that_is_not_a_writable_v4_field_refuses_the_whole_batch(
    emu: PardotEmulator, imports: Imports, header: list[str], name: str
) -> None:
    emu.add_custom_field("org_id")
    answer = imports.create(CREATE, csv_bytes(header, ["1"] * len(header)))
    assert (answer.status_code, err_code(answer)) == (400, 180)
    assert name in answer.json()["message"]
    assert emu.imports() == []  # a create whose file is refused keeps nothing


def test_v4_names_and_bare_custom_field_ids_are_columns(
    emu: PardotEmulator, imports: Imports
) -> None:
    emu.add_custom_field("org_id")
    emu.add_custom_field("seats", type="Number")
    one = emu.add_prospect("one@example.com")
    imports.run(
        CREATE,
        csv_bytes(
            ["prospect_id", "first_name", "is_do_not_email", "org_id", "seats", "email"],
            [one["id"], "Ann", "1", "o-1", "12", "new-one@example.com"],
        ),
    )
    held = emu.prospect(one["id"])
    assert held is not None
    assert (held["first_name"], held["is_do_not_email"], held["org_id"], held["seats"]) == (
        "Ann",
        True,
        "o-1",
        12,
    )
    assert held["email"] == "new-one@example.com"


def test_later_batches_repeat_the_first_header_in_the_same_order(imports: Imports) -> None:
    import_id = imports.create(CREATE, csv_bytes(["prospect_id", "city"], [1, "A"])).json()["id"]
    swapped = imports.add(import_id, csv_bytes(["city", "prospect_id"], ["B", 1]))
    assert (swapped.status_code, err_code(swapped)) == (400, 167)
    more = imports.add(import_id, csv_bytes(["prospect_id", "city", "zip"], [1, "B", "0150"]))
    assert (more.status_code, err_code(more)) == (400, 167)
    same = imports.add(import_id, csv_bytes(["prospect_id", "city"], [1, "B"]))
    assert same.status_code == 204


def test_the_eleventh_batch_is_refused_with_429(imports: Imports) -> None:
    file = csv_bytes(["prospect_id", "city"], [1, "A"])
    import_id = imports.create(CREATE, file).json()["id"]
    for _ in range(9):
        assert imports.add(import_id, file).status_code == 204
    eleventh = imports.add(import_id, file)
    assert (eleventh.status_code, err_code(eleventh)) == (429, 163)


def test_a_batch_over_10_mb_is_refused_with_413(imports: Imports) -> None:
    line = b"1000," + b"x" * 200 + b"\r\n"
    body = b"prospect_id,city\r\n" + line * (10 * 1024 * 1024 // len(line) + 1)
    answer = imports.create(CREATE, body)
    assert (answer.status_code, err_code(answer)) == (413, 165)
    import_id = imports.create(CREATE).json()["id"]
    added = imports.add(import_id, body)
    assert (added.status_code, err_code(added)) == (413, 165)


def test_the_daily_batch_limit_answers_164(emu: PardotEmulator, imports: Imports) -> None:
    emu.import_daily_batch_limit = 1
    file = csv_bytes(["prospect_id", "city"], [1, "A"])
    assert imports.create(CREATE, file).status_code == 200
    refused = imports.create(CREATE, file)
    assert (refused.status_code, err_code(refused)) == (429, 164)


@pytest.mark.parametrize(
    "columns",
    [
        [{"field": "prospect_id"}],  # fewer than the CSV
        [{"field": "prospect_id"}, {"field": "zip"}],  # one the CSV does not have
        [{"field": "prospect_id"}, {"field": "prospect_id"}],  # one twice, one missing
        [{"field": "prospect_id"}, {"field": "city"}, {"field": "zip"}],  # more
    ],
    ids=["fewer", "other", "twice", "more"],
)
def test_declared_columns_must_be_the_csv_columns(
    imports: Imports, columns: list[dict[str, Any]]
) -> None:
    file = csv_bytes(["prospect_id", "city"], [1, "A"])
    at_create = imports.create({**CREATE, "columns": columns}, file)
    assert (at_create.status_code, err_code(at_create)) == (400, 168)
    # Declared at create, checked against the first batch that comes later.
    import_id = imports.create({**CREATE, "columns": columns}).json()["id"]
    first = imports.add(import_id, file)
    assert (first.status_code, err_code(first)) == (400, 168)
    # In another order, they are the CSV's columns.
    ok = imports.create({**CREATE, "columns": [{"field": "city"}, {"field": "prospect_id"}]}, file)
    assert ok.status_code == 200, ok.text


# -- rows -------------------------------------------------------------------------------------


def test_rows_match_by_prospect_id_or_salesforce_fid_and_never_create(
    emu: PardotEmulator, imports: Imports
) -> None:
    by_id = emu.add_prospect("id@example.com", first_name="Old")
    by_fid = emu.add_prospect("fid@example.com", first_name="Old", crm_lead_fid="00Q000000000001")
    by_contact = emu.add_prospect("c@example.com", crm_contact_fid="003000000000009")
    both = emu.add_prospect("both@example.com", crm_lead_fid="00Q000000000002")
    import_id = imports.run(
        CREATE,
        csv_bytes(
            ["prospect_id", "salesforce_fid", "email", "first_name"],
            [by_id["id"], "", "", "ById"],
            ["", "00Q000000000001", "", "ByFid"],
            ["", "003000000000009", "", "ByContact"],
            [both["id"], "00Q000000000002", "", "Both"],
            ["", "", "new@example.com", "NoIdentifier"],
            ["999999", "", "made@example.com", "UnknownId"],
            ["", "00Q000000000404", "made@example.com", "UnknownFid"],
            ["x12", "", "", "NotANumber"],
            [by_id["id"], "00Q000000000001", "", "Disagree"],
        ),
    )
    assert imports.read(import_id).json() == {
        "id": import_id,
        "state": "Complete",
        "isExpired": False,
        "createdCount": 0,
        "updatedCount": 4,
        "errorCount": 5,
        "errorsRef": f"{emu.url}{PREFIX}/downloadErrors/id/{import_id}",
    }
    names = {p["id"]: p["first_name"] for p in emu.prospects()}
    assert names == {
        by_id["id"]: "ById",
        by_fid["id"]: "ByFid",
        by_contact["id"]: "ByContact",
        both["id"]: "Both",
    }
    rows = imports.error_rows(import_id)
    assert rows[0] == ["prospect_id", "salesforce_fid", "email", "first_name", "error"]
    reasons = {row[3]: row[-1] for row in rows[1:]}
    assert reasons["NoIdentifier"].startswith("One or more required parameters are missing")
    assert "prospect_id or a salesforce_fid" in reasons["NoIdentifier"]
    assert reasons["UnknownId"] == "Invalid prospect ID: no prospect has id 999999"
    assert reasons["UnknownFid"] == (
        "Invalid prospect fid: no prospect has Salesforce id 00Q000000000404"
    )
    assert reasons["NotANumber"].startswith("Invalid prospect ID")
    assert reasons["Disagree"] == "Prospect ID and FID do not match"


@pytest.mark.parametrize("restore", [False, True])
def test_a_prospect_in_the_recycle_bin_is_updated_only_with_restore_deleted(
    emu: PardotEmulator, imports: Imports, restore: bool
) -> None:
    gone = emu.add_prospect("gone@example.com", city="Old", is_archived=True)
    spec = {**CREATE, "restoreDeleted": restore}
    import_id = imports.run(spec, csv_bytes(["prospect_id", "city"], [gone["id"], "New"]))
    held = emu.prospect(gone["id"])
    assert held is not None
    if restore:
        assert (held["city"], held["is_archived"]) == ("New", False)
        assert imports.read(import_id).json()["updatedCount"] == 1
    else:
        assert (held["city"], held["is_archived"]) == ("Old", True)
        (_, row) = imports.error_rows(import_id)
        assert row[-1].startswith("Prospect is archived")


def test_empty_cells_clear_fields_by_default_unless_null_overwrite_is_false(
    emu: PardotEmulator, imports: Imports
) -> None:
    one = emu.add_prospect("one@example.com", city="Oslo", zip="0150", company="Acme")
    two = emu.add_prospect("two@example.com", city="Oslo", zip="0150", company="Acme")
    header = ["prospect_id", "city", "zip", "company"]
    # No columns given: nullOverwrite defaults to true in v4, so empty and blank cells clear.
    imports.run(CREATE, csv_bytes(header, [one["id"], "", "  ", "New"]))
    held = emu.prospect(one["id"])
    assert held is not None
    assert (held["city"], held["zip"], held["company"]) == (None, None, "New")

    columns = [
        {"field": "prospect_id"},
        {"field": "city", "nullOverwrite": False},
        {"field": "zip"},  # defaults: clears
        {"field": "company", "overwrite": False},
    ]
    imports.run({**CREATE, "columns": columns}, csv_bytes(header, [two["id"], "", "", "Other"]))
    held = emu.prospect(two["id"])
    assert held is not None
    assert (held["city"], held["zip"], held["company"]) == ("Oslo", None, "Acme")


def test_row_errors_leave_the_other_rows_applied(emu: PardotEmulator, imports: Imports) -> None:
    emu.add_custom_field("seats", type="Number")
    one = emu.add_prospect("one@example.com")
    two = emu.add_prospect("two@example.com")
    import_id = imports.run(
        CREATE,
        csv_bytes(
            ["prospect_id", "seats", "email"],
            [one["id"], "many", ""],
            [two["id"], "3", "not an email"],
            [two["id"], "4", ""],
        ),
    )
    reasons = [row[-1] for row in imports.error_rows(import_id)[1:]]
    assert reasons[0] == "Invalid number entered for field seats"
    assert reasons[1] == "Invalid prospect email address"
    held = emu.prospect(two["id"])
    assert held is not None and held["seats"] == 4


def test_errors_download_only_once_complete(emu: PardotEmulator, imports: Imports) -> None:
    emu.import_delay = 3600.0
    import_id = imports.run(CREATE, csv_bytes(["prospect_id", "city"], [999999, "A"]))
    early = imports.errors(import_id)
    assert (early.status_code, early.json()) == (
        400,
        {"code": 162, "message": "Import is not finished processing"},
    )
    emu.import_delay = 0.0
    rows = imports.error_rows(import_id)
    assert rows[1][:2] == ["999999", "A"]


def test_an_import_failing_part_way_reports_the_rest_as_internal_errors(
    emu: PardotEmulator, imports: Imports
) -> None:
    people = [emu.add_prospect(f"p{n}@example.com") for n in range(4)]
    emu.fail_next_import_after(1)
    rows = [[p["id"], "New"] for p in people]
    import_id = imports.run(CREATE, csv_bytes(["prospect_id", "city"], *rows))
    assert imports.read(import_id).json()["errorCount"] == 3
    assert [p["city"] for p in emu.prospects()] == ["New", None, None, None]
    reasons = {row[-1] for row in imports.error_rows(import_id)[1:]}
    assert reasons == {"An internal error occurred. Please try again"}


def test_an_import_left_open_expires(emu: PardotEmulator, imports: Imports) -> None:
    emu.import_open_lifetime = 0.2
    file = csv_bytes(["prospect_id", "city"], [1, "A"])
    import_id = imports.create(CREATE, file).json()["id"]
    time.sleep(0.3)
    assert imports.read(import_id).json() == {
        "id": import_id,
        "state": "Open",
        "isExpired": True,
        "batchesRef": f"{emu.url}{PREFIX}/batch/id/{import_id}",
    }
    late = imports.add(import_id, file)
    assert (late.status_code, err_code(late)) == (400, 161)
    assert "expired" in late.json()["message"]
    assert err_code(imports.start(import_id)) == 161


# -- like every other API call ----------------------------------------------------------------


def test_import_calls_are_authenticated_counted_and_limited(
    emu: PardotEmulator, imports: Imports
) -> None:
    one = emu.add_prospect("one@example.com")
    import_id = imports.run(
        CREATE,
        csv_bytes(["prospect_id", "city"], [one["id"], "A"]),
        csv_bytes(["prospect_id", "city"], [one["id"], "B"]),
    )
    imports.read(import_id)
    imports.errors(import_id)
    counts = emu.call_counts
    assert {name: counts[name] for name in counts if name.startswith("v4.import")} == {
        "v4.import.create": 1,
        "v4.import.batch": 1,
        "v4.import.update": 1,
        "v4.import.read": 1,
        "v4.import.downloadErrors": 1,
    }

    no_token = requests.get(f"{imports.url}/read/id/{import_id}", timeout=TIMEOUT)
    assert (no_token.status_code, err_code(no_token)) == (401, 184)
    no_unit = requests.get(
        f"{imports.url}/read/id/{import_id}",
        headers={"Authorization": f"Bearer {imports.api.token}"},
        timeout=TIMEOUT,
    )
    assert err_code(no_unit) == 181
    emu.daily_limit = 1  # already used up by the calls above
    over = imports.read(import_id)
    assert (over.status_code, err_code(over)) == (429, 122)


def test_a_business_unit_without_ampsea_refuses_v4_imports(
    make_emulator: Any, imports: Imports
) -> None:
    emu3 = make_emulator(ampsea=False)
    answer = Imports(Api(emu3)).create(CREATE)
    assert (answer.status_code, err_code(answer)) == (400, 89)
