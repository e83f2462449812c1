from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from target_pardot.emulator import PardotEmulator

from .helpers import Api


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., PardotEmulator]]:
    """Start emulators with any knobs; every one is stopped when the test ends."""
    started: list[PardotEmulator] = []

    def make(**knobs: Any) -> PardotEmulator:
        emulator = PardotEmulator(**knobs).start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emu(make_emulator: Callable[..., PardotEmulator]) -> PardotEmulator:
    """An AMPSEA business unit: the v4 API."""
    return make_emulator()


@pytest.fixture
def emu3(make_emulator: Callable[..., PardotEmulator]) -> PardotEmulator:
    """A non-AMPSEA business unit: the v3 API, unique emails."""
    return make_emulator(ampsea=False)


@pytest.fixture
def api(emu: PardotEmulator) -> Api:
    return Api(emu)


@pytest.fixture
def api3(emu3: PardotEmulator) -> Api:
    return Api(emu3)
