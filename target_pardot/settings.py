"""The target's settings: the JSON schema users see in `--about`, and the checked Settings object.

The schema catches wrong types; `Settings.from_config` catches wrong combinations (a flow without
its credentials, a malformed business unit id, plain HTTP to a remote host) and settings nobody
knows (a misspelt `api_verison` would otherwise be ignored and its default used) before any call
is made, and names the setting at fault.
"""

from __future__ import annotations

import decimal
import difflib
import functools
import ipaddress
import numbers
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers import capabilities

PRODUCTION_LOGIN_URL = "https://login.salesforce.com"
SANDBOX_LOGIN_URL = "https://test.salesforce.com"
PRODUCTION_PARDOT_URL = "https://pi.pardot.com"
DEMO_PARDOT_URL = "https://pi.demo.pardot.com"

AUTH_FLOWS = ("refresh_token", "client_credentials", "jwt_bearer", "password")
LOOKUP_STRATEGIES = ("auto", "read", "scan")
SYNC_MODES = ("upsert", "update_only", "create_only")
EMPTY_LOOKUP_POLICIES = ("match_by_email", "create", "reject")
WRITE_METHODS = ("api", "import", "auto")
# API versions whose dialect can write through Pardot's Import API (v4's and v5's).
IMPORT_API_VERSIONS = (4, 5)
# ...and those whose imports create prospects, which then need a campaign (v4 imports only
# update: its creates go through batchUpsert, where campaign_id stays optional).
CREATING_IMPORT_VERSIONS = (5,)
# Records per sink batch in import and auto modes (unless batch_size_rows says otherwise): an
# import is finished inside the batch that holds its records, and a few calls per import pay
# off only for large ones.
IMPORT_BATCH_ROWS = 50_000
SUPPORTED_API_VERSIONS = (3, 4, 5)
DEFAULT_REJECT_DIR = "target-pardot-rejects"
DEFAULT_STORE_FILE = "target-pardot-unchanged.sqlite"

# Which credentials each flow needs, beyond client_id (all flows need it).
FLOW_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "refresh_token": ("client_id", "client_secret", "refresh_token"),
    "client_credentials": ("client_id", "client_secret"),
    "jwt_bearer": ("client_id", "username", "private_key"),
    "password": ("client_id", "client_secret", "username", "password"),
}

BUSINESS_UNIT_ID_PATTERN = re.compile(r"^0Uv[A-Za-z0-9]{15}$")

# A number written as text, as environment variables carry it: 0.9, 300, .5, 1e-3.
NUMBER_TEXT_PATTERN = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")

# A setting whose value is a number with a fraction. singer-sdk converts only integer, boolean
# and array settings given as environment variables (`--config ENV`), and Meltano crashes on
# `kind: decimal` ones ("Object of type Decimal is not JSON serializable"), so these also
# accept the number as text, which Settings.from_config converts (and refuses if it is not one).
NumberOrText = th.CustomType({"type": ["number", "string"]})

CONFIG_SCHEMA: dict[str, Any] = th.PropertiesList(
    th.Property(
        "business_unit_id",
        th.StringType,
        required=True,
        description="Pardot business unit id (18 characters, starts with 0Uv), sent as the "
        "Pardot-Business-Unit-Id header. In Salesforce Setup, enter Business Unit Setup in the "
        "Quick Find box to see it.",
    ),
    th.Property(
        "auth_flow",
        th.StringType,
        default="refresh_token",
        allowed_values=list(AUTH_FLOWS),
        description="Salesforce OAuth flow used to get an access token: refresh_token "
        "(client_id, client_secret, refresh_token), client_credentials (client_id, "
        "client_secret; login_url must be the org's My Domain URL), jwt_bearer (client_id, "
        "username, private_key) or password (client_id, client_secret, username, password; "
        "being retired by Salesforce).",
    ),
    th.Property("client_id", th.StringType, description="Connected app consumer key."),
    th.Property(
        "client_secret", th.StringType, secret=True, description="Connected app consumer secret."
    ),
    th.Property(
        "refresh_token",
        th.StringType,
        secret=True,
        description="OAuth refresh token (auth_flow refresh_token).",
    ),
    th.Property(
        "username",
        th.StringType,
        description="Salesforce username (auth_flow password and jwt_bearer).",
    ),
    th.Property(
        "password",
        th.StringType,
        secret=True,
        description="Salesforce password followed by the security token (auth_flow password).",
    ),
    th.Property(
        "private_key",
        th.StringType,
        secret=True,
        description="PEM text of the private key whose certificate is on the connected app "
        "(auth_flow jwt_bearer).",
    ),
    th.Property(
        "access_token",
        th.StringType,
        secret=True,
        description="A ready access token, used as is instead of an OAuth flow. It cannot be "
        "refreshed: when Pardot rejects it (error 184) the run stops.",
    ),
    th.Property(
        "login_url",
        th.StringType,
        description="Salesforce OAuth host. Default https://login.salesforce.com, or "
        "https://test.salesforce.com when sandbox is true; use the My Domain URL for "
        "client_credentials.",
    ),
    th.Property(
        "pardot_url",
        th.StringType,
        description="Pardot API host. Default https://pi.pardot.com, or "
        "https://pi.demo.pardot.com when sandbox is true (developer orgs use the demo host too).",
    ),
    th.Property(
        "sandbox",
        th.BooleanType,
        default=False,
        description="Switch the login_url and pardot_url defaults to the sandbox hosts.",
    ),
    th.Property(
        "api_version",
        th.IntegerType,
        default=4,
        allowed_values=list(SUPPORTED_API_VERSIONS),
        description="Pardot API version: 3 (email is unique in the business unit), 4 (several "
        "prospects may share an email) or 5 (works for both).",
    ),
    th.Property(
        "campaign_id",
        th.IntegerType,
        description="Campaign given to prospects this target creates (otherwise Pardot uses "
        "the account's oldest campaign).",
    ),
    th.Property(
        "lookup_field",
        th.StringType,
        description="API name (field_id) of a Pardot custom field that identifies a prospect, "
        "matched against the record's trait of the same name (or its userId, see "
        "use_user_id_as_lookup). v4 and v5 only.",
    ),
    th.Property(
        "use_user_id_as_lookup",
        th.BooleanType,
        default=False,
        description="Match lookup_field against the record's userId instead of a trait, and "
        "write the userId into that field on create.",
    ),
    th.Property(
        "lookup_strategy",
        th.StringType,
        default="auto",
        allowed_values=list(LOOKUP_STRATEGIES),
        description="How prospects are found by lookup value or email: read (one read by email "
        "per record), scan (page once through all prospects of the business unit, 200 per call "
        "in v4, 1000 in v5) or auto (whichever costs fewer calls for this run).",
    ),
    th.Property(
        "match_by_email",
        th.BooleanType,
        default=True,
        description="v4/v5: a record with only an email updates the most recently updated "
        "prospect with that email (one is created only when none exists). false applies "
        "Pardot's raw v4 rule: every such record creates a new prospect.",
    ),
    th.Property(
        "on_empty_lookup",
        th.StringType,
        default="match_by_email",
        allowed_values=list(EMPTY_LOOKUP_POLICIES),
        description="With lookup_field: what a record does when no prospect has its lookup "
        "value but prospects with its email have the lookup field empty (prospects made before "
        "the field was used). match_by_email updates the most recently updated of them, which "
        "sets the field (counted as claimed); create makes a new prospect beside them (a "
        "duplicate); reject sends the record to the reject file.",
    ),
    th.Property(
        "sync_mode",
        th.StringType,
        default="upsert",
        allowed_values=list(SYNC_MODES),
        description="upsert updates the prospect a record matches and creates one when none "
        "does; update_only never creates (records without an existing prospect are skipped); "
        "create_only never changes an existing prospect (records that match one are skipped).",
    ),
    th.Property(
        "dry_run",
        th.BooleanType,
        default=False,
        description="Authenticate, read, map, match and validate every record and write the "
        "reject file, but make no write call and pass on no STATE: the summary says what a "
        "real run would create, update, upsert by email, skip and reject.",
    ),
    th.Property(
        "write_method",
        th.StringType,
        default="api",
        allowed_values=list(WRITE_METHODS),
        description="How prospects are written: api (the prospect endpoints, as the matching "
        "table describes), import (Pardot's Import API: CSV batches that Pardot applies in the "
        "background, a few calls per up to 50,000 records; api_version 4 or 5: v5 imports "
        "every write and needs campaign_id, v4 imports the updates of existing prospects and "
        "still creates through batchUpsert) or auto (import a "
        "batch that holds more than import_threshold prospects to import, api otherwise). "
        "Named write_method because singer-sdk's own load_method setting means something "
        "else.",
    ),
    th.Property(
        "import_threshold",
        th.IntegerType,
        default=1000,
        description="write_method auto: a batch with more prospects than this to import (v4: "
        "to update) is imported. Below it the API costs at most this many calls in v5 (a "
        "fiftieth of it in v4) and reports each record at once; above it an import's fixed "
        "cost (a few calls: create, start, polls; plus Pardot's processing time) is far "
        "cheaper against the daily quota.",
    ),
    th.Property(
        "import_state_path",
        th.StringType,
        description="File that remembers the Import API imports this target started and has "
        "not yet seen finish, so that after a crash or a lost answer the next run waits for "
        "them instead of sending their records again. Default: "
        ".meltano/target-pardot/imports-<business_unit_id>.json in the Meltano project "
        "(MELTANO_PROJECT_ROOT), else target-pardot-imports-<business_unit_id>.json in the "
        "working directory. A relative path is taken from the Meltano project, as for "
        "reject_dir.",
    ),
    th.Property(
        "reject_dir",
        th.StringType,
        default=DEFAULT_REJECT_DIR,
        description="Directory of the reject files: each run that rejects a record writes "
        "every rejected record, with its stream, Pardot's error code and the reason, to a file "
        "of its own named after the run's start time (rejects-20261124T130000Z.jsonl, UTC), "
        "created owner-only (0600). A relative path is taken from the Meltano project "
        "(MELTANO_PROJECT_ROOT) when Meltano runs the target, else from the working directory.",
    ),
    th.Property(
        "reject_file",
        th.StringType,
        description="One fixed reject file, used instead of reject_dir: each run that rejects "
        "a record replaces it, so it holds the rejects of the latest such run only. A relative "
        "path is taken from the Meltano project, as for reject_dir.",
    ),
    th.Property(
        "max_reject_ratio",
        NumberOrText,
        default=0.5,
        description="Stop the run when more than this share of the records seen so far were "
        "rejected (checked once 20 records have been seen), so a broken mapping cannot "
        "reject a whole table. 1 disables the check.",
    ),
    th.Property(
        "max_concurrency",
        th.IntegerType,
        default=4,
        description="Pardot calls in flight at once, across all streams (1 to 5; Pardot allows "
        "5 per account, so 4 leaves room for other integrations).",
    ),
    th.Property(
        "max_retries",
        th.IntegerType,
        default=6,
        description="Attempts after the first for a call that failed transiently (connection "
        "errors, timeouts, HTTP 5xx, concurrency limit and other transient Pardot codes).",
    ),
    th.Property(
        "max_retry_seconds",
        NumberOrText,
        default=300,
        description="Upper bound on the total time spent retrying one call.",
    ),
    th.Property(
        "request_timeout",
        NumberOrText,
        default=60,
        description="Seconds to wait for Pardot's answer to one call.",
    ),
    th.Property(
        "progress_interval",
        th.IntegerType,
        default=30,
        description="Seconds between progress lines on stderr (records done, rate, API calls "
        "used, calls in flight) during a run; 0 turns them off.",
    ),
    th.Property(
        "skip_unchanged",
        th.BooleanType,
        default=False,
        description="Remember a fingerprint of what each prospect identity (Pardot id, "
        "Salesforce fid, lookup value or email) last had written, once Pardot confirmed it, and "
        "send a record only when it differs: an unchanged record costs no call and counts as "
        "unchanged. Trade-off: a value edited by hand in Pardot is not overwritten until the "
        "source row changes (see full_resync).",
    ),
    th.Property(
        "skip_unchanged_store",
        th.StringType,
        description="SQLite file of the skip_unchanged fingerprints (hashes only, no emails). "
        "Default .meltano/target-pardot/unchanged.sqlite in the Meltano project "
        "(MELTANO_PROJECT_ROOT), else target-pardot-unchanged.sqlite in the working directory. "
        "A run locks it for its business unit, and a second run of that unit at the same "
        "time stops. A relative path is taken from the Meltano project, as for reject_dir.",
    ),
    th.Property(
        "full_resync",
        th.BooleanType,
        default=False,
        description="With skip_unchanged: send every record as if none had been sent before, "
        "and rewrite the fingerprints from what Pardot confirms (e.g. after hand edits in "
        "Pardot).",
    ),
).to_dict()


# Each setting's default is declared once, in the schema above; everything below reads it here.
DEFAULTS: dict[str, Any] = {
    name: spec["default"] for name, spec in CONFIG_SCHEMA["properties"].items() if "default" in spec
}

# The settings that may be given as numeric text (max_reject_ratio, ...), read from the schema.
NUMBER_SETTINGS: tuple[str, ...] = tuple(
    name for name, spec in CONFIG_SCHEMA["properties"].items() if "number" in spec["type"]
)


@dataclass(frozen=True)
class Settings:
    """The checked settings of one run. Build it with `from_config`, which fills in defaults."""

    business_unit_id: str
    auth_flow: str
    login_url: str
    pardot_url: str
    api_version: int
    client_id: str | None
    client_secret: str | None
    refresh_token: str | None
    username: str | None
    password: str | None
    private_key: str | None
    access_token: str | None
    campaign_id: int | None
    lookup_field: str | None
    use_user_id_as_lookup: bool
    lookup_strategy: str
    match_by_email: bool
    on_empty_lookup: str
    sync_mode: str
    dry_run: bool
    write_method: str
    import_threshold: int
    import_state_path: str | None
    reject_dir: str
    reject_file: str | None
    max_reject_ratio: float
    max_concurrency: int
    max_retries: int
    max_retry_seconds: float
    request_timeout: float
    progress_interval: int
    skip_unchanged: bool
    skip_unchanged_store: str
    full_resync: bool

    def __repr__(self) -> str:
        # Settings hold secrets; a repr that ends up in a traceback or log must not show them.
        return (
            f"Settings(business_unit_id={self.business_unit_id!r}, auth_flow={self.auth_flow!r}, "
            f"login_url={self.login_url!r}, pardot_url={self.pardot_url!r}, "
            f"api_version={self.api_version})"
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        values = numbers_from_text(with_defaults(config))
        errors = list(_problems(config, values))
        if errors:
            raise ConfigValidationError(
                "target-pardot settings are invalid: " + "; ".join(errors), errors=errors
            )
        sandbox = bool(values["sandbox"])
        return cls(
            business_unit_id=values["business_unit_id"],
            auth_flow=values["auth_flow"],
            login_url=_strip(
                values.get("login_url") or (SANDBOX_LOGIN_URL if sandbox else PRODUCTION_LOGIN_URL)
            ),
            pardot_url=_strip(
                values.get("pardot_url") or (DEMO_PARDOT_URL if sandbox else PRODUCTION_PARDOT_URL)
            ),
            api_version=int(values["api_version"]),
            client_id=values.get("client_id"),
            client_secret=values.get("client_secret"),
            refresh_token=values.get("refresh_token"),
            username=values.get("username"),
            password=values.get("password"),
            private_key=values.get("private_key"),
            access_token=values.get("access_token"),
            campaign_id=values.get("campaign_id"),
            lookup_field=values.get("lookup_field"),
            use_user_id_as_lookup=bool(values["use_user_id_as_lookup"]),
            lookup_strategy=values["lookup_strategy"],
            match_by_email=bool(values["match_by_email"]),
            on_empty_lookup=values["on_empty_lookup"],
            sync_mode=values["sync_mode"],
            dry_run=bool(values["dry_run"]),
            write_method=values["write_method"],
            import_threshold=int(values["import_threshold"]),
            # Relative paths from the Meltano project, as the defaults are: a run started in
            # a subdirectory must find the imports and fingerprints the last one left.
            import_state_path=(
                in_project(values["import_state_path"]) if values.get("import_state_path") else None
            ),
            reject_dir=values["reject_dir"],
            reject_file=values.get("reject_file"),
            max_reject_ratio=float(values["max_reject_ratio"]),
            max_concurrency=int(values["max_concurrency"]),
            max_retries=int(values["max_retries"]),
            max_retry_seconds=float(values["max_retry_seconds"]),
            request_timeout=float(values["request_timeout"]),
            progress_interval=int(values["progress_interval"]),
            skip_unchanged=bool(values["skip_unchanged"]),
            skip_unchanged_store=(
                in_project(values["skip_unchanged_store"])
                if values.get("skip_unchanged_store")
                else default_store_path()
            ),
            full_resync=bool(values["full_resync"]),
        )


def default_store_path(environ: Mapping[str, str] | None = None) -> str:
    """Where skip_unchanged keeps its fingerprints unless skip_unchanged_store says.

    Under Meltano, in the project's own `.meltano/` (Meltano sets MELTANO_PROJECT_ROOT for the
    plugins it runs), next to its other run-time state; otherwise in the working directory.
    """
    root = (os.environ if environ is None else environ).get("MELTANO_PROJECT_ROOT")
    if root:
        return os.path.join(root, ".meltano", "target-pardot", "unchanged.sqlite")
    return DEFAULT_STORE_FILE


def in_project(path: str, environ: Mapping[str, str] | None = None) -> str:
    """A relative path taken from the Meltano project rather than the working directory.

    Meltano runs a plugin in the directory `meltano` was started from, which may be any
    subdirectory of the project; MELTANO_PROJECT_ROOT, which it sets for the plugins it runs,
    is the one place every run agrees on. Without Meltano the path stays relative to the
    working directory. An absolute path is returned as it is.
    """
    root = (os.environ if environ is None else environ).get("MELTANO_PROJECT_ROOT")
    if root and not os.path.isabs(path):
        return os.path.join(root, path)
    return path


def with_defaults(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config with each missing, null or empty-text setting at its schema default.

    Meltano passes an unset setting as null or "", which means "the default" here too.
    """
    given = {name: value for name, value in config.items() if value is not None and value != ""}
    return {**DEFAULTS, **given}


def numbers_from_text(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values with each number setting given as numeric text ("0.9") turned into a float.

    Text that is not a number is left as it is, for _problems to refuse naming the setting.
    """
    converted = dict(values)
    for name in NUMBER_SETTINGS:
        value = converted.get(name)
        if isinstance(value, str) and NUMBER_TEXT_PATTERN.match(value.strip()):
            converted[name] = float(value)
    return converted


@functools.cache
def sdk_setting_names() -> frozenset[str]:
    """Every setting singer-sdk defines for its plugins (stream_maps, batch_size_rows, ...).

    Read from the SDK at run time, so a setting a new SDK release adds is accepted too. Some
    (hard_delete, default_target_schema...) mean nothing to this target, but config shared
    between SDK plugins may carry them.
    """
    names: set[str] = set()
    for value in vars(capabilities).values():
        if isinstance(value, dict) and isinstance(value.get("properties"), dict):
            names.update(value["properties"])
    return frozenset(names)


def known_settings() -> frozenset[str]:
    return frozenset(CONFIG_SCHEMA["properties"]) | sdk_setting_names()


def _unknown_setting_problems(names: Collection[str]) -> list[str]:
    known = known_settings()
    problems = []
    for name in sorted(set(names) - known):
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "see target-pardot --about"
        problems.append(f"unknown setting {name!r} ({hint})")
    return problems


def _strip(url: str) -> str:
    return url.rstrip("/")


# Salesforce's shared login hosts: the client_credentials grant works only on My Domain.
_GENERIC_LOGIN_HOSTS = frozenset({"login.salesforce.com", "test.salesforce.com"})


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def _problems(config: Mapping[str, Any], values: Mapping[str, Any]) -> list[str]:
    problems = _unknown_setting_problems(list(config))
    business_unit_id = config.get("business_unit_id")
    if not business_unit_id:
        problems.append("business_unit_id is required")
    elif not BUSINESS_UNIT_ID_PATTERN.match(str(business_unit_id)):
        problems.append(
            "business_unit_id must be 18 letters and digits starting with 0Uv "
            f"(got {len(str(business_unit_id))} characters starting with "
            f"{str(business_unit_id)[:3]!r})"
        )

    flow = values["auth_flow"]
    if flow not in AUTH_FLOWS:
        problems.append(f"auth_flow must be one of {', '.join(AUTH_FLOWS)} (got {flow!r})")
    elif not config.get("access_token"):
        missing = [name for name in FLOW_REQUIREMENTS[flow] if not config.get(name)]
        if missing:
            problems.append(
                f"auth_flow {flow} needs {', '.join(missing)} (or set access_token to use a "
                "ready token)"
            )

    for name in ("login_url", "pardot_url"):
        url = config.get(name)
        if url:
            problem = _url_problem(name, str(url))
            if problem:
                problems.append(problem)
    if flow == "client_credentials" and not config.get("access_token"):
        login_url = str(config.get("login_url") or "").rstrip("/")
        if not login_url or _host(login_url) in _GENERIC_LOGIN_HOSTS:
            problems.append(
                "auth_flow client_credentials needs login_url set to the org's My Domain URL "
                "(https://<your-domain>.my.salesforce.com, or .sandbox.my.salesforce.com): "
                "Salesforce refuses this grant on login.salesforce.com and test.salesforce.com"
            )

    version = values["api_version"]
    if version not in SUPPORTED_API_VERSIONS:
        problems.append(f"api_version must be 3, 4 or 5 (got {version!r})")

    concurrency = values["max_concurrency"]
    if not isinstance(concurrency, int) or not 1 <= concurrency <= 5:
        problems.append(
            f"max_concurrency must be between 1 and 5: Pardot allows 5 calls in flight per "
            f"account (got {concurrency!r})"
        )

    ratio = values["max_reject_ratio"]
    if not _is_number(ratio) or not 0 <= ratio <= 1:
        problems.append(f"max_reject_ratio must be a number between 0 and 1 (got {ratio!r})")

    for name in ("max_retries", "max_retry_seconds", "request_timeout"):
        value = values[name]
        if not _is_number(value) or value < 0:
            problems.append(f"{name} must be a non-negative number (got {value!r})")

    strategy = values["lookup_strategy"]
    if strategy not in LOOKUP_STRATEGIES:
        problems.append(f"lookup_strategy must be one of {', '.join(LOOKUP_STRATEGIES)}")
    for name, allowed in (("sync_mode", SYNC_MODES), ("on_empty_lookup", EMPTY_LOOKUP_POLICIES)):
        if values[name] not in allowed:
            problems.append(f"{name} must be one of {', '.join(allowed)} (got {values[name]!r})")

    interval = values["progress_interval"]
    if not isinstance(interval, int) or isinstance(interval, bool) or interval < 0:
        problems.append(
            f"progress_interval must be a whole number of seconds, 0 or more (got {interval!r})"
        )

    problems.extend(_write_method_problems(values))

    if config.get("lookup_field") and version == 3:
        problems.append(
            "lookup_field needs api_version 4 or 5: in v3 the email is the prospect's identity"
        )
    if config.get("use_user_id_as_lookup") and not config.get("lookup_field"):
        problems.append("use_user_id_as_lookup needs lookup_field (the custom field to match)")
    return problems


def _write_method_problems(values: Mapping[str, Any]) -> list[str]:
    method = values["write_method"]
    if method not in WRITE_METHODS:
        return [f"write_method must be one of {', '.join(WRITE_METHODS)} (got {method!r})"]
    problems = []
    threshold = values["import_threshold"]
    if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
        problems.append(
            f"import_threshold must be a whole number of at least 1 (got {threshold!r})"
        )
    if method == "api":
        return problems
    version = values["api_version"]
    if version not in IMPORT_API_VERSIONS:
        problems.append(
            f"write_method {method} needs api_version 4 or 5: Pardot's Import API is used "
            "through v4 and v5 only (a business unit on v3 can use api_version 5, which works "
            "for every business unit; v3 batches already write 50 records a call)"
        )
    elif version in CREATING_IMPORT_VERSIONS and values.get("campaign_id") is None:
        problems.append(
            f"write_method {method} needs campaign_id with api_version {version}: Pardot's "
            "Import API requires a campaignId column for the prospects an import may create; "
            "set campaign_id to the campaign new prospects should join (Pardot: Marketing > "
            "Campaigns, the id in the campaign's URL)"
        )
    return problems


def _is_number(value: Any) -> bool:
    # The SDK parses decimals in config files as Decimal; bool is an int but not a number here.
    return isinstance(value, numbers.Real | decimal.Decimal) and not isinstance(value, bool)


def _url_problem(name: str, url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{name} must be an absolute http(s) URL (got {url!r})"
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return f"{name} must use https unless it points at this machine (got {url!r})"
    return None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
