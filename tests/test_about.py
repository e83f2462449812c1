"""`target-pardot --about`: every setting documented, the README table in step, no secrets."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from target_pardot.settings import CONFIG_SCHEMA
from tests.conftest import TARGET_COMMAND

ROOT = Path(__file__).resolve().parent.parent


def about(*args: str) -> str:
    return subprocess.run(
        [TARGET_COMMAND, "--about", *args], capture_output=True, text=True, check=True
    ).stdout


def test_every_setting_has_a_description() -> None:
    settings = json.loads(about("--format=json"))["settings"]["properties"]
    for name in CONFIG_SCHEMA["properties"]:
        assert settings[name].get("description"), name


def test_secrets_are_marked_secret() -> None:
    secret = {name for name, spec in CONFIG_SCHEMA["properties"].items() if spec.get("secret")}
    assert secret == {"client_secret", "refresh_token", "password", "private_key", "access_token"}


def test_the_readme_settings_table_is_the_about_output() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = [line for line in about("--format=markdown").splitlines() if line.startswith("| ")]
    ours = [row for row in rows if row.split("|")[1].strip() in CONFIG_SCHEMA["properties"]]
    assert len(ours) == len(CONFIG_SCHEMA["properties"])
    missing = [row for row in ours if row not in readme]
    assert not missing, "README settings table is out of date; paste --about rows:\n" + "\n".join(
        missing
    )


def test_about_with_a_config_prints_no_secret(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "business_unit_id": "0Uv000000000001AAA",
                "client_id": "id",
                "client_secret": "about-secret-value",
                "refresh_token": "about-refresh-value",
            }
        )
    )
    shown = about("--config", str(config)) + about("--config", str(config), "--format=json")
    assert "about-secret-value" not in shown
    assert "about-refresh-value" not in shown


def test_the_readme_names_the_python_versions_pyproject_and_about_do() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    [minimum] = re.findall(r'^requires-python = ">=(3\.\d+)"$', pyproject, flags=re.MULTILINE)
    versions = json.loads(about("--format=json"))["supported_python_versions"]
    assert versions[0] == minimum
    readme = (ROOT / "README.md").read_text()
    assert f"Python {minimum} or later ({versions[0]} to {versions[-1]})" in readme
    assert f"python3 ({minimum}+)" in (ROOT / "Makefile").read_text()
