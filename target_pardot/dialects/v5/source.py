"""Finding prospects through v5: queries by email, the scan of all prospects, Salesforce ids.

v5's prospect query filters only by email, id, creation/update time and deleted state: there is
no salesforceLeadId / salesforceContactId / salesforceId filter. So fids are resolved from the
scan of all prospects (`GET prospects?fields=id,email,updatedAt,salesforceLeadId,
salesforceContactId`, 1000 a call, following nextPageToken), the same scan the finder uses for
lookup values, made at most once a run and kept.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from target_pardot.api.client import PardotClient
from target_pardot.fields import FieldCatalog, is_number_field, to_v5_name
from target_pardot.finder import Candidate
from target_pardot.scanindex import recency_key

QUERY_PAGE = 1000  # the v5 maximum for `limit`
PROSPECTS = "objects/prospects"
FID_FIELDS = ("salesforceLeadId", "salesforceContactId")


def fid_key(fid: str) -> str:
    """Salesforce ids compare on their 15 case-sensitive characters; 18 adds a checksum."""
    text = fid.strip()
    return text[:15] if len(text) == 18 else text


def parse_time(text: Any) -> dt.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        # Python 3.10's parser does not know the "Z" suffix.
        moment = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


class V5Source:
    """The v5 queries the finder needs, plus the Salesforce ids seen while scanning."""

    page_size = QUERY_PAGE

    def __init__(
        self,
        client: PardotClient,
        lookup_field: str | None,
        catalog: Callable[[], FieldCatalog] = FieldCatalog,
    ) -> None:
        self._client = client
        self._lookup_field = lookup_field
        # The catalog is read when the run starts, after this source is made.
        self._catalog = catalog
        self._named_in: FieldCatalog | None = None
        self._lookup_name: str | None = None
        self._lookup_numeric = False
        self._lock = threading.Lock()
        # Salesforce id -> (update time, prospect id), or {prospect id: update time} for the
        # rare Salesforce id that several prospects carry: one small entry per prospect with a
        # fid, kept for the whole run like the finder's scan index.
        self._by_fid: dict[str, tuple[int, int] | dict[int, int]] = {}

    @property
    def lookup_name(self) -> str | None:
        """The lookup field as v5 names it in `fields` and answers (`<fieldId>__c`).

        Read for every prospect a scan indexes: resolved once per catalog, not per prospect.
        """
        if not self._lookup_field:
            return None
        catalog = self._catalog()
        if catalog is not self._named_in:
            self._lookup_name = to_v5_name(self._lookup_field, catalog)
            self._lookup_numeric = is_number_field(catalog, self._lookup_field)
            self._named_in = catalog
        return self._lookup_name

    def read_by_email(self, email: str) -> list[Candidate]:
        return [self.candidate(prospect) for prospect in self.query_by_email(email)]

    def query_by_email(self, email: str, *extra_fields: str) -> list[dict[str, Any]]:
        params = {"email": email, "fields": self._fields(*extra_fields), "limit": QUERY_PAGE}
        return [prospect for page in self._pages(params) for prospect in page]

    def scan(self, after_id: int = 0) -> Iterator[tuple[int | None, list[Candidate]]]:
        # The fids come along in the same pages, so one scan serves lookups and fids alike.
        params: dict[str, Any] = {"fields": self._fields(*FID_FIELDS), "limit": QUERY_PAGE}
        if after_id:
            params["idGreaterThan"] = after_id
        for page in self._pages(params):
            candidates = []
            for prospect in page:
                candidate = self.candidate(prospect)
                candidates.append(candidate)
                self._note_fids(prospect, candidate)
            # v5 queries return no total: the finder pages lazily (see finder.py).
            yield None, candidates

    def probe(self) -> None:
        """The cheapest prospect call: one prospect's id."""
        self._client.v5(
            "GET", PROSPECTS, endpoint="v5.prospects.query", params={"fields": "id", "limit": 1}
        )

    def prospect_for_fid(self, fid: str) -> int | None:
        """The prospect carrying this lead or contact id, from a finished scan (latest wins)."""
        with self._lock:
            held = self._by_fid.get(fid_key(fid))
            if held is None:
                return None
            if isinstance(held, tuple):
                return held[1]
            return max((recency, prospect_id) for prospect_id, recency in held.items())[1]

    def _pages(self, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        while True:
            body = self._client.v5(
                "GET", PROSPECTS, endpoint="v5.prospects.query", params=params
            ).body
            values = [value for value in body.get("values") or [] if isinstance(value, dict)]
            yield values
            token = body.get("nextPageToken")
            if not token or not values:
                return
            # The token carries the query; only `fields` must be sent again.
            params = {"fields": params["fields"], "nextPageToken": token}

    def _fields(self, *extra: str) -> str:
        fields = ["id", "email", "updatedAt", *extra]
        lookup_name = self.lookup_name
        if lookup_name:
            fields.append(lookup_name)
        return ",".join(dict.fromkeys(fields))

    def candidate(self, prospect: Mapping[str, Any]) -> Candidate:
        # lookup_name first: it resolves the lookup field (name and type) once per catalog.
        lookup_name = self.lookup_name
        return Candidate.from_prospect(
            prospect, lookup_name, "updatedAt", numeric=self._lookup_numeric
        )

    def _note_fids(self, prospect: Mapping[str, Any], candidate: Candidate) -> None:
        with self._lock:
            for name in FID_FIELDS:
                fid = prospect.get(name)
                if not isinstance(fid, str) or not fid:
                    continue
                key, recency = fid_key(fid), recency_key(candidate.updated)
                held = self._by_fid.get(key)
                if held is None or (isinstance(held, tuple) and held[1] == candidate.id):
                    self._by_fid[key] = (recency, candidate.id)
                elif isinstance(held, tuple):
                    self._by_fid[key] = {held[1]: held[0], candidate.id: recency}
                else:
                    held[candidate.id] = recency
