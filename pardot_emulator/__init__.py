"""A local emulator of Salesforce OAuth and the Pardot (Account Engagement) API, for tests
and demos. It listens on 127.0.0.1 only and never touches the network beyond it.

    from pardot_emulator import PardotEmulator, DEFAULT_CREDENTIALS

    with PardotEmulator(ampsea=True) as emu:
        emu.add_custom_field("org_id")
        emu.add_prospect("a@example.com", first_name="A")
        ...  # point the client at emu.url for both the token endpoint and the API

Modules: ``store`` (prospects, custom fields, AMPSEA; no HTTP), ``fields`` (the field
catalogue and v5 names), ``clock`` (timestamps), ``errors`` (codes, messages, statuses),
``oauth`` (token grants and tokens), ``gate`` + ``faults`` (admission checks and fault
knobs), ``v34`` / ``v5`` (API handlers), ``imports`` (Import API jobs: CSV rules, processing,
error rows) + ``v5_imports`` / ``v4_imports`` (its v5 and v4 endpoints, and what each API's
columns mean) + ``multipart`` (upload parsing), ``render``
(v3/v4 envelopes, JSON/XML), ``control`` (``/_emulator/``), ``server`` (HTTP plumbing and
``PardotEmulator``), ``__main__`` (CLI).

Every API request is checked in this order (first failure wins): bearer token (184, HTTP
401) -> ``Pardot-Business-Unit-Id`` (181 missing, HTTP 400; 182 not shaped like a business
unit id, ``0Uv`` + 15 letters or digits, HTTP 400; 201 not the configured unit, HTTP 403) ->
daily quota (122) -> concurrency slot (66; the request over the limit fails at once) ->
queued errors (``queue_error``) -> ``fail_every`` (HTTP 500, HTML body, nothing applied) ->
``latency`` (slept holding the slot, outside the state lock) -> handler ->
``drop_after_commit_every`` (applied, then the connection is closed with no response).
Every request under ``/api/`` counts in ``api_calls`` and ``call_counts``, failed or not;
paths that match no endpoint count as ``api.unknown`` (v3/v4 style, error 2) or
``v5.unknown`` (404, or 405 with code 60 for a wrong method on a known path). Queued errors
are only consumed by calls that get past the token, business-unit, quota and concurrency
checks.

Choices made where Pardot's behaviour is UNCONFIRMED or unspecified:

- Identity and matching: emails match case-insensitively. Without AMPSEA, emails are unique
  among active prospects (create -> 9, changing an email onto another prospect's -> 54).
  ``fid`` matches crm_lead_fid or crm_contact_fid exactly (no 15/18-character folding); a fid
  given on create is stored as the contact id when it starts with 003, else the lead id.
- Archived (recycle-bin) prospects: left out of email lookups and queries (unless
  ``deleted=true``); v3/v4 read/update by id or fid answer 132 "Prospect is archived"; v3/v4
  upserts restore and update them (documented for v4, applied to v3 too); v5 read/update
  answer 404; upsertLatestByEmail restores one only with ``secondaryDeletedSearch``.
- v4 upsert: an id/fid match is updated (documented); both given but naming different
  prospects -> 81; no match plus an email -> created, carrying the fid; no match without an
  email -> 14 for an id, 77 for a fid. Email alone always creates (documented). v3
  upsert/id with an unknown id falls back to the email parameter (documented), else 14.
- v3 update never changes the email address (documented); v4 update and all upserts do.
- Unknown and read-only field names in v3/v4 writes are ignored. ``<field>=`` clears a
  field, except multi-value fields, which clear with ``<field>_0=`` (documented). v3/v4
  flags accept true/1/yes/on as true, anything else non-empty as false. JSON ``null`` in a
  batch item clears the field; a JSON list sets a multi-value field.
- Number custom fields keep numbers and render as JSON numbers (``00123`` -> 123, ``12.50``
  -> 12.5), and Date fields ``YYYY-MM-DD``; text is a number when Pardot's (PHP) check says so
  (ASCII digits, no separators). A value such a field cannot take is dropped without an error
  in v4 writes, the item's other fields applied (recorded real v4 traffic); v3 answers 56/57
  (not seen either way); v5 answers 56/57 too.
- Reads lag writes: with ``read_lag`` (seconds, default 0; Pardot's may be up to 60) a new
  prospect stays out of v3/v4 reads by email and queries and v5 queries for that long after
  it was created; writes and reads by id see it at once, and changed values show at once.
- v3/v4 rendering: every standard field (null when unset) but only custom fields that hold
  a value (as the ``fields`` parameter docs describe); multi-value custom fields render as
  ``{"value": "a"}`` or ``{"value": ["a", "b"]}``; ids, score, campaign_id and
  prospect_account_id are JSON numbers, flags JSON booleans; ``password`` is never rendered.
  XML (the default without ``format=json``) is a plausible ``<rsp>`` rendering only.
- Times are UTC. v3/v4 render ``YYYY-MM-DD HH:MM:SS``, v5 ISO 8601 with ``+00:00``, both to
  the second. Date filters compare whole seconds, strictly (``updated_after=12:00:00``
  excludes a write at 12:00:00.4), as Pardot stores seconds. Creating a prospect sets
  last_activity_at like an update does; seeded prospects default to none.
- v3/v4 query: default sort is id ascending (timestamps default to descending, documented);
  ``limit`` outside 1..200 -> 23, bad ``offset`` -> 21, bad ``sort_by`` -> 19, bad
  ``sort_order`` -> 20, bad timestamp -> 7, bad id bound -> 16, ``deleted`` not true/false
  -> 27. ``output=bulk`` omits total_results. Unknown names in ``fields`` are ignored.
- Batches: XML input is not emulated and, like a missing ``prospects`` parameter, answers
  71; an item that is not an object gets the 90/91 message; a v4 batchUpdate item without
  id or fid gets "Invalid prospect ID". New prospects get campaign_id 1 unless given; any
  integer campaign id is accepted, anything else -> 38.
- v5 (confirmed from real responses): custom fields are named by their ``apiFieldId``,
  ``<fieldId>__c``, in bodies, in ``fields`` and in answers; the custom-fields endpoint
  returns ``apiFieldId``. A bare fieldId (or any name v5 does not know) in a body -> 400
  code 154 "Invalid property in request: <name>"; a known read-only name in a body -> 400
  code 180; an unknown name in ``fields`` -> 400 code 51 "Invalid parameter: fields. It
  contains an invalid or unknown field: <name>."; a requested custom field with no value
  reads back ``null`` (multi-value ones too). Chosen where unconfirmed: missing ``fields``
  -> 400 code 31 (Pardot's generic "missing parameter" code is 13); not found -> 404 code 3
  "Object not found"; bad JSON -> 150; empty body -> 152; create without email -> 153;
  invalid email -> 4; a non-boolean flag or wrongly typed value -> 154; a wrong method on a
  known path -> 405 code 60; 66/122 -> 429. Every v5 answer carries ``id``; a write without
  ``?fields=`` answers id, email and the fields it wrote. A ``nextPageToken`` carries the
  whole query, so filters sent with it are ignored. ``orderBy`` is "<id|createdAt|
  updatedAt|lastActivityAt> [asc|desc]" (default "id asc"); ``deleted`` is false (default),
  true or all. upsertLatestByEmail refuses a top-level property other than matchEmail,
  prospect, fields and secondaryDeletedSearch with 154 (naming the first, sorted), and
  answers 200 with ``{id, email}`` plus any requested fields (body ``fields`` list or
  ``?fields=``) whether it updated or created, as production clients see;
  ``upsert_created_status=201`` makes a create answer 201, so clients are tested against
  both (real behaviour UNCONFIRMED).
- Import API, v5 (``/api/v5/imports``; the rules are in ``imports``). Documented and followed:
  create with operation Upsert / object Prospect / createOnNoMatch / restoreDeleted / per-column
  ``fields`` {overwrite, nullOverwrite} (defaults true / false) and optional ``status: Ready``;
  CSV batches in multipart part ``file``; ``PATCH {"status": "Ready"}`` only (other properties
  154), only on an Open import with a batch; statuses Open -> Waiting -> Processing ->
  Complete; the error download only when Complete, else 400 "Import is not finished
  processing"; header names are v5 names, custom fields ``<fieldId>__c``; the forbidden columns;
  email and campaignId required with createOnNoMatch or without a match column; later batches
  repeat the header; 10 MB per batch (413), 10 batches per import (429), a daily batch limit
  (164), empty file refused. Chosen where UNCONFIRMED: the create's JSON part is named
  ``input`` (a plain JSON body works too); a create whose file is refused keeps no import;
  codes 161 (not Open or expired / no batch), 162 (not finished), 163 (11th batch, HTTP 429),
  164 (HTTP 429), 165 (413), 166 (empty, unreadable, ragged or repeated-column CSV), 167
  (header differs), 153 (required column missing), 180 (unknown, read-only or forbidden
  column); the batch answer is ``{"id": <batch number>, "importId"}``; ``fields`` is
  required on reads (code 31, as for prospects) and an unknown name is 51; an unknown import
  id is 404 code 3. Processing is
  whole-import, once ``import_delay`` seconds have passed since Ready (``Processing`` from half
  way), in batch and row order; a row with two match values fails; matchEmail picks the active
  prospect with the latest activity (as upsertLatestByEmail), then, with restoreDeleted, an
  archived one; a matchId/matchSalesforceId naming an archived prospect matches only with
  restoreDeleted; a row matching nothing is created with createOnNoMatch (whatever its match
  column) and fails otherwise, with Pardot's messages (Invalid prospect ID / fid / email
  address); a row without a match value creates; cells are parsed as text like v3/v4 form
  values; ``overwrite: false`` writes a column only where the prospect has no value;
  addToList/removeFromList are accepted and ignored. The error download is a 302 to
  ``/files/import-errors/<token>.csv`` (not under /api/, no token, not counted), the sent
  header plus a last column ``error``, rows as sent. Imports left Open expire after
  ``import_open_lifetime`` seconds (24 hours, the v4 guide's figure: the notes say only that
  PATCH Ready needs an import "Open and not expired"); ``isExpired`` then reads true, and a
  batch or PATCH Ready is refused with 161, as for v4 imports.
  ``fail_next_import_after(n)`` makes the next import processed stop after n rows: the rest
  fail with error 183's message ("An internal error occurred. Please try again") and are not
  applied, and the import still ends Complete (how a real import fails part way is not
  documented). ``reset_daily_usage`` resets the daily batch count too.
- Import API, v4 (``/api/import/version/4/do/...``): see ``v4_imports``'s docstring for what is
  documented and what was chosen (UNCONFIRMED). In short: v4 field names, match columns
  ``prospect_id`` / ``salesforce_fid``, nullOverwrite true unless ``columns`` says otherwise, and
  matching read strictly: a row without an identifier, with one no prospect has, or matching a
  prospect in the recycle bin without restoreDeleted is an error row; a v4 import never creates.
  Errors and error-file wording as the v5 Import API's; the batch answer is an empty 204; Open
  imports expire after ``import_open_lifetime`` seconds (24 hours). ``fail_next_import_after``
  works for them too. v4 and v5 imports share one id sequence and one daily batch count.
- OAuth: every grant but the JWT one needs the right client_secret. client_credentials must
  be sent to the org's My Domain host (the notes); the emulator has one host, so by default it
  accepts the grant there, and with ``my_domain_host="<name>"`` only from requests whose Host
  header names it (``"localhost"`` makes http://localhost:<port> the My Domain and
  http://127.0.0.1:<port> not); elsewhere 400 invalid_grant "request not supported on this
  domain" (Salesforce's wording in public client reports; UNCONFIRMED by the notes). JWT
  assertions must be RS256 with iss = client_id, sub = username, aud = this emulator's URL or
  login/test.salesforce.com, and exp in the future (not capped at 3 minutes). Salesforce's
  "token request is already being processed" race (400 invalid_grant when two token requests
  overlap) is staged with ``fail_next_token_calls(n)``: the next n token calls get it,
  whatever they carry (``error`` / ``description`` give another answer).
- Faults: ``queue_drop(endpoint, count)`` applies the next calls to one endpoint and then
  closes the connection unanswered, for lost answers at a precise point of a sync.
  ``fail_every``/``drop_after_commit_every`` use each API call's sequence number
  (the ``api_calls`` count), so call N faults when N is a multiple. The daily quota counts
  authenticated calls for the right business unit, including ones then refused with 66.
  ``queue_error`` codes use the same HTTP statuses as real ones (400 unless listed above).
"""

from .oauth import DEFAULT_CREDENTIALS
from .server import PardotEmulator

__all__ = ["DEFAULT_CREDENTIALS", "PardotEmulator"]
