"""The /_emulator/ control plane and the Python-side state API."""

from __future__ import annotations

import pytest
import requests

from pardot_emulator import DEFAULT_CREDENTIALS, PardotEmulator

from .helpers import TIMEOUT


def test_default_credentials() -> None:
    assert DEFAULT_CREDENTIALS == {
        "client_id": "emulator-client-id",
        "client_secret": "emulator-client-secret",
        "refresh_token": "emulator-refresh-token",
        "username": "integration@example.com",
        "password": "emulator-password",
        "business_unit_id": "0Uv000000000001AAA",
    }


def test_control_plane_seeds_and_lists(emu: PardotEmulator) -> None:
    base = f"{emu.url}/_emulator"
    field = requests.post(
        f"{base}/custom-fields", json={"field_id": "org_id", "type": "Number"}, timeout=TIMEOUT
    )
    assert field.status_code == 201
    assert field.json()["field_id"] == "org_id"
    seeded = requests.post(
        f"{base}/prospects", json={"email": "c@example.com", "org_id": "5"}, timeout=TIMEOUT
    )
    assert seeded.status_code == 201
    assert seeded.json()["id"] == 1000
    listed = requests.get(f"{base}/prospects", timeout=TIMEOUT).json()
    assert [(p["email"], p["org_id"]) for p in listed] == [("c@example.com", 5)]
    bad = requests.post(
        f"{base}/prospects", json={"email": "x@example.com", "org_id": "five"}, timeout=TIMEOUT
    )
    assert bad.status_code == 400
    assert emu.api_calls == 0


def test_snapshots_are_detached_and_ordered(emu: PardotEmulator) -> None:
    emu.add_custom_field("tags", multi=True)
    first = emu.add_prospect("a@example.com", tags=["x"])
    emu.add_prospect(None, first_name="No Email")
    snapshot = emu.prospects()
    snapshot[0]["tags"].append("mutated")
    snapshot[0]["first_name"] = "mutated"
    assert emu.prospect(first["id"])["tags"] == ["x"]
    assert emu.prospect(first["id"])["first_name"] is None
    assert [p["id"] for p in emu.prospects()] == [1000, 1001]
    assert emu.prospect(424242) is None


def test_archived_prospects_are_hidden_unless_asked(emu: PardotEmulator) -> None:
    emu.add_prospect("live@example.com")
    emu.add_prospect("gone@example.com", is_archived=True)
    assert [p["email"] for p in emu.prospects()] == ["live@example.com"]
    assert len(emu.prospects(include_archived=True)) == 2


def test_seeding_rejects_what_it_cannot_store(emu: PardotEmulator, emu3: PardotEmulator) -> None:
    with pytest.raises(ValueError):
        emu.add_prospect("a@example.com", shoe_size=44)
    with pytest.raises(ValueError):
        emu.add_custom_field("first_name")
    emu3.add_prospect("one@example.com")
    with pytest.raises(ValueError):
        emu3.add_prospect("ONE@example.com")  # unique emails without AMPSEA


def test_only_loopback_hosts() -> None:
    with pytest.raises(ValueError):
        PardotEmulator(host="0.0.0.0")  # noqa: S104 - the point is that it is refused


def test_the_business_unit_served_must_be_shaped_like_a_business_unit_id() -> None:
    # Every request naming it would otherwise be refused with 182.
    with pytest.raises(ValueError, match="not a business unit id"):
        PardotEmulator(business_unit_id="acme")


def test_stop_closes_the_port() -> None:
    with PardotEmulator() as emu:
        url = emu.url
        assert requests.get(f"{url}/_emulator/stats", timeout=TIMEOUT).status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/_emulator/stats", timeout=TIMEOUT)
