"""A user's own Meltano project, built from the README's plugin entry (docs/meltano-plugin.yml).

What a user does after reading "Install into your own Meltano project": a fresh project holding
tap-jsonl (declared as in this repository's meltano.yml) and the documented target-pardot entry,
non-secret settings in meltano.yml, secrets only as TARGET_PARDOT_* environment variables,
`meltano install`, then `meltano run tap-jsonl target-pardot` against an emulator started here.

The entry's pip_url (git+https://...) is pointed at a copy of this checkout: the same install a
user's `pip_url: /path/to/target-pardot` does, built like a fresh clone, without leaving build/
behind in the working tree. `meltano install` builds the wheel and reuses uv's cache for
tap-jsonl: about 3 s here; the whole test about 10 s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pardot_emulator import DEFAULT_CREDENTIALS, PardotEmulator

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
MELTANO = str(Path(sys.executable).with_name("meltano"))
SNIPPET = ROOT / "docs" / "meltano-plugin.yml"

GOOD = [
    # A Segment identify event, a warehouse row and a flat row of Pardot field names.
    {"type": "identify", "userId": "u1", "traits": {"email": "ada@example.com", "name": "Ada L"}},
    {"user_id": "u2", "email": "bob@example.com", "first_name": "Bob"},
    {"email": "cy@example.com", "company": "Cy Inc"},
]
BAD = {"email": "not-an-email", "first_name": "Bad"}
SECRETS = {
    "TARGET_PARDOT_CLIENT_ID": DEFAULT_CREDENTIALS["client_id"],
    "TARGET_PARDOT_CLIENT_SECRET": DEFAULT_CREDENTIALS["client_secret"],
    "TARGET_PARDOT_REFRESH_TOKEN": DEFAULT_CREDENTIALS["refresh_token"],
}


def copy_of_checkout(destination: Path) -> Path:
    skipped = shutil.ignore_patterns(
        ".git",
        ".venv",
        ".meltano",
        "build",
        "*.egg-info",
        "__pycache__",
        ".pytest_cache",
        ".ruff_cache",
        "out",
        "target-pardot-rejects",
    )
    return Path(shutil.copytree(ROOT, destination, ignore=skipped))


def project_yml(data_glob: str, emulator_url: str, pip_url: str) -> dict[str, Any]:
    repo = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    (tap,) = [p for p in repo["plugins"]["extractors"] if p["name"] == "tap-jsonl"]
    tap["config"] = {**tap.get("config", {}), "path": data_glob, "stream_name": "users"}

    (target,) = yaml.safe_load(SNIPPET.read_text(encoding="utf-8"))["plugins"]["loaders"]
    target["pip_url"] = pip_url
    # Only what is not secret goes into meltano.yml, as the README says.
    target["config"] = {
        "business_unit_id": DEFAULT_CREDENTIALS["business_unit_id"],
        "login_url": emulator_url,
        "pardot_url": emulator_url,
        "api_version": 4,
    }
    return {
        "send_anonymous_usage_stats": False,
        # As `meltano init` makes it: `meltano run` needs an environment.
        "default_environment": "dev",
        "environments": [{"name": "dev"}],
        "plugins": {"extractors": [tap], "loaders": [target]},
    }


def meltano(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MELTANO, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def user_environment(**variables: str) -> dict[str, str]:
    """This process's environment without Meltano's or the plugins' variables, plus these."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MELTANO_", "TARGET_PARDOT_", "TAP_JSONL_"))
    }
    env.update(SECRETS, MELTANO_SEND_ANONYMOUS_USAGE_STATS="false", **variables)
    return env


def install_project(
    tmp_path: Path, records: list[dict[str, Any]], emulator_url: str, env: dict[str, str]
) -> tuple[Path, dict[str, Any]]:
    """A Meltano project reading `records` into the documented entry, installed: (dir, yml)."""
    checkout = copy_of_checkout(tmp_path / "target-pardot")
    project = tmp_path / "my-project"
    data = project / "data"
    data.mkdir(parents=True)
    (data / "users.jsonl").write_text(
        "".join(json.dumps(record) + "\n" for record in records), encoding="utf-8"
    )
    config = project_yml(str(data / "*.jsonl"), emulator_url, str(checkout))
    (project / "meltano.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    install = meltano(project, env, "install")
    assert install.returncode == 0, (install.stdout + install.stderr)[-6000:]
    return project, config


@pytest.mark.meltano
def test_a_fresh_meltano_project_runs_the_documented_plugin_entry(tmp_path: Path) -> None:
    env = user_environment()

    with PardotEmulator(ampsea=True) as emulator:
        project, config = install_project(tmp_path, [*GOOD, BAD], emulator.url, env)
        meltano_yml = project / "meltano.yml"
        run = meltano(project, env, "run", "tap-jsonl", "target-pardot")
        output = run.stdout + run.stderr
        assert run.returncode == 0, output[-6000:]
        emails = sorted(p["email"] for p in emulator.prospects())

    assert emails == ["ada@example.com", "bob@example.com", "cy@example.com"]

    # reject_dir's default is relative to the project directory, and the summary names the file.
    (reject_file,) = (project / "target-pardot-rejects").glob("rejects-*.jsonl")
    rejected = [json.loads(line)["record"] for line in reject_file.read_text().splitlines()]
    # tap-jsonl adds _sdc_* columns (file name, stream...).
    assert [{k: v for k, v in r.items() if not k.startswith("_sdc_")} for r in rejected] == [BAD]
    summary = next(line for line in output.splitlines() if "target-pardot summary:" in line)
    assert "3 created" in summary and "1 rejected" in summary, summary
    assert str(reject_file) in summary, summary

    # Why the entry declares its settings: without them Meltano drops the TARGET_PARDOT_*
    # secrets from the config it gives the target (same plugin install, no new venv).
    def config_seen_by_target() -> dict[str, Any]:
        dumped = meltano(project, env, "invoke", "--dump=config", "target-pardot")
        assert dumped.returncode == 0, dumped.stderr[-3000:]
        return json.loads(dumped.stdout)

    assert config_seen_by_target()["client_secret"] == SECRETS["TARGET_PARDOT_CLIENT_SECRET"]
    del config["plugins"]["loaders"][0]["settings"]
    del config["plugins"]["loaders"][0]["settings_group_validation"]
    meltano_yml.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    assert "client_secret" not in config_seen_by_target()


@pytest.mark.meltano
def test_number_settings_from_environment_variables_reach_the_target_under_meltano(
    tmp_path: Path,
) -> None:
    # 15 of 20 records are bad: the default max_reject_ratio (0.5) would stop the run, the 0.9
    # given as an environment variable lets it finish. Meltano 4.4 crashed on such variables
    # when the entry declared these settings `kind: decimal`.
    good = [{"email": f"good{n}@example.com"} for n in range(5)]
    bad = [{"email": f"bad-{n}"} for n in range(15)]
    env = user_environment(
        TARGET_PARDOT_MAX_REJECT_RATIO="0.9",
        TARGET_PARDOT_MAX_RETRY_SECONDS="12.5",
        TARGET_PARDOT_REQUEST_TIMEOUT="5",
    )

    with PardotEmulator(ampsea=True) as emulator:
        project, _ = install_project(tmp_path, good + bad, emulator.url, env)
        run = meltano(project, env, "run", "tap-jsonl", "target-pardot")
        output = run.stdout + run.stderr
        assert run.returncode == 0, output[-6000:]
        assert len(emulator.prospects()) == 5

    assert "Decimal" not in output
    summary = next(line for line in output.splitlines() if "target-pardot summary:" in line)
    assert "20 records: 5 created" in summary and "15 rejected" in summary, summary


@pytest.mark.meltano
def test_meltano_logs_the_targets_errors_at_error_level(tmp_path: Path) -> None:
    # The entry declares structured-logging, so Meltano reads the level of each line the target
    # logs; without it every line, a stop included, came out at info.
    env = user_environment(TARGET_PARDOT_REFRESH_TOKEN="revoked-refresh-token")

    with PardotEmulator(ampsea=True) as emulator:
        project, _ = install_project(tmp_path, GOOD, emulator.url, env)
        run = meltano(project, env, "--log-format=json", "run", "tap-jsonl", "target-pardot")

    assert run.returncode != 0
    logged = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    levels = {entry["event"].split(":", 1)[0]: entry["level"] for entry in logged}
    assert levels["target-pardot stopped"] == "error", run.stderr[-6000:]
    assert levels["target-pardot summary"] == "info"
    assert "revoked-refresh-token" not in run.stdout + run.stderr
