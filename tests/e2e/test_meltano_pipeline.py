"""The real Meltano pipeline on the demo data: `meltano run tap-jsonl target-pardot`.

The emulator runs in this process; Meltano, tap-jsonl and target-pardot run as they do for a user
(plugins from .meltano/, installed by `make test` or `meltano install`). Nothing leaves
127.0.0.1. The expectations are computed here from demo/data, independently of the target.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pardot_emulator import PardotEmulator
from target_pardot.settings import CONFIG_SCHEMA
from tests.test_meltano_plugin_doc import meltano_kind

ROOT = Path(__file__).resolve().parents[2]
MELTANO = str(Path(sys.executable).with_name("meltano"))
DATA_DIR = ROOT / "demo" / "data"
GOOD_FILES = ("01-segment-identify.jsonl", "02-segment-warehouse.jsonl", "03-pardot-rows.jsonl")
PROBLEM_FILE = "04-problem-records.jsonl"
SEED_FILE = ROOT / "demo" / "seed-prospects.jsonl"
STREAM = "identifies"  # tap-jsonl's stream_name in meltano.yml
STATE_ID = "demo:tap-jsonl-to-target-pardot"  # meltano run's state id for this pair
PLUGIN_VENVS = (
    ROOT / ".meltano" / "extractors" / "tap-jsonl" / "venv",
    ROOT / ".meltano" / "loaders" / "target-pardot" / "venv",
)
# Records come back in reject files as the tap sent them, date-times included (singer-sdk is not
# given their formats to parse, see target_pardot/sink.py), and decimals as text (the SDK
# reads them into Decimals): compare decimals as text.


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def email_of(record: dict[str, Any]) -> str:
    """The email of a good sample record, whatever its shape."""
    if "traits" in record or "context" in record:
        traits = record.get("traits") or {}
        email = traits.get("email") or ((record.get("context") or {}).get("traits") or {}).get(
            "email"
        )
    else:
        email = record.get("email")
    assert isinstance(email, str) and "@" in email, f"sample record without an email: {record}"
    return email.strip().lower()


def org_id_of(record: dict[str, Any]) -> str | None:
    return (record.get("traits") or {}).get("org_id") or record.get("org_id")


def comparable(record: dict[str, Any]) -> str:
    kept = {k: v for k, v in record.items() if not k.startswith("_sdc_")}
    return json.dumps(_floats_as_text(kept), sort_keys=True, ensure_ascii=False)


def _floats_as_text(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _floats_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_floats_as_text(v) for v in value]
    return str(value) if isinstance(value, float) else value


def require_plugins() -> None:
    missing = [str(p.relative_to(ROOT)) for p in PLUGIN_VENVS if not p.exists()]
    if not missing:
        return
    message = (
        f"Meltano plugins not installed ({', '.join(missing)} missing): run `make test`, or "
        "`MELTANO_SEND_ANONYMOUS_USAGE_STATS=false .venv/bin/meltano install` from the repo root"
    )
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so this is a failure, not a skip)")
    pytest.skip(message)


def meltano(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MELTANO, *args],
        cwd=ROOT,  # Meltano finds meltano.yml in its working directory
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.meltano
def test_meltano_run_loads_the_demo_data_into_the_emulator(tmp_path: Path) -> None:
    require_plugins()

    good = [r for name in GOOD_FILES for r in read_jsonl(DATA_DIR / name)]
    problems = read_jsonl(DATA_DIR / PROBLEM_FILE)
    seeds = read_jsonl(SEED_FILE)
    sample_emails = {email_of(r) for r in good}
    seed_emails = {s["email"].lower() for s in seeds}
    assert sample_emails & seed_emails, "the seed must share emails with the data (updates)"
    records_per_email = Counter(email_of(r) for r in good)

    reject_file = tmp_path / "rejects.jsonl"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MELTANO_", "TARGET_PARDOT_", "TAP_JSONL_"))
    }
    env.update(
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        # A system database of its own: the state found below is this run's, and the project's
        # .meltano/meltano.db is left alone.
        MELTANO_DATABASE_URI=f"sqlite:///{tmp_path / 'meltano.db'}",
        # Overrides reject_file from meltano.yml's demo environment.
        TARGET_PARDOT_REJECT_FILE=str(reject_file),
    )

    with PardotEmulator(ampsea=True) as emulator:
        emulator.add_custom_field("org_id")
        seeded = [emulator.add_prospect(s.pop("email"), **s) for s in seeds]
        env["PARDOT_EMULATOR_URL"] = emulator.url

        run = meltano(["--environment=demo", "run", "tap-jsonl", "target-pardot"], env)
        output = run.stdout + run.stderr
        assert run.returncode == 0, f"meltano run failed:\n{output[-6000:]}"
        prospects = emulator.prospects()
        api_calls = emulator.api_calls

    # Every valid sample email is there exactly once, the seeded prospects too, nothing else.
    emails = Counter(p["email"].lower() for p in prospects)
    assert set(emails) == sample_emails | seed_emails
    assert [e for e, n in emails.items() if n > 1] == []
    assert api_calls > 0

    by_id = {p["id"]: p for p in prospects}
    for seed in seeded:
        kept = by_id.get(seed["id"])
        assert kept is not None, f"seeded prospect {seed['id']} is gone"
        assert kept["email"].lower() == seed["email"].lower()
        if seed["email"].lower() in sample_emails:
            # Updated from the sample data, whose values never carry these stale ones.
            assert not str(kept["company"]).endswith("(old)"), kept
            assert kept["job_title"] != "Intern", kept

    # The custom field arrives, for people with one record only (duplicates may differ).
    by_email = {p["email"].lower(): p for p in prospects}
    org_ids = {
        email_of(r): org_id_of(r)
        for r in good
        if org_id_of(r) and records_per_email[email_of(r)] == 1 and email_of(r) not in seed_emails
    }
    assert org_ids, "the sample data should carry org_id on some records"
    assert {e: by_email[e].get("org_id") for e in org_ids} == org_ids

    # Every problem record, and only those, is in the reject file, with a reason.
    assert reject_file.exists(), f"no reject file; output:\n{output[-4000:]}"
    rejects = read_jsonl(reject_file)
    assert all(r.get("reason") and r.get("stream") == STREAM for r in rejects), rejects
    assert sorted(comparable(r["record"]) for r in rejects) == sorted(
        comparable(r) for r in problems
    )

    # The target finished its run, and Meltano stored the STATE it passed on.
    assert "target-pardot summary:" in output
    state = meltano(["--environment=demo", "state", "get", STATE_ID], env)
    assert state.returncode == 0, state.stdout + state.stderr
    bookmarks = json.loads(state.stdout)["singer_state"]["bookmarks"]
    files = {Path(p["context"]["_sdc_filename"]).name for p in bookmarks[STREAM]["partitions"]}
    assert files == {*GOOD_FILES, PROBLEM_FILE}


@pytest.mark.meltano
def test_meltano_invoke_test_checks_the_connection_without_writing(tmp_path: Path) -> None:
    """`meltano invoke target-pardot --test`: Meltano passes its config file and the flag on."""
    require_plugins()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MELTANO_", "TARGET_PARDOT_", "TAP_JSONL_"))
    }
    env.update(
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        MELTANO_DATABASE_URI=f"sqlite:///{tmp_path / 'meltano.db'}",
    )
    with PardotEmulator(ampsea=True) as emulator:
        emulator.add_custom_field("org_id")
        env["PARDOT_EMULATOR_URL"] = emulator.url
        run = meltano(["--environment=demo", "invoke", "target-pardot", "--test"], env)
        calls = emulator.call_counts
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert "every check passed" in run.stdout, output[-4000:]
    assert "api_version 4: Pardot answered a v4 prospect query" in run.stdout
    assert set(calls) == {"oauth.token", "v4.customField.query", "v4.prospect.query"}


def test_meltano_yml_declares_every_target_setting() -> None:
    """meltano.yml's loader settings match the target's own schema (names, kinds, secrets)."""
    yaml = pytest.importorskip("yaml")
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    (loader,) = [p for p in project["plugins"]["loaders"] if p["name"] == "target-pardot"]
    declared = {s["name"]: s for s in loader["settings"]}
    schema = CONFIG_SCHEMA["properties"]
    assert set(declared) == set(schema)

    for name, prop in schema.items():
        setting = declared[name]
        assert setting.get("kind") == meltano_kind(prop), name
        assert bool(setting.get("sensitive")) == bool(prop.get("secret")), name
        assert setting.get("description"), name
        if setting["kind"] == "options":
            assert [o["value"] for o in setting["options"]] == prop["enum"], name
        # Defaults are the target's: meltano.yml must not pass its own.
        assert "value" not in setting, name
