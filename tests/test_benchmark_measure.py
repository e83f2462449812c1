"""The benchmark's resource measurement: the target's own peak memory, not its parent's."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "benchmark.py"
MIB = 1 << 20


@pytest.fixture(scope="module")
def benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the script is being executed.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_peak_rss_is_the_commands_own_not_its_callers(
    benchmark: ModuleType, tmp_path: Path
) -> None:
    # Make this process large, as the benchmark is (it hosts the emulator and its prospects):
    # a child started straight from it would report at least this much.
    ballast = b"x" * (200 * MIB)
    true = shutil.which("true") or "/bin/true"
    hungry = [sys.executable, "-c", f"b = b'x' * {100 * MIB}"]
    with open(os.devnull) as stdin, open(os.devnull, "w") as stderr:
        trivial = benchmark.measure([true], stdin, stderr, str(tmp_path))
        big = benchmark.measure(hungry, stdin, stderr, str(tmp_path))
        failing = benchmark.measure([sys.executable, "-c", "exit(3)"], stdin, stderr, str(tmp_path))
    assert len(ballast) == 200 * MIB  # still held while the commands ran
    assert trivial.returncode == 0
    assert trivial.peak_rss_mb < 50
    # A command's own memory is still seen, and none of the caller's 200 MB is added to it.
    assert 100 <= big.peak_rss_mb < 200
    assert big.cpu_seconds > 0
    assert failing.returncode == 3
