"""v5 sync without HTTP: bodies, fid keys, the lazy scan of `auto`, and lost creates."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from target_pardot.api.client import ApiResponse
from target_pardot.dialects import RunTools
from target_pardot.dialects.v5 import V5Dialect
from target_pardot.dialects.v5.bodies import build_payload
from target_pardot.dialects.v5.source import fid_key
from target_pardot.errors import AmbiguousWriteError, error_for
from target_pardot.fields import CustomField, FieldCatalog
from target_pardot.finder import Candidate, ProspectFinder
from target_pardot.identify import normalise_record
from target_pardot.matching import Group, Identity, first_layer
from target_pardot.outcomes import RejectFile, Result, RunReport
from target_pardot.prepare import Prepared
from target_pardot.settings import Settings

# org_id's catalog entry has no apiFieldId, as if the endpoint left it out: "__c" is appended.
CATALOG = FieldCatalog.from_custom_fields(
    [CustomField("org_id"), CustomField("Seats", "Number", api_field_id="Seats__c")]
)
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
_ONE = re.compile(r"^objects/prospects/(\d+)$")


class FakeClock:
    """Wall clock and monotonic clock that move only when the code under test sleeps."""

    def __init__(self) -> None:
        self.elapsed = 0.0
        self.sleeps: list[float] = []

    def now(self) -> dt.datetime:
        return T0 + dt.timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        return self.elapsed

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.elapsed += seconds


class FakePardot:
    """Just enough of the v5 prospect API, in memory, with lost answers and read lag."""

    def __init__(self, clock: FakeClock, settings: Settings) -> None:
        self.clock = clock
        self.settings = settings
        self.prospects: dict[int, dict[str, Any]] = {}
        self.next_id = 100
        self.calls: list[str] = []
        self.lose_creates = 0  # the next N creates are applied but their answer is lost
        self.drop_creates = 0  # the next N creates are lost before Pardot applies them
        self.upsert_created_status = 200  # production answers 200 to creates as well
        self.upsert_answers_without_id = 0  # the next N upserts answer a body with no id
        self.skew = dt.timedelta(0)  # how far Pardot's clock is ahead of this machine's
        self.visible_after = 0.0  # read lag: prospects show in queries this long after creation
        self.errors: dict[str, Exception] = {}

    def add(self, created: dt.datetime = T0, **values: Any) -> int:
        prospect_id = self.next_id
        self.next_id += 1
        self.prospects[prospect_id] = {"id": prospect_id, "createdAt": created, **values}
        return prospect_id

    def v5(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        json: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> ApiResponse:
        self.calls.append(endpoint)
        if endpoint in self.errors:
            raise self.errors.pop(endpoint)
        params = params or {}
        if endpoint == "v5.prospects.query":
            now = self.clock.now()
            lag = dt.timedelta(seconds=self.visible_after)
            values = [
                self._render(p, params["fields"])
                for p in self.prospects.values()
                if p["createdAt"] + lag <= now
                and ("email" not in params or p.get("email") == params["email"])
            ]
            return ApiResponse(200, {"values": values, "nextPageToken": None}, endpoint)
        if endpoint == "v5.prospects.create":
            assert json is not None and not idempotent
            if self.drop_creates:
                self.drop_creates -= 1
                raise AmbiguousWriteError(endpoint, "connection reset")
            prospect_id = self.add(created=self.clock.now(), campaignId=1, **json)
            if self.lose_creates:
                self.lose_creates -= 1
                raise AmbiguousWriteError(endpoint, "no answer within request_timeout")
            return ApiResponse(201, {"id": prospect_id}, endpoint)
        if endpoint == "v5.prospects.update":
            match = _ONE.match(path)
            assert match is not None and json is not None
            self.prospects[int(match[1])].update(json)
            return ApiResponse(200, {"id": int(match[1])}, endpoint)
        if endpoint == "v5.prospects.upsertLatestByEmail":
            assert json is not None
            same = [p for p in self.prospects.values() if p.get("email") == json["matchEmail"]]
            if same:
                prospect, status = same[-1], 200
                prospect.update(json["prospect"])
            else:
                prospect_id = self.add(created=self.clock.now(), campaignId=1, **json["prospect"])
                prospect, status = self.prospects[prospect_id], self.upsert_created_status
            answer = self._render(prospect, ",".join(json.get("fields") or ["id", "email"]))
            if self.upsert_answers_without_id:
                self.upsert_answers_without_id -= 1
                answer = {"email": prospect.get("email")}
            return ApiResponse(
                status, answer, endpoint, format_datetime(self.server_time(), usegmt=True)
            )
        raise AssertionError(f"unexpected call {method} {path}")

    def server_time(self) -> dt.datetime:
        """Pardot's clock, `skew` ahead of this machine's (its Date header)."""
        return self.clock.now() + self.skew

    def _render(self, prospect: dict[str, Any], fields: str) -> dict[str, Any]:
        out = {name: prospect.get(name) for name in fields.split(",")}
        if isinstance(out.get("createdAt"), dt.datetime):
            out["createdAt"] = (out["createdAt"] + self.skew).isoformat()
        out["updatedAt"] = str(prospect["id"])
        return out


def make_settings(**overrides: Any) -> Settings:
    return Settings.from_config(
        {
            "business_unit_id": "0Uv000000000001AAA",
            "client_id": "id",
            "client_secret": "secret",
            "refresh_token": "token",
            "api_version": 5,
            **overrides,
        }
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class Harness:
    """The v5 dialect over an in-memory Pardot, with a clock that moves only when it sleeps."""

    def __init__(self, tmp_path: Path, clock: FakeClock, **settings: Any) -> None:
        self.settings = make_settings(**settings)
        self.pardot = FakePardot(clock, self.settings)
        self.executor = ThreadPoolExecutor(4)
        self.report = RunReport(RejectFile(str(tmp_path / "rejects.jsonl")), 1)
        client: Any = self.pardot
        tools = RunTools(self.settings, client, self.report, self.executor, self.executor)
        self.dialect = V5Dialect(tools, sleep=clock.sleep, now=clock.now, monotonic=clock.monotonic)
        self.dialect.catalog = CATALOG
        self.source = self.dialect.source

    def run(self, *records: Prepared) -> None:
        groups, members, _keys, _later = first_layer(list(records), self.dialect.identity_of)
        assert members == list(records), "these tests write one layer"
        self.dialect.execute(self.dialect.plan(groups, self.dialect.find(groups)))


def record(email: str | None = None, lookup: str | None = None, **fields: Any) -> Prepared:
    """A prepared record; fields are already Pardot field names."""
    if lookup is not None:
        fields["org_id"] = lookup
    identify = normalise_record("users", {"email": email, **fields})
    return Prepared(identify=identify, fields=fields, lookup_value=lookup)


# -- bodies --------------------------------------------------------------------------------


def test_bodies_use_v5_names_and_leave_out_what_v5_cannot_write() -> None:
    group = Group(
        Identity("email", "a@x.com"),
        [],
        fields={
            "first_name": "Ann",
            "is_do_not_email": True,
            "annual_revenue": "10",
            "Seats": 3,
            "org_id": "o-1",
            "crm_owner_fid": "005000000000001",
        },
        email="a@x.com",
    )
    payload = build_payload(group, CATALOG)
    assert payload.body == {
        "firstName": "Ann",
        "isDoNotEmail": True,
        "annualRevenue": "10",
        "Seats__c": 3,
        "org_id__c": "o-1",
        "email": "a@x.com",
    }
    assert payload.names["firstName"] == "first_name"
    assert payload.names["org_id__c"] == "org_id"
    assert payload.unsendable == ["crm_owner_fid"]


@pytest.mark.parametrize(
    ("fid", "key"),
    [
        ("00Q000000000001AAA", "00Q000000000001"),
        ("00Q000000000001", "00Q000000000001"),
        (" 003000000000002 ", "003000000000002"),
    ],
)
def test_fid_keys_fold_the_18_character_form(fid: str, key: str) -> None:
    assert fid_key(fid) == key


# -- the lazy scan of `auto` ----------------------------------------------------------------


class NoTotalSource:
    """A source like v5's: pages without a total."""

    page_size = 2

    def __init__(self, count: int) -> None:
        self.prospects = [
            Candidate(n, f"p{n}@x.com", f"org-{n}", "2024-01-01") for n in range(count)
        ]
        self.pages = 0
        self.reads = 0

    def read_by_email(self, email: str) -> list[Candidate]:
        self.reads += 1
        return [p for p in self.prospects if p.email == email]

    def scan(self) -> Iterator[tuple[int | None, list[Candidate]]]:
        for start in range(0, len(self.prospects), self.page_size):
            self.pages += 1
            yield None, self.prospects[start : start + self.page_size]


def lookup_groups(*numbers: int) -> list[Group]:
    return [
        Group(Identity("lookup", f"org-{n}"), [], email=f"p{n}@x.com", lookup_value=f"org-{n}")
        for n in numbers
    ]


def auto_finder(source: NoTotalSource, tmp_path: Path) -> ProspectFinder:
    return ProspectFinder(
        source,
        lookup_field="org_id",
        strategy="auto",
        report=RunReport(RejectFile(str(tmp_path / "r.jsonl")), 1),
        executor=ThreadPoolExecutor(2),
    )


def test_auto_without_a_total_scans_when_the_scan_ends_before_the_reads_add_up(
    tmp_path: Path,
) -> None:
    source = NoTotalSource(6)  # 3 pages
    found = auto_finder(source, tmp_path).find(lookup_groups(0, 1, 2, 5))
    assert found == {Identity("lookup", f"org-{n}"): n for n in (0, 1, 2, 5)}
    assert (source.pages, source.reads) == (3, 0)


def test_auto_without_a_total_reads_when_the_scan_would_cost_more(tmp_path: Path) -> None:
    source = NoTotalSource(40)  # 20 pages
    finder = auto_finder(source, tmp_path)
    assert finder.find(lookup_groups(7)) == {Identity("lookup", "org-7"): 7}
    # One read, and no more scan pages than that plus one: at most about twice the cheaper.
    assert (source.pages, source.reads) == (2, 1)
    # Reads add up over the run, and the scan keeps pace until it ends.
    for n in range(8, 30):
        finder.find(lookup_groups(n))
    assert source.pages == 20
    assert source.reads <= 20
    reads = source.reads
    assert finder.find(lookup_groups(39)) == {Identity("lookup", "org-39"): 39}
    assert source.reads == reads  # answered from the finished scan


# -- after a lost create --------------------------------------------------------------------


def test_a_lost_create_that_was_applied_is_found_and_not_made_twice(
    tmp_path: Path, clock: FakeClock
) -> None:
    harness = Harness(tmp_path, clock, lookup_field="org_id", lookup_strategy="read")
    harness.pardot.lose_creates = 1
    harness.pardot.visible_after = 20  # the read lag hides it from the first query
    harness.run(record("a@x.com", "org-1", city="Oslo"))
    assert [p["email"] for p in harness.pardot.prospects.values()] == ["a@x.com"]
    assert harness.report.results[Result.CREATED] == 1
    assert harness.pardot.calls.count("v5.prospects.create") == 1
    assert clock.sleeps == [15.0, 15.0]  # polled until the create showed up
    # Remembered by id: a later record for the identity PATCHes, with no query.
    calls = len(harness.pardot.calls)
    harness.run(record("a@x.com", "org-1", city="Rome"))
    assert harness.pardot.calls[calls:] == ["v5.prospects.update"]
    assert next(iter(harness.pardot.prospects.values()))["city"] == "Rome"


def test_a_lost_create_that_never_shows_up_is_sent_again_after_the_read_lag(
    tmp_path: Path, clock: FakeClock
) -> None:
    harness = Harness(tmp_path, clock, lookup_field="org_id", lookup_strategy="read")
    harness.pardot.drop_creates = 1
    harness.run(record("a@x.com", "org-1"))
    assert len(harness.pardot.prospects) == 1
    assert harness.pardot.calls.count("v5.prospects.create") == 2
    assert sum(clock.sleeps) == pytest.approx(60.0)
    assert harness.report.results[Result.CREATED] == 1


def test_a_lost_create_under_the_raw_rule_ignores_older_prospects_with_the_email(
    tmp_path: Path, clock: FakeClock
) -> None:
    harness = Harness(tmp_path, clock, match_by_email=False)
    clock.elapsed = 3600
    harness.pardot.add(created=T0, email="a@x.com")  # an hour older than the lost call
    harness.pardot.drop_creates = 1
    harness.run(record("a@x.com"))
    assert [p["email"] for p in harness.pardot.prospects.values()] == ["a@x.com", "a@x.com"]
    assert harness.pardot.calls.count("v5.prospects.update") == 0


def test_creates_that_keep_losing_their_answer_stop_the_run(
    tmp_path: Path, clock: FakeClock
) -> None:
    harness = Harness(tmp_path, clock, match_by_email=False, max_retries=1)
    harness.pardot.drop_creates = 5
    with pytest.raises(Exception, match="lost its answer 2 times"):
        harness.run(record("a@x.com"))
    assert harness.pardot.prospects == {}


# -- outcomes -------------------------------------------------------------------------------


def test_error_180_rejects_the_record_naming_the_field(tmp_path: Path, clock: FakeClock) -> None:
    harness = Harness(tmp_path, clock)
    harness.pardot.errors["v5.prospects.upsertLatestByEmail"] = error_for(
        180,
        "One or more of the specified fields are invalid: firstName",
        status=400,
        endpoint="v5.prospects.upsertLatestByEmail",
    )
    harness.run(record("a@x.com", first_name="Ann"), record("b@x.com"))
    harness.report.rejects.close()
    [line] = (tmp_path / "rejects.jsonl").read_text().splitlines()
    assert '"code": 180' in line and '"field": "first_name"' in line
    assert harness.report.results[Result.CREATED] == 1


def test_fatal_errors_stop_the_batch_after_the_other_writes_are_counted(
    tmp_path: Path, clock: FakeClock
) -> None:
    harness = Harness(tmp_path, clock, lookup_field="org_id", lookup_strategy="read")
    harness.pardot.errors["v5.prospects.create"] = error_for(
        122, "Daily API rate limit met", status=429, endpoint="v5.prospects.create"
    )
    harness.pardot.add(email="b@x.com", org_id__c="org-1")
    with pytest.raises(Exception, match="Daily API rate limit"):
        # One update (org-1 exists) and one create (org-9 does not), in one batch.
        harness.run(record("b@x.com", "org-1", city="Oslo"), record("c@x.com", "org-9"))
    assert harness.report.results[Result.UPDATED] == 1
    assert harness.pardot.prospects[100]["city"] == "Oslo"


# -- upsertLatestByEmail answers --------------------------------------------------------------


@pytest.mark.parametrize("created_status", [200, 201])
def test_upsert_tells_a_create_from_its_created_at_not_its_status(
    tmp_path: Path, clock: FakeClock, created_status: int
) -> None:
    harness = Harness(tmp_path, clock, campaign_id=7)
    harness.pardot.upsert_created_status = created_status
    # Pardot's clock is an hour ahead: only its Date header and createdAt may be compared.
    harness.pardot.skew = dt.timedelta(hours=1)
    clock.elapsed = 3600
    known = harness.pardot.add(created=T0, email="old@x.com", campaignId=1)
    harness.run(record("old@x.com", city="Oslo"), record("new@x.com", city="Rome"))
    assert harness.report.results[Result.UPDATED] == 1
    assert harness.report.results[Result.CREATED] == 1
    [new] = [p for p in harness.pardot.prospects.values() if p["email"] == "new@x.com"]
    # The campaign goes to the created prospect only, whatever status the create answered.
    assert (new["campaignId"], harness.pardot.prospects[known]["campaignId"]) == (7, 1)


def test_upsert_reads_the_email_when_the_answer_has_no_id(tmp_path: Path, clock: FakeClock) -> None:
    harness = Harness(tmp_path, clock)
    harness.pardot.upsert_answers_without_id = 1
    harness.run(record("a@x.com", city="Oslo"))
    assert harness.report.results[Result.CREATED] == 1
    assert harness.pardot.calls == ["v5.prospects.upsertLatestByEmail", "v5.prospects.query"]
    # The id was learnt from the read: the next record for that email PATCHes it directly.
    harness.run(record("a@x.com", city="Rome"))
    assert harness.pardot.calls[-1] == "v5.prospects.update"
    assert [p["city"] for p in harness.pardot.prospects.values()] == ["Rome"]


def test_upsert_without_an_id_twice_and_nothing_to_read_stops_the_run(
    tmp_path: Path, clock: FakeClock
) -> None:
    harness = Harness(tmp_path, clock)
    harness.pardot.upsert_answers_without_id = 2
    harness.pardot.visible_after = 60  # read lag: the read finds nothing yet
    with pytest.raises(Exception, match="without a prospect id"):
        harness.run(record("a@x.com"))
    # Sent twice, but an upsert by email never duplicates.
    assert len(harness.pardot.prospects) == 1
