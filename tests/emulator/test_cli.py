"""The pardot-emulator CLI, run as a real subprocess, plus its argument checks in-process."""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
import requests

from pardot_emulator import control
from pardot_emulator.__main__ import main
from pardot_emulator.oauth import JWT_BEARER
from tests.conftest import rsa_key_pair

from .helpers import BU, CREDS, TIMEOUT, refresh_form

ROOT = Path(__file__).resolve().parents[2]


def _wait_for(path: Path, process: subprocess.Popen[str], seconds: float = 10.0) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        if process.poll() is not None:
            break
        time.sleep(0.02)
    process.kill()
    out, err = process.communicate()
    raise AssertionError(f"emulator did not start:\n{out}\n{err}")


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    seed = tmp_path / "seed.jsonl"
    seed.write_text(
        json.dumps({"email": "seed@example.com", "first_name": "Seed", "org_id": "o-9"})
        + "\n\n"
        + json.dumps({"email": "two@example.com", "tags": ["a", "b"]})
        + "\n"
    )
    port_file = tmp_path / "emulator.url"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pardot_emulator",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--no-ampsea",
            "--custom-field",
            "org_id",
            "--custom-field",
            "tags:Checkbox:multi",
            "--seed",
            str(seed),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = _wait_for(port_file, process)
        assert url.startswith("http://127.0.0.1:")
        token = requests.post(
            f"{url}/services/oauth2/token", data=refresh_form(), timeout=TIMEOUT
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Pardot-Business-Unit-Id": BU}
        read = requests.get(
            f"{url}/api/prospect/version/3/do/read/email/seed%40example.com",
            params={"format": "json"},
            headers=headers,
            timeout=TIMEOUT,
        )
        assert read.status_code == 200, read.text
        assert read.json()["prospect"]["org_id"] == "o-9"
        seeded = requests.get(f"{url}/_emulator/prospects", timeout=TIMEOUT).json()
        assert [p["tags"] for p in seeded] == [[], ["a", "b"]]
        stats = requests.get(f"{url}/_emulator/stats", timeout=TIMEOUT).json()
        assert (stats["api_calls"], stats["token_calls"]) == (1, 1)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert f"pardot-emulator listening on {url}" in out
    assert CREDS["client_id"] in out and CREDS["refresh_token"] in out


@pytest.mark.parametrize(
    "argv",
    [
        ["--host", "0.0.0.0"],  # noqa: S104 - the point is that it is refused
        ["--host", "example.com"],
        ["--custom-field", "x:Text:many"],
        ["--business-unit-id", "hello"],
    ],
)
def test_cli_rejects_bad_arguments(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "pardot-emulator" in capsys.readouterr().err


def test_cli_rejects_a_bad_seed_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed = tmp_path / "seed.jsonl"
    seed.write_text('{"email": "a@example.com", "shoe_size": 44}\n')
    with pytest.raises(SystemExit) as exit_info:
        main(["--seed", str(seed)])
    assert exit_info.value.code == 2
    assert "seed.jsonl:1" in capsys.readouterr().err


def test_seeding_undeclared_fields_says_how_to_declare_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = tmp_path / "seed.jsonl"
    seed.write_text('{"email": "a@example.com", "app_user_id": "u1", "plan_tier": "pro"}\n')
    with pytest.raises(SystemExit) as exit_info:
        main(["--custom-field", "org_id", "--seed", str(seed)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "seed.jsonl:1: cannot seed fields ['app_user_id', 'plan_tier']" in err
    assert "declare them with --custom-field app_user_id --custom-field plan_tier" in err


def test_a_port_in_use_is_named_with_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exit_info:
            main(["--port", str(port)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert (
        f"pardot-emulator: error: port {port} is in use (another emulator?); pick another "
        "--port, or --port 0 for a free one"
    ) in err
    assert "Traceback" not in err and "Errno" not in err


def control_routes_in_code() -> set[str]:
    """Every "METHOD /_emulator/..." route that control.py compares requests against."""
    tree = ast.parse(Path(control.__file__).read_text(encoding="utf-8"))
    routes = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple) and len(node.elts) == 2:
            method, path = node.elts
            if (
                isinstance(method, ast.Constant)
                and isinstance(path, ast.Constant)
                and str(path.value).startswith("/_emulator/")
            ):
                routes.add(f"{method.value} {path.value}")
    return routes


def help_text() -> str:
    command = Path(sys.executable).with_name("pardot-emulator")
    shown = subprocess.run(
        [str(command), "--help"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return re.sub(r"\s+", " ", shown)


def test_help_documents_every_control_endpoint_the_code_serves() -> None:
    routes = control_routes_in_code()
    assert {"GET /_emulator/prospects", "GET /_emulator/stats"} <= routes  # the parse works
    shown = help_text()
    undocumented = [route for route in sorted(routes) if route not in shown]
    assert not undocumented, (
        f"add these to CONTROL_ENDPOINTS in emulator/__main__.py: {undocumented}"
    )
    documented = set(re.findall(r"\b(GET|POST|PUT|PATCH|DELETE) (/_emulator/[\w/-]+)", shown))
    assert {f"{method} {path}" for method, path in documented} == routes


def test_help_names_the_credentials_seeding_and_fault_options() -> None:
    shown = help_text()
    for value in CREDS.values():
        assert value in shown
    options = ("--seed", "--custom-field", "--daily-limit", "--fail-every", "--latency")
    for option in (*options, "--import-delay", "--import-daily-batch-limit"):
        assert option in shown
    assert "/services/oauth2/token" in shown
    assert "/api/v5/imports" in shown


def test_jwt_public_key_makes_the_cli_check_assertion_signatures(tmp_path: Path) -> None:
    private, public = rsa_key_pair()
    other_private, _ = rsa_key_pair()
    key_file = tmp_path / "public.pem"
    key_file.write_text(public)
    port_file = tmp_path / "emulator.url"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pardot_emulator",
            "--port-file",
            str(port_file),
            "--jwt-public-key",
            str(key_file),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = _wait_for(port_file, process)
        claims = {"iss": CREDS["client_id"], "sub": CREDS["username"], "aud": url}
        claims["exp"] = int(time.time()) + 180

        def grant(key: str) -> int:
            assertion = jwt.encode(claims, key, algorithm="RS256")
            form = {"grant_type": JWT_BEARER, "assertion": assertion}
            return requests.post(
                f"{url}/services/oauth2/token", data=form, timeout=TIMEOUT
            ).status_code

        assert grant(private) == 200
        assert grant(other_private) == 400
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
