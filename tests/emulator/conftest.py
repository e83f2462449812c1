from __future__ import annotations

from collections.abc import Callable

import pytest

from pardot_emulator import PardotEmulator

from .helpers import Api

# make_emulator comes from tests/conftest.py.


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
