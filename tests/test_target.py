"""The target class: how it plugs into the SDK (public names only) and how a run ends."""

from __future__ import annotations

import ast
import os
import signal
import time
from pathlib import Path

import pytest
from singer_sdk import Target

from target_pardot.target import TargetPardot

PACKAGE = Path(__file__).resolve().parent.parent / "target_pardot"


def _is_private(dotted: str) -> bool:
    return any(part.startswith("_") for part in dotted.split("."))


def _private_sdk_names(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("singer_sdk"):
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names if alias.name.startswith("singer_sdk")]
        else:
            continue
        found += [name for name in names if _is_private(name)]
    return found


def test_the_target_uses_no_private_name_of_the_sdk() -> None:
    # Private names change without notice between SDK releases; depending on none of them is
    # what lets pyproject allow the SDK's whole release line.
    used = {
        str(path.relative_to(PACKAGE)): names
        for path in sorted(PACKAGE.rglob("*.py"))
        if (names := _private_sdk_names(path))
    }
    assert used == {}


def test_the_sdks_invoke_is_not_copied() -> None:
    # The exit policy wraps the SDK's command callback; a copied `invoke` would silently miss
    # whatever the SDK's own invoke learns to do in a later release.
    assert "invoke" not in TargetPardot.__dict__
    assert TargetPardot.invoke.__func__ is Target.invoke.__func__  # type: ignore[attr-defined]


def test_a_stop_signal_outside_a_run_keeps_its_usual_meaning(tmp_path: Path) -> None:
    target = TargetPardot(
        config={
            "business_unit_id": "0Uv000000000001AAA",
            "access_token": "unused",
            "reject_file": str(tmp_path / "rejects.jsonl"),
        }
    )
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)  # the handler runs here, in this (main) thread
    assert target.stop_signal is None


def test_config_file_problems_are_named_without_quoting_the_file(tmp_path: Path) -> None:
    from target_pardot.target import config_file_problem

    good, binary, secret = tmp_path / "good.json", tmp_path / "binary.json", tmp_path / "s.json"
    good.write_text('{"business_unit_id": "0Uv000000000001AAA"}')
    binary.write_bytes(b"\xff\xfe{}")
    secret.write_text('{"client_secret": "never-shown-secret",}')
    assert config_file_problem(str(good)) is None
    assert config_file_problem(str(tmp_path)) == "is a directory"
    assert config_file_problem(str(binary)) == "is not UTF-8 text"
    problem = config_file_problem(str(secret)) or ""
    assert problem.startswith("is not JSON (line 1 column 40") and "never-shown" not in problem
