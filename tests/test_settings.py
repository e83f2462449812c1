"""Settings: bad combinations fail before any call, naming the setting; secrets stay hidden."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from singer_sdk.exceptions import ConfigValidationError

from target_pardot.settings import (
    CONFIG_SCHEMA,
    DEMO_PARDOT_URL,
    PRODUCTION_LOGIN_URL,
    PRODUCTION_PARDOT_URL,
    SANDBOX_LOGIN_URL,
    Settings,
    known_settings,
)

BASE = {
    "business_unit_id": "0Uv000000000001AAA",
    "client_id": "id",
    "client_secret": "s3cret-value",
    "refresh_token": "r3fresh-value",
}


def settings(**overrides: object) -> Settings:
    return Settings.from_config({**BASE, **overrides})


def problems(**overrides: object) -> str:
    config = {**BASE, **overrides}
    config = {key: value for key, value in config.items() if value is not None}
    with pytest.raises(ConfigValidationError) as error:
        Settings.from_config(config)
    return str(error.value)


def test_defaults_point_at_production_and_api_version_4() -> None:
    result = settings()
    assert result.login_url == PRODUCTION_LOGIN_URL
    assert result.pardot_url == PRODUCTION_PARDOT_URL
    assert result.api_version == 4
    assert result.max_concurrency == 4
    assert result.auth_flow == "refresh_token"


def test_sandbox_switches_both_default_hosts() -> None:
    result = settings(sandbox=True)
    assert result.login_url == SANDBOX_LOGIN_URL
    assert result.pardot_url == DEMO_PARDOT_URL


def test_explicit_urls_win_over_sandbox_defaults_and_lose_trailing_slash() -> None:
    result = settings(sandbox=True, login_url="https://acme.my.salesforce.com/")
    assert result.login_url == "https://acme.my.salesforce.com"
    assert result.pardot_url == DEMO_PARDOT_URL


@pytest.mark.parametrize(
    "business_unit_id", ["", "0Uv00000000000", "1Uv000000000001AAA", "0Uv000000000001AAA!"]
)
def test_malformed_business_unit_id_is_named(business_unit_id: str) -> None:
    assert "business_unit_id" in problems(business_unit_id=business_unit_id)


@pytest.mark.parametrize(
    ("flow", "missing"),
    [
        ("refresh_token", "refresh_token"),
        ("client_credentials", "client_secret"),
        ("jwt_bearer", "private_key"),
        ("password", "password"),
    ],
)
def test_a_flow_without_its_credentials_names_what_is_missing(flow: str, missing: str) -> None:
    config = {
        "business_unit_id": BASE["business_unit_id"],
        "auth_flow": flow,
        "client_id": "x",
        "client_secret": "y",
        "username": "u",
        "refresh_token": "t",
        "password": "p",
        "private_key": "k",
    }
    config.pop(missing)
    with pytest.raises(ConfigValidationError) as error:
        Settings.from_config(config)
    assert f"auth_flow {flow} needs" in str(error.value)
    assert missing in str(error.value)


def test_a_static_access_token_needs_no_flow_credentials() -> None:
    result = Settings.from_config(
        {"business_unit_id": BASE["business_unit_id"], "access_token": "00Dxx!token"}
    )
    assert result.access_token == "00Dxx!token"


@pytest.mark.parametrize("name", ["login_url", "pardot_url"])
def test_plain_http_is_refused_unless_it_is_this_machine(name: str) -> None:
    assert f"{name} must use https" in problems(**{name: "http://pi.pardot.com"})
    assert getattr(settings(**{name: "http://127.0.0.1:8080"}), name) == "http://127.0.0.1:8080"
    assert getattr(settings(**{name: "http://localhost:8080"}), name) == "http://localhost:8080"


@pytest.mark.parametrize("concurrency", [0, 6])
def test_max_concurrency_stays_within_pardots_limit(concurrency: int) -> None:
    assert "max_concurrency" in problems(max_concurrency=concurrency)


def test_lookup_field_is_refused_on_v3() -> None:
    assert "lookup_field needs api_version 4 or 5" in problems(api_version=3, lookup_field="org")


def test_user_id_as_lookup_needs_a_lookup_field() -> None:
    assert "use_user_id_as_lookup needs lookup_field" in problems(use_user_id_as_lookup=True)


def test_every_problem_is_reported_at_once() -> None:
    text = problems(business_unit_id="bad", max_concurrency=9, api_version=7)
    assert "business_unit_id" in text
    assert "max_concurrency" in text
    assert "api_version" in text


def test_repr_and_errors_never_show_secrets() -> None:
    result = settings(password="pw-secret", private_key="-----BEGIN KEY-----")
    shown = repr(result) + str(result)
    for secret in ("s3cret-value", "r3fresh-value", "pw-secret", "BEGIN KEY"):
        assert secret not in shown
    assert "s3cret-value" not in problems(business_unit_id="bad")


def test_decimal_numbers_from_a_config_file_are_accepted() -> None:
    # singer-sdk reads JSON config numbers with a fraction as Decimal.
    from decimal import Decimal

    result = settings(max_reject_ratio=Decimal("0.25"), request_timeout=Decimal("2.5"))
    assert result.max_reject_ratio == 0.25
    assert result.request_timeout == 2.5


NUMBER_TEXT = {"max_reject_ratio": "0.9", "max_retry_seconds": "12.5", "request_timeout": " 5 "}


def test_number_settings_are_the_three_with_a_fraction() -> None:
    # Every setting whose value may have a fraction is listed here, so that the tests below
    # (and the environment variables they stand for) cover each one.
    numbers = {
        name for name, spec in CONFIG_SCHEMA["properties"].items() if "number" in spec["type"]
    }
    assert numbers == set(NUMBER_TEXT)


def test_number_settings_accept_numeric_text_as_environment_variables_give_it() -> None:
    result = settings(**NUMBER_TEXT)
    assert (result.max_reject_ratio, result.max_retry_seconds, result.request_timeout) == (
        0.9,
        12.5,
        5.0,
    )


def test_number_settings_from_the_environment_reach_the_target(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `--config ENV`: singer-sdk converts integer and boolean variables but passes these as text.
    from target_pardot.target import TargetPardot

    for name, value in {**BASE, **NUMBER_TEXT}.items():
        monkeypatch.setenv(f"TARGET_PARDOT_{name.upper()}", value)
    target = TargetPardot(config=None, parse_env_config=True, validate_config=True)
    assert target.settings.max_reject_ratio == 0.9
    assert target.settings.request_timeout == 5.0


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("max_reject_ratio", "max_reject_ratio must be a number between 0 and 1 (got 'lots')"),
        ("max_retry_seconds", "max_retry_seconds must be a non-negative number (got 'lots')"),
        ("request_timeout", "request_timeout must be a non-negative number (got 'lots')"),
    ],
)
def test_number_settings_given_text_that_is_no_number_are_refused_by_name(
    name: str, message: str
) -> None:
    assert message in problems(**{name: "lots"})


def test_an_unknown_setting_is_refused_naming_the_closest_known_one() -> None:
    text = problems(api_verison=3)
    assert "unknown setting 'api_verison' (did you mean 'api_version'?)" in text


def test_an_unknown_setting_like_no_known_one_is_refused_too() -> None:
    assert "unknown setting 'colour'" in problems(colour="blue")


@pytest.mark.parametrize(
    "name",
    [
        "stream_maps",
        "stream_map_config",
        "faker_config",
        "flattening_enabled",
        "flattening_max_depth",
        "batch_size_rows",
        "add_record_metadata",
        "load_method",
        "validate_records",
        "batch_config",
        "default_target_schema",
        "hard_delete",
        "process_activate_version_messages",
    ],
)
def test_the_sdks_own_settings_are_accepted(name: str) -> None:
    settings(**{name: None})


def test_every_setting_the_target_advertises_is_known() -> None:
    # The SDK adds its built-in settings to the schema at run time; none of them may be refused.
    import copy

    from target_pardot.target import TargetPardot

    schema = copy.deepcopy(TargetPardot.config_jsonschema)
    TargetPardot.append_builtin_config(schema)
    assert set(schema["properties"]) <= known_settings()


def test_every_default_comes_from_the_schema_users_see_in_about() -> None:
    settings = Settings.from_config({"business_unit_id": "0Uv000000000001AAA", "access_token": "t"})
    for name, spec in CONFIG_SCHEMA["properties"].items():
        if "default" in spec and hasattr(settings, name):
            assert getattr(settings, name) == spec["default"], name


def test_null_and_empty_settings_mean_the_default_as_meltano_passes_unset_ones() -> None:
    settings = Settings.from_config(
        {
            "business_unit_id": "0Uv000000000001AAA",
            "access_token": "t",
            "api_version": None,
            "lookup_strategy": "",
            "max_retries": None,
        }
    )
    assert (settings.api_version, settings.lookup_strategy, settings.max_retries) == (4, "auto", 6)


@pytest.mark.parametrize(
    ("name", "value"),
    [("sync_mode", "insert"), ("on_empty_lookup", "merge"), ("progress_interval", -1)],
)
def test_operator_settings_refuse_values_they_do_not_know(name: str, value: Any) -> None:
    assert name in problems(**{name: value})


def test_operator_settings_default_to_a_plain_sync_with_progress_every_30_seconds() -> None:
    result = settings()
    assert (result.sync_mode, result.on_empty_lookup, result.dry_run) == (
        "upsert",
        "match_by_email",
        False,
    )
    assert result.progress_interval == 30


def test_building_a_target_leaves_the_target_s_own_schema_alone() -> None:
    # singer-sdk adds its settings to the class's schema in place; ours must stay ours only.
    from target_pardot.target import TargetPardot

    before = copy.deepcopy(CONFIG_SCHEMA)
    TargetPardot(config={"business_unit_id": "0Uv000000000001AAA", "access_token": "t"})
    assert before == CONFIG_SCHEMA


# -- write_method ----------------------------------------------------------------------------


def test_write_method_defaults_to_the_api_with_an_import_threshold_of_1000() -> None:
    result = settings()
    assert (result.write_method, result.import_threshold, result.import_state_path) == (
        "api",
        1000,
        None,
    )


@pytest.mark.parametrize("method", ["import", "auto"])
def test_importing_needs_api_version_4_or_5_and_in_v5_a_campaign(method: str) -> None:
    assert settings(write_method=method, api_version=5, campaign_id=7).write_method == method
    text = problems(write_method=method, api_version=3, campaign_id=7)
    assert f"write_method {method} needs api_version 4 or 5" in text
    text = problems(write_method=method, api_version=5)
    assert f"write_method {method} needs campaign_id with api_version 5" in text
    assert "set campaign_id" in text
    # v4 imports only update; its creates go through batchUpsert, where a campaign is optional.
    assert settings(write_method=method, api_version=4).write_method == method


def test_write_method_and_import_threshold_are_checked() -> None:
    assert "write_method must be one of api, import, auto" in problems(write_method="bulk")
    assert "import_threshold must be a whole number of at least 1" in problems(import_threshold=0)
    # The SDK's own load_method is another setting: accepted, and not ours.
    assert settings(load_method="upsert").write_method == "api"


@pytest.mark.parametrize(
    "where",
    [
        {},
        {"sandbox": True},
        {"login_url": "https://login.salesforce.com/"},
        {"login_url": "https://TEST.salesforce.com"},
    ],
)
def test_client_credentials_on_a_shared_login_host_is_refused_before_any_call(
    where: dict[str, object],
) -> None:
    """Salesforce refuses this grant off the org's My Domain; before, the run failed at its
    first token request with a hint about expired refresh tokens."""
    found = problems(auth_flow="client_credentials", **where)
    assert "auth_flow client_credentials needs login_url set to the org's My Domain URL" in found


@pytest.mark.parametrize(
    "login_url", ["https://acme.my.salesforce.com", "https://acme--uat.sandbox.my.salesforce.com"]
)
def test_client_credentials_on_my_domain_is_accepted(login_url: str) -> None:
    assert settings(auth_flow="client_credentials", login_url=login_url).login_url == login_url


def test_relative_state_paths_are_taken_from_the_meltano_project(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: only their defaults were; a run started in a subdirectory of the project lost
    track of the imports and fingerprints the last run left."""
    monkeypatch.setenv("MELTANO_PROJECT_ROOT", "/srv/project")
    result = settings(
        import_state_path="state/imports.json", skip_unchanged_store="state/unchanged.sqlite"
    )
    assert result.import_state_path == "/srv/project/state/imports.json"
    assert result.skip_unchanged_store == "/srv/project/state/unchanged.sqlite"
    absolute = settings(import_state_path="/var/imports.json", skip_unchanged_store="/var/u.db")
    assert (absolute.import_state_path, absolute.skip_unchanged_store) == (
        "/var/imports.json",
        "/var/u.db",
    )
    monkeypatch.delenv("MELTANO_PROJECT_ROOT")
    assert settings(import_state_path="state/imports.json").import_state_path == (
        "state/imports.json"
    )
