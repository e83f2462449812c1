"""v4's Import API in the target: plan steps as v4 CSV rows, the calls against the emulator, and
the import writer driving them (which steps are imported, which go through the API)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pardot_emulator import DEFAULT_CREDENTIALS, PardotEmulator
from target_pardot.api.client import PardotClient
from target_pardot.dialects.importing import UPDATE_IMPORT, UPSERT_IMPORT, ImportWriter
from target_pardot.dialects.imports_state import ImportLedger
from target_pardot.dialects.v4_imports import V4ImportApi, V4ImportRows
from target_pardot.errors import TargetPardotError
from target_pardot.identify import normalise_record
from target_pardot.matching import Group, Identity
from target_pardot.outcomes import RejectFile, Result, RunReport
from target_pardot.plan import Action, Step
from target_pardot.prepare import Prepared
from target_pardot.settings import Settings

FID = "00Q000000000001"


def settings(emulator: PardotEmulator | None = None, **overrides: Any) -> Settings:
    url = emulator.url if emulator else "http://127.0.0.1:1"
    return Settings.from_config(
        {
            "business_unit_id": DEFAULT_CREDENTIALS["business_unit_id"],
            "client_id": DEFAULT_CREDENTIALS["client_id"],
            "client_secret": DEFAULT_CREDENTIALS["client_secret"],
            "refresh_token": DEFAULT_CREDENTIALS["refresh_token"],
            "login_url": url,
            "pardot_url": url,
            "api_version": 4,
            "write_method": "import",
            **overrides,
        }
    )


def group(identity: Identity, email: str | None = None, **fields: Any) -> Group:
    record = {"email": email, **fields} if email else dict(fields)
    prepared = Prepared(normalise_record("users", record), dict(fields))
    return Group(identity, [prepared], fields=dict(fields), email=email)


def by_id(prospect_id: int, email: str | None = None, **fields: Any) -> Step:
    return Step(
        Action.UPDATE, group(Identity("id", str(prospect_id)), email, **fields), prospect_id
    )


def by_fid(fid: str, email: str | None = None, **fields: Any) -> Step:
    return Step(Action.UPDATE, group(Identity("fid", fid), email, **fields), fid=fid)


def create(email: str, **fields: Any) -> Step:
    return Step(Action.CREATE, group(Identity("email", email), email, **fields))


# -- rows -------------------------------------------------------------------------------------


def test_an_update_by_pardot_id_is_a_prospect_id_row_of_v4_names() -> None:
    rows = V4ImportRows(settings())
    row = rows.row_for(by_id(17, "a@x.com", first_name="A", org_id="o1", is_do_not_email="1"))
    assert row is not None
    assert (row.kind, row.cells) == (
        UPDATE_IMPORT,
        {
            "prospect_id": "17",
            "email": "a@x.com",
            "first_name": "A",
            "org_id": "o1",
            "is_do_not_email": "1",
        },
    )
    assert row.names["prospect_id"] == "pardot_id"
    assert row.names["org_id"] == "org_id"
    assert not row.creates


def test_an_update_found_by_email_or_lookup_is_matched_by_the_id_found() -> None:
    found = Step(Action.UPDATE, group(Identity("email", "a@x.com"), "a@x.com", city="Oslo"), 42)
    row = V4ImportRows(settings()).row_for(found)
    assert row is not None
    assert row.cells == {"prospect_id": "42", "email": "a@x.com", "city": "Oslo"}


def test_an_update_by_salesforce_id_alone_is_a_salesforce_fid_row() -> None:
    row = V4ImportRows(settings()).row_for(by_fid(FID, city="Oslo"))
    assert row is not None
    assert row.cells == {"salesforce_fid": FID, "city": "Oslo"}
    assert row.names["salesforce_fid"] == "pardot_fid"


@pytest.mark.parametrize(
    "step",
    [
        create("new@x.com", city="Oslo"),  # a v4 import row cannot create
        Step(Action.UPDATE, group(Identity("id", "17", fid=FID)), 17, fid=FID),  # id + fid
        by_id(17, city=""),  # clears a field: an empty cell cannot say so
        by_id(17, tags=["a", "b"]),  # a multi-value field
    ],
    ids=["create", "id-and-fid", "clears", "list"],
)
def test_steps_a_v4_row_cannot_express_go_through_the_api(step: Step) -> None:
    assert V4ImportRows(settings()).row_for(step) is None


@pytest.mark.parametrize(
    ("sync_mode", "by", "reason", "through_api"),
    [
        # api mode refuses an unknown Pardot id too (batchUpdate): never a new prospect.
        ("upsert", "id", "Invalid prospect ID: no prospect has id 404", False),
        # batchUpsert creates a prospect for an unknown fid when the record has an email.
        ("upsert", "fid", "Invalid prospect fid: no prospect has Salesforce id 00Q1", True),
        (
            "upsert",
            "id",
            "Prospect is archived: the import does not restore deleted prospects",
            False,
        ),
        ("upsert", "id", "Invalid number entered for field seats", False),
        ("upsert", "id", "Prospect ID and FID do not match", False),
        ("update_only", "fid", "Invalid prospect fid: no prospect has Salesforce id 00Q1", False),
    ],
)
def test_rows_for_prospects_pardot_does_not_have_go_through_the_api_where_it_may_create(
    sync_mode: str, by: str, reason: str, through_api: bool
) -> None:
    rows = V4ImportRows(settings(sync_mode=sync_mode))
    step = by_id(404, "a@x.com", city="A") if by == "id" else by_fid(FID, city="A")
    row = rows.row_for(step)
    assert row is not None
    assert rows.through_api_after(row, reason) is through_api


# -- the calls, against the emulator ----------------------------------------------------------


@pytest.fixture
def emulator(make_emulator: Any) -> PardotEmulator:
    return make_emulator(ampsea=True)


def test_an_import_declares_every_column_without_null_overwrite(emulator: PardotEmulator) -> None:
    kept = emulator.add_prospect("a@x.com", city="Oslo", company="Acme")
    api = V4ImportApi(PardotClient(settings(emulator)), settings(emulator))
    header = ["prospect_id", "city", "company"]
    first = f"prospect_id,city,company\r\n{kept['id']},,New\r\n".encode()
    import_id = api.create(kind=UPDATE_IMPORT, header=header, rules={}, first_batch=first)
    api.add_batch(import_id, 2, f"prospect_id,city,company\r\n{kept['id']},,Newer\r\n".encode())
    assert api.read(import_id).status == "Open"
    api.start(import_id)
    status = api.read(import_id)
    assert (status.status, status.updated, status.errors) == ("Complete", 2, 0)
    held = emulator.prospect(kept["id"])
    assert held is not None
    # v4's default would have cleared the city: every column is declared nullOverwrite false.
    assert (held["city"], held["company"]) == ("Oslo", "Newer")
    (snapshot,) = emulator.imports()
    assert (snapshot["api"], snapshot["batches"], snapshot["restoreDeleted"]) == ("v4", 2, True)


def test_restore_deleted_is_what_api_modes_call_would_do(emulator: PardotEmulator) -> None:
    for mode, restores in (("upsert", True), ("update_only", False)):
        api = V4ImportApi(PardotClient(settings(emulator)), settings(emulator, sync_mode=mode))
        api.create(
            kind=UPDATE_IMPORT,
            header=["prospect_id"],
            rules={},
            first_batch=b"prospect_id\r\n1\r\n",
        )
        assert emulator.imports()[-1]["restoreDeleted"] is restores


def test_error_rows_come_back_as_pardots_csv(emulator: PardotEmulator) -> None:
    api = V4ImportApi(PardotClient(settings(emulator)), settings(emulator))
    first = b"prospect_id,city\r\n999999,Oslo\r\n"
    import_id = api.create(
        kind=UPDATE_IMPORT, header=["prospect_id", "city"], rules={}, first_batch=first
    )
    api.start(import_id)
    assert api.read(import_id).errors == 1
    assert api.error_file(import_id).decode().splitlines() == [
        "prospect_id,city,error",
        "999999,Oslo,Invalid prospect ID: no prospect has id 999999",
    ]


def test_a_v4_import_is_never_asked_to_create() -> None:
    api = V4ImportApi(PardotClient(settings()), settings())
    with pytest.raises(TargetPardotError, match="cannot create"):
        api.create(kind=UPSERT_IMPORT, header=["email"], rules={}, first_batch=b"email\r\n")


# -- the writer with v4 rows ------------------------------------------------------------------


class Writer:
    def __init__(self, emulator: PardotEmulator, tmp_path: Path, **overrides: Any) -> None:
        self.settings = settings(
            emulator, import_state_path=str(tmp_path / "imports.json"), **overrides
        )
        self.reject_path = tmp_path / "rejects.jsonl"
        self.report = RunReport(RejectFile(str(self.reject_path)), 1.0)
        self.applied: list[tuple[Step, Result]] = []
        self.writer = ImportWriter(
            api=V4ImportApi(PardotClient(self.settings), self.settings),
            rows=V4ImportRows(self.settings),
            ledger=ImportLedger.for_settings(self.settings, api="v4"),
            settings=self.settings,
            report=self.report,
            on_applied=lambda step, result: self.applied.append((step, result)),
            sleep=lambda seconds: None,
        )

    def counts(self) -> dict[str, int]:
        return {result.value: n for result, n in self.report.results.items() if n}

    def rejects(self) -> list[dict[str, Any]]:
        self.report.rejects.close()
        if not self.reject_path.exists():
            return []
        return [json.loads(line) for line in self.reject_path.read_text().splitlines()]


def test_updates_are_imported_and_the_rest_is_handed_back_for_the_api(
    emulator: PardotEmulator, tmp_path: Path
) -> None:
    one = emulator.add_prospect("one@x.com", city="Old")
    two = emulator.add_prospect("two@x.com", city="Old", crm_lead_fid=FID)
    gone = emulator.add_prospect("gone@x.com", city="Old", is_archived=True)
    writer = Writer(emulator, tmp_path)
    steps = [
        by_id(one["id"], "one@x.com", city="By id"),
        by_fid(FID, city="By fid"),
        by_id(gone["id"], city="Restored"),  # batchUpsert would restore it too
        by_id(999999, "new@x.com", city="Unknown id"),  # refused, as batchUpdate would
        create("c@x.com", city="Created"),
        by_id(one["id"], phone=""),  # clears: only the API can say so
    ]
    left = writer.writer.write(steps)
    assert left == [steps[4], steps[5]]
    (job,) = emulator.imports()
    assert (job["api"], job["rows"], job["status"]) == ("v4", 4, "Complete")
    assert writer.counts() == {"updated": 3, "rejected": 1}
    assert [(r["field"], r["code"]) for r in writer.rejects()] == [("pardot_id", 3)]
    assert [step for step, _ in writer.applied] == steps[:3]
    held = {p["id"]: (p["city"], p["is_archived"]) for p in emulator.prospects(True)}
    assert held[one["id"]] == ("By id", False)
    assert held[two["id"]] == ("By fid", False)
    assert held[gone["id"]] == ("Restored", False)
    assert not writer.writer.ledger.exists()


def test_in_update_only_refused_rows_are_rejects_with_pardots_reason(
    emulator: PardotEmulator, tmp_path: Path
) -> None:
    emulator.add_custom_field("seats", type="Number")
    gone = emulator.add_prospect("gone@x.com", is_archived=True)
    fine = emulator.add_prospect("fine@x.com")
    writer = Writer(emulator, tmp_path, sync_mode="update_only")
    left = writer.writer.write(
        [
            by_id(999999, "new@x.com", city="A"),
            by_fid("00Q000000000404", city="B"),
            by_id(gone["id"], city="C"),
            by_id(fine["id"], seats="many"),
            by_id(fine["id"], city="D"),
        ]
    )
    assert left == []
    rejects = {(r["field"], r["code"]): r["reason"] for r in writer.rejects()}
    assert rejects == {
        (
            "pardot_id",
            3,
        ): "Pardot's import refused it: Invalid prospect ID: no prospect has id 999999",
        ("pardot_fid", 77): "Pardot's import refused it: Invalid prospect fid: no prospect has "
        "Salesforce id 00Q000000000404",
        (None, 132): "Pardot's import refused it: Prospect is archived: the import does not "
        "restore deleted prospects",
        ("seats", 56): "Pardot's import refused it: Invalid number entered for field seats",
    }
    assert writer.counts() == {"updated": 1, "rejected": 4}
