"""App keys: what `apply` makes, keeps, rotates and drops, and how a replica checks them."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from cluster.inventory import App, Secret
from cluster.inventory.model import AppAuth
from cluster.keys import AppKey, KeyFileError, KeyRing, next_keyring, parse_keyring
from serving import auth
from serving.auth import KeyCheck, Unauthorized

APP = App("iris", "one", "iris", None, 1, "/iris", 0.5)
NOW = 1_800_000_000.0


def test_a_new_app_gets_a_long_random_key_once() -> None:
    first = next_keyring(KeyRing(), [APP], NOW)
    key = first.ring.current("iris")
    assert key is not None and len(key) == 64
    assert first.changes == ("iris: new key made (never shown)",)
    again = next_keyring(first.ring, [APP], NOW + 10)
    assert again.ring == first.ring and again.changes == ()
    assert again.ring.dump() == first.ring.dump()  # the nodes' files stay byte for byte


def test_a_key_from_the_inventory_replaces_the_old_one_after_its_grace() -> None:
    old = next_keyring(KeyRing(), [APP], NOW).ring
    old_key = old.current("iris")
    wanted = "k" * 40
    app = replace(APP, auth=AppAuth(key=Secret(wanted), grace_s=600))
    plan = next_keyring(old, [app], NOW)
    assert plan.ring.apps["iris"] == (AppKey(wanted), AppKey(str(old_key), NOW + 600))
    assert plan.changes == ("iris: key rotated; the old key is accepted for 10m more",)
    # Within the grace nothing changes; after it the old key is dropped.
    assert next_keyring(plan.ring, [app], NOW + 599).changes == ()
    later = next_keyring(plan.ring, [app], NOW + 600)
    assert later.ring.apps["iris"] == (AppKey(wanted),)
    assert "grace period ended" in later.changes[0]


def test_rotate_makes_a_new_key_and_removed_apps_lose_theirs() -> None:
    ring = next_keyring(KeyRing(), [APP, replace(APP, name="gone")], NOW).ring
    plan = next_keyring(ring, [APP], NOW, frozenset({"iris"}))
    new, old = plan.ring.apps["iris"]
    assert new.until is None and old.key == ring.current("iris") and old.until == NOW + 3600
    assert "gone" not in plan.ring.apps
    assert plan.changes == (
        "iris: key rotated; the old key is accepted for 1h more",
        "gone: keys removed (no such app in the inventory)",
    )


def test_nothing_that_prints_shows_a_key() -> None:
    ring = next_keyring(KeyRing(), [APP], NOW).ring
    key = str(ring.current("iris"))
    for shown in (repr(ring), str(ring), repr(ring.apps["iris"][0]), *next_keyring(
        KeyRing(), [APP], NOW).changes):  # fmt: skip
        assert key not in shown


def test_a_damaged_keys_file_is_named_never_quoted() -> None:
    secret = "s3cr3t-" * 8
    for text in ('{"apps": {"iris": [{"key": "' + secret, "[]", '{"apps": {"iris": []}}'):
        with pytest.raises(KeyFileError) as info:
            parse_keyring(text, "node1:/srv/auth/c.keys")
        assert "node1:/srv/auth/c.keys" in str(info.value)
        assert secret not in str(info.value)


def write_keys(path: Path, keys: list[tuple[str, float | None]]) -> None:
    body = {"apps": {"iris": [{"key": k, "until": u} for k, u in keys]}}
    path.write_text(json.dumps(body))


def refused(check: KeyCheck, header: str | None) -> str:
    with pytest.raises(Unauthorized) as info:
        check.check(header)
    return str(info.value)


def test_a_replica_accepts_only_a_current_key(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(auth, "RECHECK_S", 0.0)
    path = tmp_path / "c.keys"
    write_keys(path, [("new-key-0123456789", None), ("old-key-0123456789", time.time() + 60)])
    check = KeyCheck(str(path), "iris")
    check.check("Bearer new-key-0123456789")
    check.check("bearer old-key-0123456789")  # within its grace
    assert "needs its key" in refused(check, None)
    assert "must be 'Bearer KEY'" in refused(check, "Basic abc")
    assert refused(check, "Bearer nope") == "wrong or expired key for iris"
    # The grace ends: only the new key works; the file is re-read without a restart.
    write_keys(path, [("new-key-0123456789", None), ("old-key-0123456789", time.time() - 1)])
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert refused(check, "Bearer old-key-0123456789") == "wrong or expired key for iris"
    check.check("Bearer new-key-0123456789")


def test_without_a_readable_keys_file_every_key_is_refused(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(auth, "RECHECK_S", 0.0)
    path = tmp_path / "c.keys"
    check = KeyCheck(str(path), "iris")
    assert refused(check, "Bearer anything") == "wrong or expired key for iris"
    path.write_text("{not json")
    assert refused(check, "Bearer anything") == "wrong or expired key for iris"
    write_keys(path, [("good-key-0123456789", None)])
    os.utime(path, (time.time() + 5, time.time() + 5))
    check.check("Bearer good-key-0123456789")
    assert refused(KeyCheck(str(path), "other"), "Bearer good-key-0123456789") == (
        "wrong or expired key for other"
    )
