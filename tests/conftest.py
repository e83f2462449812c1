"""Shared fixtures: an emulator per test, and running the real `target-pardot` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pardot_emulator import DEFAULT_CREDENTIALS, PardotEmulator

TARGET_COMMAND = str(Path(sys.executable).with_name("target-pardot"))


def rsa_key_pair() -> tuple[str, str]:
    """A fresh (private PEM, public PEM) pair, as a connected app's certificate key would be."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., PardotEmulator]]:
    started: list[PardotEmulator] = []

    def make(**knobs: Any) -> PardotEmulator:
        emulator = PardotEmulator(**knobs).start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(make_emulator: Callable[..., PardotEmulator]) -> PardotEmulator:
    return make_emulator(ampsea=True)


def target_config(emulator: PardotEmulator, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "business_unit_id": DEFAULT_CREDENTIALS["business_unit_id"],
        "client_id": DEFAULT_CREDENTIALS["client_id"],
        "client_secret": DEFAULT_CREDENTIALS["client_secret"],
        "refresh_token": DEFAULT_CREDENTIALS["refresh_token"],
        "login_url": emulator.url,
        "pardot_url": emulator.url,
        "reject_file": str(tmp_path / "rejects.jsonl"),
        "max_retry_seconds": 30,
    }
    config.update(overrides)
    return config


def singer_messages(
    stream: str,
    records: Iterable[Mapping[str, Any]],
    *,
    schema: Mapping[str, Any] | None = None,
    state: Mapping[str, Any] | None = None,
    state_every: int | None = None,
) -> list[dict[str, Any]]:
    """SCHEMA, then the RECORDs (with a STATE every `state_every` records), then STATE."""
    messages: list[dict[str, Any]] = [
        {
            "type": "SCHEMA",
            "stream": stream,
            "schema": schema or {"type": "object", "properties": {}, "additionalProperties": True},
            "key_properties": [],
        }
    ]
    for position, record in enumerate(records, start=1):
        messages.append({"type": "RECORD", "stream": stream, "record": record})
        if state_every and position % state_every == 0:
            messages.append({"type": "STATE", "value": {"bookmarks": {stream: position}}})
    if state is not None:
        messages.append({"type": "STATE", "value": state})
    return messages


@dataclass
class TargetRun:
    returncode: int
    stdout: str
    stderr: str
    reject_file: Path | None  # None when the config has none: one file per run in reject_dir

    @property
    def states(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    @property
    def rejects(self) -> list[dict[str, Any]]:
        if self.reject_file is None or not self.reject_file.exists():
            return []
        return [json.loads(line) for line in self.reject_file.read_text().splitlines()]

    @property
    def summary(self) -> str:
        lines = [line for line in self.stderr.splitlines() if "target-pardot summary:" in line]
        return lines[-1] if lines else ""


def run_target(
    config: Mapping[str, Any],
    messages: Iterable[Mapping[str, Any]] | str | bytes,
    tmp_path: Path,
    *,
    timeout: float = 120,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> TargetRun:
    """Run the installed `target-pardot` command, as Meltano would (in `cwd`, by default this
    process's working directory). `messages` as bytes are the input exactly (to send what is
    not UTF-8); text is sent as UTF-8."""
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    if isinstance(messages, bytes):
        data = messages
    else:
        text = (
            messages
            if isinstance(messages, str)
            else "".join(json.dumps(message) + "\n" for message in messages)
        )
        data = text.encode("utf-8")
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TARGET_PARDOT") and key != "LOGLEVEL"
    }
    environment.update(env or {})
    completed = subprocess.run(
        [TARGET_COMMAND, "--config", str(config_path)],
        input=data,
        capture_output=True,
        timeout=timeout,
        env=environment,
        cwd=cwd,
        check=False,
    )
    reject_file = config.get("reject_file")
    return TargetRun(
        completed.returncode,
        completed.stdout.decode("utf-8", "replace"),
        completed.stderr.decode("utf-8", "replace"),
        Path(reject_file) if reject_file else None,
    )
