"""The emulated v5 Import API: create, batches, start, asynchronous processing, error rows,
the CSV rules and the limits."""

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

IMPORTS = "/api/v5/imports"
CREATE = {"operation": "Upsert", "object": "Prospect", "createOnNoMatch": True}


def csv_bytes(*rows: list[Any]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode()


class Imports:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.url = api.emu.url + IMPORTS

    def create(self, spec: dict[str, Any] | None = None, file: bytes | None = None) -> Any:
        files: dict[str, Any] = {
            "input": (None, json.dumps(CREATE if spec is None else spec), "application/json")
        }
        if file is not None:
            files["file"] = ("batch.csv", file, "text/csv")
        return requests.post(self.url, files=files, headers=self.api.headers(), timeout=TIMEOUT)

    def add(self, import_id: int, file: bytes) -> Any:
        return requests.post(
            f"{self.url}/{import_id}/batches",
            files={"file": ("batch.csv", file, "text/csv")},
            headers=self.api.headers(),
            timeout=TIMEOUT,
        )

    def start(self, import_id: int, body: dict[str, Any] | None = None) -> Any:
        return requests.patch(
            f"{self.url}/{import_id}",
            json={"status": "Ready"} if body is None else body,
            headers=self.api.headers(),
            timeout=TIMEOUT,
        )

    def read(self, import_id: int, fields: str = "id,status,createdCount,updatedCount,errorCount"):
        return requests.get(
            f"{self.url}/{import_id}",
            params={"fields": fields},
            headers=self.api.headers(),
            timeout=TIMEOUT,
        )

    def errors(self, import_id: int, **kwargs: Any) -> Any:
        return requests.get(
            f"{self.url}/{import_id}/do/downloadErrors",
            headers=self.api.headers(),
            timeout=TIMEOUT,
            **kwargs,
        )

    def run(self, spec: dict[str, Any] | None, *batches: bytes) -> int:
        """Create with the first batch, add the others, start; the import's id."""
        created = self.create(spec, batches[0])
        assert created.status_code == 201, created.text
        import_id = created.json()["id"]
        for batch in batches[1:]:
            added = self.add(import_id, batch)
            assert added.status_code == 201, added.text
        started = self.start(import_id)
        assert started.status_code == 200, started.text
        return import_id


@pytest.fixture
def imports(api: Api) -> Imports:
    return Imports(api)


def test_an_import_upserts_by_each_match_column_and_creates_what_matches_nothing(
    emu: PardotEmulator, imports: Imports
) -> None:
    emu.add_custom_field("org_id")
    by_id = emu.add_prospect("id@example.com", first_name="Old")
    emu.add_prospect("mail@example.com", first_name="Old")
    by_fid = emu.add_prospect("fid@example.com", crm_lead_fid="00Q000000000001")
    header = ["matchId", "matchEmail", "matchSalesforceId", "email", "firstName", "org_id__c"]
    header += ["campaignId"]
    import_id = imports.run(
        CREATE,
        csv_bytes(
            header,
            [by_id["id"], "", "", "", "ById", "", 7],
            ["", "mail@example.com", "", "mail@example.com", "ByMail", "o2", 7],
            ["", "", "00Q000000000001", "", "ByFid", "", 7],
            ["", "new@example.com", "", "new@example.com", "New", "o4", 7],
            ["", "", "", "plain@example.com", "NoMatchColumn", "", 7],
        ),
    )
    answer = imports.read(import_id).json()
    assert answer == {
        "id": import_id,
        "status": "Complete",
        "createdCount": 2,
        "updatedCount": 3,
        "errorCount": 0,
    }
    people = {p["email"]: p for p in emu.prospects()}
    assert people["id@example.com"]["first_name"] == "ById"
    assert (people["mail@example.com"]["first_name"], people["mail@example.com"]["org_id"]) == (
        "ByMail",
        "o2",
    )
    assert people["fid@example.com"]["first_name"] == "ByFid"
    assert people["new@example.com"]["campaign_id"] == 7
    assert people["plain@example.com"]["first_name"] == "NoMatchColumn"
    assert by_fid["id"] in {p["id"] for p in emu.prospects()}


def test_empty_cells_leave_fields_alone_unless_null_overwrite_and_overwrite_false_fills_only(
    emu: PardotEmulator, imports: Imports
) -> None:
    kept = emu.add_prospect("a@example.com", first_name="Keep", city="Oslo", campaign_id=3)
    spec = {
        **CREATE,
        "fields": {"city": {"nullOverwrite": True}, "campaignId": {"overwrite": False}},
    }
    imports.run(
        spec,
        csv_bytes(
            ["matchId", "email", "firstName", "city", "campaignId"],
            [kept["id"], "", "", "", 9],
            ["", "b@example.com", "B", "", 9],
        ),
    )
    people = {p["email"]: p for p in emu.prospects()}
    assert people["a@example.com"]["first_name"] == "Keep"  # empty, nullOverwrite false
    assert people["a@example.com"]["city"] is None  # empty, nullOverwrite true: cleared
    assert people["a@example.com"]["campaign_id"] == 3  # overwrite false: kept
    assert people["b@example.com"]["campaign_id"] == 9  # a new prospect gets it


def test_processing_is_asynchronous_and_errors_download_only_when_complete(
    emu: PardotEmulator, imports: Imports
) -> None:
    emu.import_delay = 3600.0
    import_id = imports.run(
        {**CREATE, "createOnNoMatch": False},
        csv_bytes(["matchId", "firstName"], [999999, "Nobody"], ["x1", "Bad id"]),
    )
    assert imports.read(import_id).json()["status"] == "Waiting"
    early = imports.errors(import_id)
    assert early.status_code == 400
    assert early.json() == {"code": 162, "message": "Import is not finished processing"}

    emu.import_delay = 0.0
    read = imports.read(import_id, "status,errorCount,errorsRef").json()
    assert (read["status"], read["errorCount"]) == ("Complete", 2)
    redirect = imports.errors(import_id, allow_redirects=False)
    assert redirect.status_code == 302
    assert "/api/" not in redirect.headers["Location"]  # a storage link, not an API call
    calls = emu.api_calls
    rows = list(csv.reader(io.StringIO(imports.errors(import_id).text)))
    assert emu.api_calls == calls + 1  # following the redirect costs no API call
    assert rows[0] == ["matchId", "firstName", "error"]
    assert rows[1][:2] == ["999999", "Nobody"] and rows[1][2].startswith("Invalid prospect ID")
    assert rows[2][:2] == ["x1", "Bad id"]
    assert [i["status"] for i in emu.imports()] == ["Complete"]


def test_row_errors_are_reported_and_the_other_rows_applied(
    emu: PardotEmulator, imports: Imports
) -> None:
    emu.add_custom_field("seats", type="Number")
    one = emu.add_prospect("one@example.com")
    import_id = imports.run(
        CREATE,
        csv_bytes(
            ["matchId", "matchEmail", "email", "seats__c", "campaignId"],
            [one["id"], "", "", "not a number", 1],
            ["", "", "bad email", "", 1],
            [one["id"], "one@example.com", "", "", 1],
            ["", "ok@example.com", "ok@example.com", "3", 1],
        ),
    )
    assert imports.read(import_id).json()["errorCount"] == 3
    reasons = [row[-1] for row in csv.reader(io.StringIO(imports.errors(import_id).text))][1:]
    assert reasons[0].startswith("Invalid number entered for field seats__c")
    assert reasons[1].startswith("Invalid prospect email address")
    assert reasons[2].startswith("Only one of matchId")
    assert {p["email"] for p in emu.prospects()} == {"one@example.com", "ok@example.com"}


def test_a_failing_import_stops_part_way_and_reports_the_rest_as_internal_errors(
    emu: PardotEmulator, imports: Imports
) -> None:
    emu.fail_next_import_after(2)
    rows = [[f"p{n}@example.com", 1] for n in range(5)]
    import_id = imports.run(CREATE, csv_bytes(["email", "campaignId"], *rows))
    assert imports.read(import_id).json()["errorCount"] == 3
    assert len(emu.prospects()) == 2
    reasons = {row[-1] for row in csv.reader(io.StringIO(imports.errors(import_id).text))}
    assert "An internal error occurred. Please try again" in reasons
    # One-shot: the next import is whole.
    imports.run(CREATE, csv_bytes(["email", "campaignId"], *rows[2:]))
    assert len(emu.prospects()) == 5


@pytest.mark.parametrize(
    ("header", "code", "name"),
    [
        (["email", "campaignId", "favouriteColour"], 180, "favouriteColour"),
        (["email", "campaignId", "org_id"], 180, "org_id"),  # v5 wants org_id__c
        (["email", "campaignId", "createdAt"], 180, "createdAt"),  # read-only
        (["email", "campaignId", "id"], 180, "id"),
        (["email", "campaignId", "optedOut"], 180, "optedOut"),
        (["email", "campaignId", "email_bounced_reason"], 180, "email_bounced_reason"),
        (["email", "firstName"], 153, "campaignId"),
        (["matchEmail", "firstName", "campaignId"], 153, "email"),
    ],
)
def test_the_header_is_checked_before_anything_is_kept(
    emu: PardotEmulator, imports: Imports, header: list[str], code: int, name: str
) -> None:
    emu.add_custom_field("org_id")
    answer = imports.create(CREATE, csv_bytes(header, ["x"] * len(header)))
    assert answer.status_code == 400
    assert err_code(answer) == code
    assert name in answer.json()["message"]
    assert emu.imports() == []


def test_without_create_on_no_match_a_match_column_is_enough(imports: Imports) -> None:
    answer = imports.create(
        {**CREATE, "createOnNoMatch": False}, csv_bytes(["matchId", "firstName"], [1, "A"])
    )
    assert answer.status_code == 201, answer.text
    # ...but a header without any match column may create, so it needs email and campaignId.
    refused = imports.create({**CREATE, "createOnNoMatch": False}, csv_bytes(["firstName"], ["A"]))
    assert err_code(refused) == 153


def test_later_batches_repeat_the_first_header_exactly(imports: Imports) -> None:
    created = imports.create(CREATE, csv_bytes(["email", "campaignId"], ["a@example.com", 1]))
    import_id = created.json()["id"]
    swapped = imports.add(import_id, csv_bytes(["campaignId", "email"], [1, "b@example.com"]))
    assert (swapped.status_code, err_code(swapped)) == (400, 167)
    same = imports.add(import_id, csv_bytes(["email", "campaignId"], ["b@example.com", 1]))
    assert same.status_code == 201


@pytest.mark.parametrize(
    "file",
    [b"", b"email,campaignId\r\n", b"email,campaignId\r\na@example.com\r\n", b"\xff\xfe\x00"],
)
def test_an_empty_short_or_unreadable_file_is_refused(imports: Imports, file: bytes) -> None:
    answer = imports.create(CREATE, file)
    assert (answer.status_code, err_code(answer)) == (400, 166)


def test_a_batch_over_10_mb_is_refused_with_413(imports: Imports) -> None:
    line = b"padding-" * 16 + b"@example.com,1\r\n"
    body = b"email,campaignId\r\n" + line * (10 * 1024 * 1024 // len(line) + 1)
    assert len(body) > 10 * 1024 * 1024
    answer = imports.create(CREATE, body)
    assert (answer.status_code, err_code(answer)) == (413, 165)


def test_the_eleventh_batch_of_an_import_is_refused_with_429(imports: Imports) -> None:
    created = imports.create(CREATE, csv_bytes(["email", "campaignId"], ["a0@example.com", 1]))
    import_id = created.json()["id"]
    for n in range(1, 10):
        added = imports.add(import_id, csv_bytes(["email", "campaignId"], [f"a{n}@x.com", 1]))
        assert added.status_code == 201
    eleventh = imports.add(import_id, csv_bytes(["email", "campaignId"], ["late@x.com", 1]))
    assert (eleventh.status_code, err_code(eleventh)) == (429, 163)


def test_the_daily_batch_limit_answers_164_until_the_day_is_reset(
    emu: PardotEmulator, imports: Imports
) -> None:
    emu.import_daily_batch_limit = 2
    file = csv_bytes(["email", "campaignId"], ["a@example.com", 1])
    assert imports.create(CREATE, file).status_code == 201
    assert imports.create(CREATE, file).status_code == 201
    third = imports.create(CREATE, file)
    assert (third.status_code, err_code(third)) == (429, 164)
    assert third.json()["message"] == "Daily import batch limit met"
    emu.reset_daily_usage()
    assert imports.create(CREATE, file).status_code == 201


def test_only_the_status_may_be_set_and_only_on_an_open_import_with_a_batch(
    imports: Imports,
) -> None:
    empty = imports.create(CREATE).json()["id"]
    assert err_code(imports.start(empty)) == 161  # no batch yet
    import_id = imports.run(CREATE, csv_bytes(["email", "campaignId"], ["a@example.com", 1]))
    again = imports.start(import_id)
    assert (again.status_code, err_code(again)) == (400, 161)
    assert "Complete" in again.json()["message"] or "Waiting" in again.json()["message"]
    other = imports.start(empty, {"status": "Ready", "createOnNoMatch": False})
    assert err_code(other) == 154
    late = imports.add(import_id, csv_bytes(["email", "campaignId"], ["b@example.com", 1]))
    assert err_code(late) == 161


def test_an_import_left_open_expires_and_then_takes_no_batch_and_no_start(
    emu: PardotEmulator, imports: Imports
) -> None:
    emu.import_open_lifetime = 0.2
    emu.import_delay = 60  # the started import stays Waiting meanwhile
    file = csv_bytes(["email", "campaignId"], ["a@example.com", 1])
    started_in_time = imports.run(CREATE, file)
    import_id = imports.create(CREATE, file).json()["id"]
    assert imports.read(import_id, "status,isExpired").json()["isExpired"] is False
    time.sleep(0.3)
    assert imports.read(import_id, "status,isExpired").json() == {
        "id": import_id,
        "status": "Open",
        "isExpired": True,
    }
    late = imports.add(import_id, file)
    assert (late.status_code, err_code(late)) == (400, 161)
    assert "expired" in late.json()["message"]
    start = imports.start(import_id)
    assert (start.status_code, err_code(start)) == (400, 161)
    assert "expired" in start.json()["message"]
    assert emu.imports()[1]["batches"] == 1  # the refused batch was not kept
    # Only Open imports expire: one started in time goes on.
    assert imports.read(started_in_time, "status,isExpired").json() == {
        "id": started_in_time,
        "status": "Waiting",
        "isExpired": False,
    }


def test_create_checks_the_import_description(imports: Imports) -> None:
    assert err_code(imports.create({**CREATE, "operation": "Insert"})) == 154
    assert err_code(imports.create({**CREATE, "object": "Opportunity"})) == 154
    assert err_code(imports.create({**CREATE, "colour": "red"})) == 154
    assert err_code(imports.create({**CREATE, "fields": {"nope": {"overwrite": True}}})) == 180
    ready = imports.create(
        {**CREATE, "status": "Ready"}, csv_bytes(["email", "campaignId"], ["a@example.com", 1])
    )
    assert ready.status_code == 201 and ready.json()["status"] in ("Waiting", "Complete")


def test_reads_need_fields_and_know_the_import_fields(imports: Imports) -> None:
    import_id = imports.create(CREATE).json()["id"]
    assert err_code(imports.read(import_id, "")) == 31
    assert err_code(imports.read(import_id, "status,colour")) == 51
    missing = imports.read(424242)
    assert missing.status_code == 404


def test_imports_count_as_api_calls_under_their_own_endpoint_names(
    emu: PardotEmulator, imports: Imports
) -> None:
    import_id = imports.run(
        CREATE,
        csv_bytes(["email", "campaignId"], ["a@example.com", 1]),
        csv_bytes(["email", "campaignId"], ["b@example.com", 1]),
    )
    imports.read(import_id)
    imports.errors(import_id)
    counts = emu.call_counts
    assert {name: counts[name] for name in counts if name.startswith("v5.imports")} == {
        "v5.imports.create": 1,
        "v5.imports.addBatch": 1,
        "v5.imports.update": 1,
        "v5.imports.read": 1,
        "v5.imports.downloadErrors": 1,
    }
    wrong = requests.delete(
        f"{imports.url}/{import_id}", headers=imports.api.headers(), timeout=TIMEOUT
    )
    assert (wrong.status_code, err_code(wrong)) == (405, 60)
