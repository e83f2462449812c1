"""The architecture, kept honest: what may import what, and where the API version is decided."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "target_pardot"


def modules_loaded_by(import_line: str) -> set[str]:
    code = f"import sys; {import_line}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return set(out.stdout.split())


def test_the_emulator_does_not_import_the_target() -> None:
    # A shared module would let the target and its test double agree on the same mistake.
    loaded = modules_loaded_by("import pardot_emulator, pardot_emulator.__main__")
    assert not {name for name in loaded if name.startswith("target_pardot")}


def test_the_target_does_not_import_the_emulator() -> None:
    loaded = modules_loaded_by("import target_pardot.target")
    assert not {name for name in loaded if name.startswith("pardot_emulator")}


def test_only_the_dialects_and_the_settings_look_at_the_api_version() -> None:
    """run.py picks DIALECTS[api_version]; settings.py checks it; nothing else asks."""
    allowed = {PACKAGE / "run.py", PACKAGE / "settings.py"}
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path in allowed or (PACKAGE / "dialects") in path.parents:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            name = getattr(node, "attr", None) or getattr(node, "id", None)
            if name == "api_version":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")  # type: ignore[attr-defined]
    assert not offenders, offenders
