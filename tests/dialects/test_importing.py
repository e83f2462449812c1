"""The import writer without HTTP: rows, batches, lost answers, polling, error rows, resume.

A fake Import API keeps imports in memory and lets each test decide what Pardot does.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from target_pardot.dialects import importing
from target_pardot.dialects.importing import (
    UPDATE_IMPORT,
    UPSERT_IMPORT,
    ColumnNames,
    ImportStatus,
    ImportWriter,
    Row,
)
from target_pardot.dialects.imports_state import ImportLedger, LedgerEntry
from target_pardot.dialects.v5.imports import V5ImportRows
from target_pardot.errors import (
    AmbiguousWriteError,
    PardotAPIError,
    TargetPardotError,
    TransientError,
)
from target_pardot.fields import CustomField, FieldCatalog
from target_pardot.identify import normalise_record
from target_pardot.matching import Group, Identity
from target_pardot.outcomes import RejectFile, Result, RunReport
from target_pardot.plan import Action, Step
from target_pardot.prepare import Prepared
from target_pardot.settings import Settings

CATALOG = FieldCatalog.from_custom_fields([CustomField("org_id")])
Reason = Callable[[dict[str, str]], str | None]


def settings(**overrides: Any) -> Settings:
    return Settings.from_config(
        {
            "business_unit_id": "0Uv000000000001AAA",
            "access_token": "t",
            "api_version": 5,
            "write_method": "import",
            "campaign_id": 7,
            "max_retries": 3,
            **overrides,
        }
    )


def group(email: str | None, kind: str = "email", value: str | None = None, **fields: Any) -> Group:
    record = {"email": email, **fields} if email else dict(fields)
    prepared = Prepared(normalise_record("users", record), dict(fields))
    identity = Identity(kind, value or (email or "x").lower())
    return Group(identity, [prepared], fields=dict(fields), email=email)


def update(prospect_id: int, **fields: Any) -> Step:
    return Step(Action.UPDATE, group(None, "id", str(prospect_id), **fields), prospect_id)


def upsert(email: str, **fields: Any) -> Step:
    return Step(Action.UPSERT_BY_EMAIL, group(email, **fields))


def create(email: str, **fields: Any) -> Step:
    return Step(Action.CREATE, group(email, "new", email, **fields))


class FakeApi:
    """Pardot's Import API in memory: imports, their batches, and what processing gives."""

    def __init__(self) -> None:
        self.imports: dict[int, dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()
        self.lose: Counter[str] = Counter()  # method -> answers to lose (applied, then lost)
        self.polls_until_complete = 0
        self.reason: Reason = lambda row: None  # a row's error reason, None when applied
        self.existing_emails: set[str] = set()

    def _lost(self, method: str) -> None:
        if self.lose[method]:
            self.lose[method] -= 1
            raise AmbiguousWriteError(f"v5.imports.{method}", "connection reset")

    def create(
        self,
        *,
        kind: str,
        header: list[str],
        rules: dict[str, dict[str, bool]],
        first_batch: bytes,
    ) -> int:
        self.calls["create"] += 1
        import_id = len(self.imports) + 1
        assert first_batch.decode().splitlines()[0] == ",".join(header)
        self.imports[import_id] = {
            "create": kind == UPSERT_IMPORT,
            "rules": rules,
            "batches": [first_batch],
            "status": "Open",
            "polls": 0,
        }
        self._lost("create")
        return import_id

    def add_batch(self, import_id: int, number: int, batch: bytes) -> None:
        self.calls["add_batch"] += 1
        self.imports[import_id]["batches"].append(batch)
        self._lost("add_batch")

    def start(self, import_id: int) -> None:
        self.calls["start"] += 1
        assert self.imports[import_id]["status"] == "Open", "started twice"
        self.imports[import_id]["status"] = "Waiting"
        self._lost("start")

    def rows(self, import_id: int) -> tuple[list[str], list[dict[str, str]]]:
        header: list[str] = []
        rows: list[dict[str, str]] = []
        for batch in self.imports[import_id]["batches"]:
            table = list(csv.reader(io.StringIO(batch.decode())))
            assert not header or table[0] == header, "later batches must repeat the header"
            header = table[0]
            rows += [dict(zip(header, cells, strict=True)) for cells in table[1:]]
        return header, rows

    def read(self, import_id: int) -> ImportStatus:
        self.calls["read"] += 1
        job = self.imports[import_id]
        if job["status"] == "Open":
            return ImportStatus("Open")
        job["polls"] += 1
        if job["polls"] <= self.polls_until_complete:
            return ImportStatus("Processing")
        job["status"] = "Complete"
        _, rows = self.rows(import_id)
        ok = [row for row in rows if self.reason(row) is None]
        created = sum(
            1
            for row in ok
            if not row.get("matchId") and row.get("matchEmail") not in self.existing_emails
        )
        return ImportStatus("Complete", created, len(ok) - created, len(rows) - len(ok))

    def error_file(self, import_id: int) -> bytes:
        self.calls["error_file"] += 1
        header, rows = self.rows(import_id)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([*header, "error"])
        for row in rows:
            reason = self.reason(row)
            if reason is not None:
                writer.writerow([*(row[c] for c in header), reason])
        return out.getvalue().encode()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Harness:
    def __init__(self, tmp_path: Path, **overrides: Any) -> None:
        self.settings = settings(import_state_path=str(tmp_path / "ledger.json"), **overrides)
        self.report = RunReport(RejectFile(str(tmp_path / "rejects.jsonl")), 1.0)
        self.api = FakeApi()
        self.clock = Clock()
        self.ledger = ImportLedger.for_settings(self.settings, api="v5")
        self.applied: list[tuple[Action, Result]] = []
        self.rows = V5ImportRows(self.settings, self.report, lambda: CATALOG)
        self.writer = ImportWriter(
            api=self.api,
            rows=self.rows,
            ledger=self.ledger,
            settings=self.settings,
            report=self.report,
            on_applied=lambda step, result: self.applied.append((step.action, result)),
            sleep=self.clock.sleep,
            monotonic=lambda: self.clock.now,
        )
        self.reject_path = tmp_path / "rejects.jsonl"

    def counts(self) -> dict[str, int]:
        return {result.value: n for result, n in self.report.results.items() if n}

    def rejects(self) -> list[dict[str, Any]]:
        self.report.rejects.close()
        if not self.reject_path.exists():
            return []
        return [json.loads(line) for line in self.reject_path.read_text().splitlines()]


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


# -- rows -------------------------------------------------------------------------------------


def test_each_step_becomes_one_v5_row_matched_as_the_plan_says(harness: Harness) -> None:
    rows = harness.rows
    by_id = rows.row_for(update(17, first_name="A", org_id="o1"))
    assert by_id is not None
    assert (by_id.kind, by_id.cells) == (
        UPDATE_IMPORT,
        {"matchId": "17", "firstName": "A", "org_id__c": "o1"},
    )
    assert by_id.names["org_id__c"] == "org_id"
    by_email = rows.row_for(upsert("A@x.com", is_do_not_email=True, score=5))
    assert by_email is not None
    assert (by_email.kind, by_email.cells) == (
        UPSERT_IMPORT,
        {
            "matchEmail": "A@x.com",
            "email": "A@x.com",
            "isDoNotEmail": "true",
            "score": "5",
            "campaignId": "7",
        },
    )
    made = rows.row_for(create("new@x.com"))
    assert made is not None
    assert made.cells == {"email": "new@x.com", "campaignId": "7"}
    assert made.creates and not by_email.creates


def test_rows_of_one_shape_share_one_dict_of_column_names(harness: Harness) -> None:
    # An import holds up to 50,000 rows: one names dict per shape, not one per row.
    first, second, other = (
        harness.rows.row_for(step)
        for step in (
            update(1, first_name="A", org_id="o1"),
            update(2, first_name="B", org_id="o2"),
            upsert("c@x.com", first_name="C"),
        )
    )
    assert first is not None and second is not None and other is not None
    assert first.names is second.names
    assert first.names == {"firstName": "first_name", "org_id__c": "org_id"}
    assert other.names == {"firstName": "first_name", "email": "email", "matchEmail": "email"}


def test_column_names_keep_a_bounded_number_of_shapes() -> None:
    names = ColumnNames()
    kept = [names.shared({f"column{n}": f"field{n}"}) for n in range(ColumnNames.MAX_SHAPES)]
    assert names.shared({"column0": "field0"}) is kept[0]
    late = {"column": "field"}
    assert names.shared(late) is late
    assert names.shared(dict(late)) is not late  # beyond the limit, each row keeps its own


@pytest.mark.parametrize(
    "step",
    [
        update(17, city=""),  # clears a field: an empty cell cannot say so
        upsert("a@x.com", tags=["a", "b"]),  # a multi-value field
        Step(Action.UPDATE, group(None, "id", "17"), 17, fid="00Q000000000001"),  # id + fid
    ],
    ids=["clears", "list", "id-and-fid"],
)
def test_steps_a_csv_row_cannot_express_go_through_the_api(harness: Harness, step: Step) -> None:
    assert harness.rows.row_for(step) is None
    assert harness.writer.write([step]) == [step]
    assert harness.api.calls == {}


@pytest.mark.parametrize(
    ("method", "groups", "wanted"),
    [("api", 5000, False), ("import", 1, True), ("auto", 100, False), ("auto", 101, True)],
)
def test_which_batches_are_imported(tmp_path: Path, method: str, groups: int, wanted: bool) -> None:
    writer = Harness(tmp_path, write_method=method, import_threshold=100).writer
    assert writer.wanted([create(f"n{n}@x.com") for n in range(groups)]) is wanted


# -- one import -------------------------------------------------------------------------------


def test_updates_and_upserts_go_in_separate_imports_started_after_the_ledger_entry(
    harness: Harness,
) -> None:
    seen_in_ledger: list[list[int]] = []
    start = harness.api.start

    def checking_start(import_id: int) -> None:
        seen_in_ledger.append([e.import_id for e in harness.ledger.pending()])
        start(import_id)

    harness.api.start = checking_start  # type: ignore[method-assign]
    harness.api.existing_emails = {"old@x.com"}
    leftover = harness.writer.write(
        [update(5, city="Oslo"), upsert("old@x.com"), upsert("new@x.com"), create("c@x.com")]
    )
    assert leftover == []
    assert seen_in_ledger == [[1], [2]]  # each import recorded before it was started
    assert [job["create"] for job in harness.api.imports.values()] == [False, True]
    assert harness.api.imports[2]["rules"]["campaignId"] == {
        "overwrite": False,
        "nullOverwrite": False,
    }
    assert harness.api.imports[2]["rules"]["email"]["overwrite"] is True
    assert harness.counts() == {"updated": 2, "created": 2}
    assert harness.ledger.pending() == []
    assert not harness.ledger.path.exists()


def test_large_imports_are_split_in_batches_and_imports_within_pardots_limits(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importing, "MAX_BATCH_BYTES", 1000)
    steps = [create(f"person{n:04d}@example.com", first_name=f"F{n}") for n in range(600)]
    harness.writer.write(steps)
    jobs = list(harness.api.imports.values())
    assert len(jobs) >= 3
    for job in jobs:
        assert 1 <= len(job["batches"]) <= importing.MAX_BATCHES
        assert all(len(batch) <= 1000 for batch in job["batches"])
    sent = [row["email"] for n in harness.api.imports for row in harness.api.rows(n)[1]]
    assert sent == [f"person{n:04d}@example.com" for n in range(600)]
    assert harness.counts() == {"created": 600}


def test_a_lost_create_answer_makes_a_new_import_and_the_lost_one_is_never_started(
    harness: Harness,
) -> None:
    harness.api.lose["create"] = 1
    harness.writer.write([create("a@x.com")])
    assert [job["status"] for job in harness.api.imports.values()] == ["Open", "Complete"]
    assert harness.counts() == {"created": 1}


def test_a_lost_batch_answer_abandons_that_import_unstarted(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importing, "MAX_BATCH_BYTES", 200)
    harness.api.lose["add_batch"] = 1
    harness.writer.write([create(f"person{n}@example.com") for n in range(12)])
    first, _ = harness.api.imports.values()
    assert first["status"] == "Open"  # its second batch may or may not have arrived
    _, rows = harness.api.rows(2)
    assert len(rows) == 12  # every row exactly once, in the import that ran
    assert harness.counts() == {"created": 12}
    assert harness.ledger.pending() == []


def test_a_lost_start_answer_is_read_back_instead_of_starting_twice(harness: Harness) -> None:
    harness.api.lose["start"] = 1
    harness.writer.write([create("a@x.com")])
    assert harness.api.calls["start"] == 1
    assert harness.counts() == {"created": 1}


def test_lost_answers_every_time_stop_the_run_rather_than_loop(harness: Harness) -> None:
    harness.api.lose["create"] = 100
    with pytest.raises(TransientError, match="lost its answer 4 times"):
        harness.writer.write([create("a@x.com")])
    assert all(job["status"] == "Open" for job in harness.api.imports.values())


def test_polls_back_off_and_a_stuck_import_stays_in_the_ledger_for_the_next_run(
    harness: Harness,
) -> None:
    harness.api.polls_until_complete = 6
    harness.writer.write([create("a@x.com")])
    sleeps = harness.clock.sleeps
    assert sleeps[0] == importing.FIRST_POLL_SECONDS
    assert all(later > earlier for earlier, later in itertools.pairwise(sleeps))
    assert len(sleeps) == 7

    harness.api.polls_until_complete = 10**9
    with pytest.raises(TransientError, match="next run waits for it"):
        harness.writer.write([create("b@x.com")])
    assert max(harness.clock.sleeps) == importing.MAX_POLL_SECONDS
    assert [e.import_id for e in harness.ledger.pending()] == [2]


def test_an_import_pardot_takes_ten_minutes_over_costs_11_polls(harness: Harness) -> None:
    # What keeps 100,000 records (two imports) within 30 calls when Pardot queues imports.
    read = harness.api.read

    def ten_minutes(import_id: int) -> ImportStatus:
        status = read(import_id)
        return status if harness.clock.now >= 600 else ImportStatus("Processing")

    harness.api.read = ten_minutes  # type: ignore[method-assign]
    harness.writer.write([create("a@x.com")])
    assert harness.api.calls["read"] == 11
    assert 600 <= harness.clock.now <= 1200


# -- error rows -------------------------------------------------------------------------------


def test_error_rows_become_rejects_with_pardots_reason_and_the_field(harness: Harness) -> None:
    def reason(row: dict[str, str]) -> str | None:
        if row.get("matchId") == "404":
            return "Invalid prospect ID: no prospect has id 404"
        if row.get("org_id__c") == "bad":
            return "Invalid number entered for field org_id__c"
        return None

    harness.api.reason = reason
    harness.writer.write([update(404, city="A"), update(5, org_id="bad"), update(6, city="B")])
    rejects = {(r["field"], r["code"]): r for r in harness.rejects()}
    assert set(rejects) == {("pardot_id", 3), ("org_id", 56)}
    assert rejects[("pardot_id", 3)]["reason"] == (
        "Pardot's import refused it: Invalid prospect ID: no prospect has id 404"
    )
    assert harness.counts() == {"updated": 1, "rejected": 2}


def test_transient_error_rows_that_recover_are_counted_once(harness: Harness) -> None:
    attempts: Counter[str] = Counter()

    def reason(row: dict[str, str]) -> str | None:
        attempts[row["email"]] += 1
        if row["email"] == "b@x.com" and attempts["b@x.com"] <= 2:  # read and error file
            return "An internal error occurred. Please try again"
        return None

    harness.api.reason = reason
    harness.writer.write([create("a@x.com"), create("b@x.com")])
    assert [len(harness.api.rows(n)[1]) for n in harness.api.imports] == [2, 1]
    assert harness.counts() == {"created": 2}
    assert harness.rejects() == []


def test_persistent_transient_errors_raise(harness: Harness) -> None:
    harness.api.reason = lambda row: "An internal error occurred. Please try again"
    with pytest.raises(TransientError, match="still failed transiently"):
        harness.writer.write([create("a@x.com")])
    assert harness.counts() == {}


def test_an_error_row_that_does_not_echo_any_row_is_still_reported(harness: Harness) -> None:
    error_file = harness.api.error_file
    harness.api.reason = lambda row: "Invalid prospect email address" if row["email"] else None

    def altered(import_id: int) -> bytes:
        return error_file(import_id).replace(b"a@x.com", b"A@X.COM")

    harness.api.error_file = altered  # type: ignore[method-assign]
    harness.writer.write([create("a@x.com")])
    (reject,) = harness.rejects()
    assert reject["stream"] == "(import 1)"
    assert reject["record"]["email"] == "A@X.COM"
    assert reject["code"] == 4


def test_the_daily_batch_limit_names_itself_and_the_way_out(harness: Harness) -> None:
    def refuse(**kwargs: Any) -> int:
        raise PardotAPIError(
            164, "Daily import batch limit met", status=429, endpoint="v5.imports.create"
        )

    harness.api.create = refuse  # type: ignore[method-assign]
    with pytest.raises(
        TargetPardotError, match=r"daily limit of Import API batches.*write_method api"
    ):
        harness.writer.write([create("a@x.com")])


# -- after a crash ----------------------------------------------------------------------------


def test_resume_waits_for_started_imports_and_skips_the_creates_they_applied(
    tmp_path: Path,
) -> None:
    crashed = Harness(tmp_path)
    crashed.api.reason = lambda row: (
        "Invalid prospect email address" if "bad" in row["email"] else None
    )
    steps = [create("a@x.com"), create("a@x.com"), create("bad@x.com"), upsert("u@x.com")]
    rows = [crashed.rows.row_for(step) for step in steps]
    # What a run that died after starting its import leaves: the import, and its entry.
    crashed.api.create(kind=UPSERT_IMPORT, header=_header(rows), rules={}, first_batch=_csv(rows))
    crashed.api.start(1)
    crashed.ledger.record(
        LedgerEntry(1, UPSERT_IMPORT, "t", Counter(r.digest() for r in rows[:3] if r))
    )
    never_started = crashed.api.create(
        kind=UPSERT_IMPORT, header=_header(rows), rules={}, first_batch=_csv(rows)
    )
    crashed.ledger.record(LedgerEntry(never_started, UPSERT_IMPORT, "t", Counter()))

    crashed.writer.resume()
    assert crashed.ledger.pending() == []
    # The tap sends the same records again: the two applied creates are not sent twice; the
    # failed one and the (idempotent) upsert are.
    left = crashed.writer.without_recovered_creates(steps)
    assert [(s.action, s.group.email) for s in left] == [
        (Action.CREATE, "bad@x.com"),
        (Action.UPSERT_BY_EMAIL, "u@x.com"),
    ]
    assert crashed.counts() == {"created": 2}
    assert crashed.writer.without_recovered_creates([create("a@x.com")]) != []  # used up


def test_resume_forgets_imports_pardot_no_longer_has(harness: Harness) -> None:
    def gone(import_id: int) -> ImportStatus:
        raise PardotAPIError(3, "Object not found", status=404, endpoint="v5.imports.read")

    harness.api.read = gone  # type: ignore[method-assign]
    harness.ledger.record(LedgerEntry(9, UPSERT_IMPORT, "t", Counter({"d": 1})))
    harness.writer.resume()
    assert harness.ledger.pending() == []


def test_in_api_mode_resume_costs_nothing_without_a_ledger(tmp_path: Path) -> None:
    harness = Harness(tmp_path, write_method="api", campaign_id=None)
    harness.writer.resume()
    assert harness.api.calls == {}
    assert not harness.ledger.path.exists()


def _header(rows: list[Row | None]) -> list[str]:
    return sorted({column for row in rows if row for column in row.cells})


def _csv(rows: list[Row | None]) -> bytes:
    header = _header(rows)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        assert row is not None
        writer.writerow([row.cells.get(column, "") for column in header])
    return out.getvalue().encode()
