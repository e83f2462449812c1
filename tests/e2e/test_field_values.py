"""End to end, what a record's values do to a prospect's fields in each API version: the real
command against the emulator. (Which prospect a record reaches is test_matching_rules'.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pardot_emulator import PardotEmulator
from tests.conftest import TargetRun, run_target, singer_messages, target_config

VERSIONS = [(3, False), (4, True), (5, True)]


@pytest.fixture(params=VERSIONS, ids=["v3", "v4", "v5"])
def unit(request: pytest.FixtureRequest, make_emulator: Any) -> tuple[int, PardotEmulator]:
    api_version, ampsea = request.param
    emulator: PardotEmulator = make_emulator(ampsea=ampsea)
    emulator.add_custom_field("interests", type="Checkbox", multi=True)
    emulator.add_custom_field("regions", type="Text", multi=True)
    return api_version, emulator


def sync(
    unit: tuple[int, PardotEmulator], tmp_path: Path, records: list[dict[str, Any]]
) -> TargetRun:
    api_version, emulator = unit
    result = run_target(
        target_config(emulator, tmp_path, api_version=api_version),
        singer_messages("users", records),
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.rejects == []
    return result


@pytest.mark.parametrize("blank", ["", [], [""]], ids=["empty-text", "empty-list", "list-of-blank"])
def test_a_blank_value_clears_a_multi_value_field_as_it_clears_any_other(
    unit: tuple[int, PardotEmulator], tmp_path: Path, blank: Any
) -> None:
    # v3/v4 sent a blank as `interests=`, which Pardot ignores for a multi-value field (it
    # clears with `interests_0=`), and sent nothing at all for an empty list: the record was
    # counted as updated and the old values stayed.
    _, emulator = unit
    ann = emulator.add_prospect("ann@x.com", interests=["a", "b"], regions=["north"], city="Oslo")

    sync(unit, tmp_path, [{"email": "ann@x.com", "interests": blank, "regions": blank, "city": ""}])

    after = emulator.prospect(ann["id"])
    assert (after["interests"], after["regions"], after["city"]) == ([], [], None)


def test_a_single_value_replaces_a_multi_value_fields_values(
    unit: tuple[int, PardotEmulator], tmp_path: Path
) -> None:
    _, emulator = unit
    ann = emulator.add_prospect("ann@x.com", interests=["a", "b"])

    sync(unit, tmp_path, [{"email": "ann@x.com", "interests": "c"}])

    assert emulator.prospect(ann["id"])["interests"] == ["c"]


def test_a_blank_flag_leaves_an_opt_out_as_it_is_and_a_boolean_goes_to_text_as_text(
    unit: tuple[int, PardotEmulator], tmp_path: Path
) -> None:
    # v5 refused both records whole (154): "" for a boolean, a JSON boolean for a text field.
    # v3/v4 took them, and the blank cleared the flag: an empty CSV cell turned an opt-out off.
    _, emulator = unit
    ann = emulator.add_prospect("ann@x.com", is_do_not_email=True, company="Old")
    records = [
        {"email": "ann@x.com", "is_do_not_email": "", "city": "Oslo"},
        {"email": "bob@x.com", "company": True, "website": False},
    ]

    sync(unit, tmp_path, records)

    after = emulator.prospect(ann["id"])
    assert (after["is_do_not_email"], after["city"], after["company"]) == (True, "Oslo", "Old")
    [bob] = [p for p in emulator.prospects() if p["email"] == "bob@x.com"]
    assert (bob["company"], bob["website"]) == ("1", "0")
