"""docs/meltano-plugin.yml, the plugin entry users copy into their Meltano project.

It is kept in one place: README quotes it verbatim (checked here), its settings are every setting
of `target-pardot --about` with the right kind and secrets marked sensitive, and the target's own
settings read the same as in this repository's meltano.yml. tests/e2e/test_meltano_own_project.py
builds a Meltano project from it and runs it.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from target_pardot.settings import CONFIG_SCHEMA
from tests.conftest import TARGET_COMMAND

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
SNIPPET = ROOT / "docs" / "meltano-plugin.yml"
BEGIN = "<!-- docs/meltano-plugin.yml: begin -->"
END = "<!-- docs/meltano-plugin.yml: end -->"
KINDS = {
    "string": "string",
    "boolean": "boolean",
    "integer": "integer",
    "object": "object",
    "array": "array",
}


def meltano_kind(prop: dict[str, Any]) -> str:
    """The kind a Meltano setting needs for a setting of this JSON schema."""
    types = [t for t in prop["type"] if t != "null"]
    if types == ["string"] and "enum" in prop:
        return "options"
    if types == ["number", "string"]:
        # A number or numeric text: Meltano 4.4 crashes on a `decimal` setting given as an
        # environment variable ("Object of type Decimal is not JSON serializable"), and passes
        # a `string` one as text, which the target converts.
        return "string"
    (json_type,) = types
    return KINDS[json_type]


def snippet_loader() -> dict[str, Any]:
    (loader,) = yaml.safe_load(SNIPPET.read_text(encoding="utf-8"))["plugins"]["loaders"]
    return loader


def about() -> dict[str, Any]:
    shown = subprocess.run(
        [TARGET_COMMAND, "--about", "--format=json"], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(shown)


def test_readme_quotes_the_snippet_verbatim() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.count(BEGIN) == 1 and readme.count(END) == 1, "markers missing or repeated"
    quoted = readme.split(BEGIN, 1)[1].split(END, 1)[0]
    match = re.fullmatch(r"\s*```yaml\n(.*?)```\s*", quoted, flags=re.DOTALL)
    assert match, "the README block between the markers must be one ```yaml fence"
    assert match.group(1) == SNIPPET.read_text(encoding="utf-8"), (
        "README's plugin entry differs from docs/meltano-plugin.yml: paste the file between "
        "the markers"
    )


def test_snippet_is_a_custom_plugin_installed_from_git() -> None:
    loader = snippet_loader()
    assert loader["name"] == "target-pardot"
    assert loader["namespace"] == "target_pardot"
    assert loader["executable"] == "target-pardot"
    assert loader["pip_url"].startswith("git+https://")
    assert "variant" not in loader  # a variant would need Meltano Hub or a lock file


def test_snippet_declares_the_capabilities_of_about() -> None:
    # Meltano acts on what the entry declares, not on --about: without structured-logging, for
    # one, it logs every line of the target (errors included) at info level.
    assert sorted(snippet_loader()["capabilities"]) == sorted(about()["capabilities"])


def test_snippet_declares_every_setting_of_about_with_its_kind_and_secrecy() -> None:
    declared = {setting["name"]: setting for setting in snippet_loader()["settings"]}
    properties = about()["settings"]["properties"]
    assert sorted(declared) == sorted(properties)

    for name, prop in properties.items():
        setting = declared[name]
        assert setting.get("kind") == meltano_kind(prop), name
        # Meltano masks sensitive settings and never writes them to meltano.yml.
        assert bool(setting.get("sensitive")) == bool(prop.get("secret")), name
        assert setting.get("description"), name
        if setting["kind"] == "options":
            assert [option["value"] for option in setting["options"]] == prop["enum"], name
        # Defaults are the target's own: a `value:` here would override them for every user.
        assert "value" not in setting, name


def test_snippet_and_the_demo_project_describe_the_target_settings_alike() -> None:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    (demo,) = [p for p in project["plugins"]["loaders"] if p["name"] == "target-pardot"]
    loader = snippet_loader()
    for key in ("namespace", "executable", "capabilities", "settings_group_validation"):
        assert loader[key] == demo[key], key
    ours = {s["name"]: s for s in loader["settings"] if s["name"] in CONFIG_SCHEMA["properties"]}
    assert ours == {s["name"]: s for s in demo["settings"]}
