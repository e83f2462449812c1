"""skip_unchanged's pieces: keys, fingerprints, the pure split, and the SQLite store."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from target_pardot.errors import SettingsError
from target_pardot.matching import Group, Identity, new_identity
from target_pardot.settings import DEFAULT_STORE_FILE, default_store_path
from target_pardot.unchanged import (
    FingerprintStore,
    SkipUnchanged,
    fingerprint,
    fingerprinted,
    identity_key,
    names_of,
    split_unchanged,
)

BU = "0Uv000000000001AAA"


def group(identity: Identity, email: str | None = "a@x.com", **fields: object) -> Group:
    return Group(identity, members=[], fields=dict(fields), email=email)


def test_the_key_tells_business_units_versions_kinds_and_fids_apart() -> None:
    email = Identity("email", "a@x.com")
    keys = {
        identity_key(BU, 4, email),
        identity_key("0Uv000000000002AAA", 4, email),
        identity_key(BU, 5, email),
        identity_key(BU, 4, Identity("lookup", "a@x.com")),
        identity_key(BU, 4, Identity("id", "7")),
        identity_key(BU, 4, Identity("id", "7", fid="00Q000000000001")),
    }
    assert len(keys) == 6
    assert identity_key(BU, 4, email) == identity_key(BU, 4, Identity("email", "a@x.com"))


def test_a_group_that_always_creates_has_no_key() -> None:
    assert identity_key(BU, 4, new_identity()) is None


def test_the_fingerprint_follows_what_is_written_not_the_order_of_fields() -> None:
    identity = Identity("email", "a@x.com")
    base = fingerprint(group(identity, city="Oslo", first_name="A"))
    assert base == fingerprint(group(identity, first_name="A", city="Oslo"))
    assert base != fingerprint(group(identity, city="Bergen", first_name="A"))
    assert base != fingerprint(group(identity, email="A@x.com", city="Oslo", first_name="A"))
    with_lookup = group(identity, city="Oslo", first_name="A")
    with_lookup.lookup_value = "u1"
    assert base != fingerprint(with_lookup)


def test_split_skips_only_groups_whose_fingerprint_is_stored() -> None:
    same = group(Identity("email", "same@x.com"), city="Oslo")
    changed = group(Identity("email", "changed@x.com"), city="Oslo")
    unseen = group(Identity("email", "unseen@x.com"), city="Oslo")
    always_new = group(new_identity(), city="Oslo")
    items = fingerprinted([same, changed, unseen, always_new], BU, 4)
    stored = {
        items[0].key: items[0].fingerprint,
        items[1].key: fingerprint(group(Identity("email", "changed@x.com"), city="Old")),
    }
    unchanged, to_send = split_unchanged(items, stored)  # type: ignore[arg-type]
    assert unchanged == [same]
    assert [item.group for item in to_send] == [changed, unseen, always_new]

    unchanged, to_send = split_unchanged(items, stored, skip=False)  # type: ignore[arg-type]
    assert unchanged == []
    assert len(to_send) == 4


def test_untrusted_groups_are_all_sent_and_their_fingerprints_forgotten(tmp_path: Path) -> None:
    skip = SkipUnchanged(
        FingerprintStore(str(tmp_path / "u.sqlite"), business_unit_id=BU),
        business_unit_id=BU,
        version=4,
        full_resync=False,
    )
    same = group(Identity("id", "7"), city="Oslo")
    skip.applied(same)
    assert skip.select([same]) == ([same], [])
    # Written after another identity of its batch wrote prospect 7: sent whatever it wrote last.
    assert skip.select([same], trusted=False) == ([], [same])
    # ... and forgotten until Pardot confirms the new write: a crash now cannot skip it.
    assert skip.select([same]) == ([], [same])
    skip.close()


def skipper(tmp_path: Path) -> SkipUnchanged:
    return SkipUnchanged(
        FingerprintStore(str(tmp_path / "u.sqlite"), business_unit_id=BU),
        business_unit_id=BU,
        version=4,
        full_resync=False,
    )


def test_a_group_is_sent_once_another_identity_sent_what_it_names(tmp_path: Path) -> None:
    skip = skipper(tmp_path)
    by_email = group(Identity("email", "a@x.com"), city="Oslo")
    by_id = group(Identity("id", "7"), email="A@x.com", city="Bergen")
    by_lookup = group(Identity("lookup", "org-1"), email="b@x.com", city="Oslo")
    by_lookup.lookup_value = "org-1"
    for applied in (by_email, by_id, by_lookup):
        skip.applied(applied)
    # Sending the id's group (its email differs in case only) and nothing yet of the others:
    skip.sending([(by_id, 7)])
    assert skip.select([by_email, by_lookup]) == ([by_lookup], [by_email])
    # Its own sends never make a group distrust itself.
    skip.applied(by_id)
    assert skip.select([by_id]) == ([by_id], [])
    skip.close()


def test_what_finding_gave_a_group_is_a_name_too(tmp_path: Path) -> None:
    skip = skipper(tmp_path)
    by_id = group(Identity("id", "7"), email=None, city="Oslo")
    skip.applied(by_id)
    # An email record found to prospect 7 was sent: the id's fingerprint no longer tells.
    skip.sending([(group(Identity("email", "a@x.com"), city="Bergen"), 7)])
    assert skip.select([by_id]) == ([], [by_id])
    skip.close()


def test_a_group_that_always_creates_distrusts_what_shares_its_email(tmp_path: Path) -> None:
    skip = skipper(tmp_path)
    by_email = group(Identity("email", "a@x.com"), city="Oslo")
    skip.applied(by_email)
    skip.sending([(group(new_identity(), email="a@x.com", city="Bergen"), None)])
    assert skip.select([by_email]) == ([], [by_email])
    skip.close()


def test_names_are_hashes_and_the_run_table_goes_with_the_run(tmp_path: Path) -> None:
    named = group(Identity("id", "7", fid="00Q000000000001"), email="a@x.com")
    named.lookup_value = "org-1"
    names = names_of(named, 7)
    assert len(names) == 4  # id 7 (given once), fid, email and lookup value
    assert all(isinstance(name, int) for name in names)
    skip = skipper(tmp_path)
    skip.sending([(named, 7)])
    assert set(skip.store.owners(names)) == set(names)
    skip.close()
    # The next run starts with nothing sent: the table was the connection's own.
    reopened = skipper(tmp_path)
    assert reopened.store.owners(names) == {}
    reopened.close()


def test_the_store_commits_what_was_remembered_and_forgets_before_a_resend(
    tmp_path: Path,
) -> None:
    path = tmp_path / "deep" / "unchanged.sqlite"
    store = FingerprintStore(str(path), business_unit_id=BU)
    store.remember(b"k" * 16, b"f" * 16)
    # Looked up before the flush: the batch after this one sees it already.
    assert store.lookup([b"k" * 16, b"x" * 16]) == {b"k" * 16: b"f" * 16}
    store.flush()
    store.remember(b"j" * 16, b"g" * 16)
    store.forget([b"j" * 16])
    store.close()

    reopened = FingerprintStore(str(path), business_unit_id=BU)
    assert reopened.lookup([b"k" * 16, b"j" * 16]) == {b"k" * 16: b"f" * 16}
    reopened.forget([b"k" * 16])
    # Committed at once: another connection (the next run) no longer sees it.
    other = sqlite3.connect(path)
    assert other.execute("SELECT count(*) FROM applied").fetchone() == (0,)
    assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    other.close()
    reopened.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_the_store_holds_hashes_not_emails(tmp_path: Path) -> None:
    path = tmp_path / "unchanged.sqlite"
    store = FingerprintStore(str(path), business_unit_id=BU)
    item = fingerprinted([group(Identity("email", "secret.person@x.com"), city="Oslo")], BU, 3)[0]
    assert item.key is not None
    store.remember(item.key, item.fingerprint)
    store.close()
    for name in os.listdir(tmp_path):
        assert b"secret.person" not in (tmp_path / name).read_bytes()


def test_lookup_of_many_keys_is_chunked(tmp_path: Path) -> None:
    store = FingerprintStore(str(tmp_path / "unchanged.sqlite"), business_unit_id=BU)
    keys = [n.to_bytes(16, "big") for n in range(2500)]
    for key in keys:
        store.remember(key, key)
    store.flush()
    assert len(store.lookup(keys)) == 2500
    store.close()


def test_the_default_store_is_in_the_meltano_project_or_the_working_directory() -> None:
    assert default_store_path({"MELTANO_PROJECT_ROOT": "/srv/project"}) == (
        "/srv/project/.meltano/target-pardot/unchanged.sqlite"
    )
    assert default_store_path({}) == DEFAULT_STORE_FILE


def test_a_store_that_cannot_be_opened_stops_the_run_naming_the_setting(tmp_path: Path) -> None:
    not_a_database = tmp_path / "unchanged.sqlite"
    not_a_database.write_text("this is not SQLite " * 100)
    with pytest.raises(SettingsError, match="skip_unchanged_store"):
        FingerprintStore(str(not_a_database), business_unit_id=BU)
    with pytest.raises(SettingsError, match="skip_unchanged_store"):
        FingerprintStore(str(tmp_path), business_unit_id=BU)  # a directory


def test_the_lookup_value_an_id_record_writes_is_fingerprinted_once_in_its_fields() -> None:
    """Fingerprints stored before groups matched by id carried it still match."""
    by_id = group(Identity("id", "7"), city="Oslo", org_id="o1")
    before = fingerprint(by_id)
    by_id.lookup_value = "o1"
    assert fingerprint(by_id) == before


class _RefusingDatabase:
    """A connection whose file went read-only, full or damaged after it was opened."""

    def execute(self, *args: object) -> None:
        raise sqlite3.DatabaseError("database disk image is malformed")

    executemany = execute

    def commit(self) -> None:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    def close(self) -> None:
        pass


def test_a_store_that_fails_during_the_run_stops_it_naming_the_store(tmp_path: Path) -> None:
    # Before: a raw sqlite3 traceback, with no summary and no 'stopped:' line.
    store = FingerprintStore(str(tmp_path / "u.sqlite"), business_unit_id=BU)
    store._db = _RefusingDatabase()  # type: ignore[assignment]
    store.remember(b"k" * 32, b"f" * 32)

    for failing in (lambda: store.lookup([b"k" * 32]), store.flush):
        with pytest.raises(SettingsError) as stopped:
            failing()
        assert f"skip_unchanged_store {store.path} failed during the run" in str(stopped.value)
        assert stopped.value.__suppress_context__
    store.close()  # the run has ended: what could not be written is only logged


def test_two_runs_of_one_business_unit_cannot_share_a_store(tmp_path: Path) -> None:
    """Before: both ran, each remembered what it wrote while Pardot kept the last write, and a
    third run skipped records Pardot no longer held."""
    path = str(tmp_path / "unchanged.sqlite")
    first = FingerprintStore(path, business_unit_id=BU)
    with pytest.raises(SettingsError) as refused:
        FingerprintStore(path, business_unit_id=BU)
    message = str(refused.value)
    assert "another target-pardot run is using skip_unchanged_store" in message
    assert first.claim_path in message and BU in message
    # Another business unit shares the file (its keys name the unit).
    other_unit = FingerprintStore(path, business_unit_id="0Uv000000000002AAA")
    other_unit.remember(b"o" * 16, b"f" * 16)
    other_unit.close()
    first.close()
    again = FingerprintStore(path, business_unit_id=BU)  # free once the first run ended
    assert again.lookup([b"o" * 16]) == {b"o" * 16: b"f" * 16}
    again.close()
    assert stat.S_IMODE(os.stat(again.claim_path).st_mode) == 0o600


def test_a_store_that_cannot_be_opened_does_not_keep_its_lock(tmp_path: Path) -> None:
    path = tmp_path / "unchanged.sqlite"
    path.write_text("this is not SQLite " * 100)
    with pytest.raises(SettingsError, match="cannot be used"):
        FingerprintStore(str(path), business_unit_id=BU)
    path.unlink()
    FingerprintStore(str(path), business_unit_id=BU).close()
