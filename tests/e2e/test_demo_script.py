"""`make demo` (scripts/demo.py) writes to the bundled emulator and nowhere else, whatever the
caller's shell or the project's .env hold."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from pardot_emulator import PardotEmulator
from tests.e2e.test_meltano_pipeline import ROOT, require_plugins


def demo_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_pinned_connection_is_meltano_ymls_demo_environment() -> None:
    demo = demo_script()
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    [environment] = [e for e in project["environments"] if e["name"] == "demo"]
    [loader] = [
        p for p in environment["config"]["plugins"]["loaders"] if p["name"] == "target-pardot"
    ]
    declared = {
        name: str(value).replace("${PARDOT_EMULATOR_URL}", "{url}")
        for name, value in loader["config"].items()
        if name in demo.DEMO_CONNECTION
    }
    assert declared == demo.DEMO_CONNECTION
    assert not set(demo.DEMO_UNSET) & set(loader["config"])


def test_connection_variables_of_the_callers_environment_are_replaced() -> None:
    demo = demo_script()
    env = demo.meltano_env(
        "http://127.0.0.1:5000",
        {
            "TARGET_PARDOT_PARDOT_URL": "https://pi.pardot.com",
            "TARGET_PARDOT_CLIENT_SECRET": "real-secret",
            "TARGET_PARDOT_PASSWORD": "real-password",
            "TARGET_PARDOT_LOOKUP_STRATEGY": "scan",
        },
    )
    assert env["TARGET_PARDOT_PARDOT_URL"] == "http://127.0.0.1:5000/"
    assert env["TARGET_PARDOT_CLIENT_SECRET"] == "emulator-client-secret"
    assert env["TARGET_PARDOT_PASSWORD"] == ""
    assert env["TARGET_PARDOT_LOOKUP_STRATEGY"] == "scan"  # behaviour settings still apply


@pytest.mark.meltano
def test_make_demo_in_a_shell_set_up_for_a_real_pardot_writes_only_to_the_emulator(
    tmp_path: Path,
) -> None:
    """Before: the shell's TARGET_PARDOT_* variables beat meltano.yml's demo environment, so
    the sample prospects went to whatever Pardot the shell named."""
    require_plugins()
    with PardotEmulator(ampsea=True) as real_pardot:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MELTANO_", "TARGET_"))}
        env.update(
            MELTANO_DATABASE_URI=f"sqlite:///{tmp_path / 'meltano.db'}",
            TARGET_PARDOT_LOGIN_URL=real_pardot.url,
            TARGET_PARDOT_PARDOT_URL=real_pardot.url,
            TARGET_PARDOT_BUSINESS_UNIT_ID="0Uv000000000009AAA",
            TARGET_PARDOT_CLIENT_SECRET="real-secret-abc",
        )
        demo = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "demo.py")],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        output = demo.stdout + demo.stderr
        assert demo.returncode == 0, output[-5000:]
        assert real_pardot.api_calls == 0 and real_pardot.token_calls == 0
        assert real_pardot.prospects() == []
    assert "the demo ignores TARGET_PARDOT_BUSINESS_UNIT_ID, TARGET_PARDOT_CLIENT_SECRET" in output
    assert "real-secret-abc" not in output
    assert "the Meltano pipeline succeeded" in output
