"""`tdgc init`: a starter policy that tdgc takes, written only where asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tdgc.policy import load_policy


def test_init_writes_a_policy_tdgc_takes(tdgc: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ran = tdgc("init")
    assert ran.code == 0 and ran.out == "" and "tdgc plan policy.toml" in ran.err
    policy = load_policy(str(tmp_path / "policy.toml"))
    assert (policy.defaults.keep_last, policy.safety.require_archive, policy.safety.max_actions) == (5, True, 900)
    assert policy.defaults.protect_tags == {"tdgc:keep": "true"} and policy.rules == ()


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p: p.write_text("mine"), "exists; --force overwrites it"),
        (lambda p: p.mkdir(), "is a directory"),
    ],
    ids=["exists", "directory"],
)
def test_init_never_overwrites_unasked(make: Any, fragment: str, tdgc: Any, tmp_path: Path) -> None:
    target = tmp_path / "policy.toml"
    make(target)
    ran = tdgc("init", str(target))
    assert ran.code == 2 and ran.err.count("\n") == 1 and fragment in ran.err
    assert target.is_dir() or target.read_text() == "mine"


def test_init_force_overwrites(tdgc: Any, tmp_path: Path) -> None:
    target = tmp_path / "ops.toml"
    target.write_text("mine")
    assert tdgc("init", str(target), "--force").code == 0
    assert "[defaults]" in target.read_text()
